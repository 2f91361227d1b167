"""Creates N (monitor, origin) pairs through the API: pools of 64 origins, each origin its own
loopback address (127.1.0.0, 127.1.0.1, ...), all using one monitor.
Usage: create_pairs.py BASE_URL ACCOUNT MONITOR TOKEN N"""
import json
import sys
import urllib.request

base, account, monitor, token, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])


def address(i):
    return f"127.{1 + i // 65536}.{(i // 256) % 256}.{i % 256}"


made, pool = 0, 0
while made < n:
    origins = [{"name": f"o{i}", "address": address(i)} for i in range(made, min(made + 64, n))]
    body = json.dumps({"name": f"pairs-{pool}", "monitor": monitor, "origins": origins}).encode()
    req = urllib.request.Request(f"{base}/accounts/{account}/load_balancers/pools", body, method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
    made += len(origins)
    pool += 1
print(f"created {made} pairs in {pool} pools")
