"""Creates N (monitor, origin) pairs through the API: pools of 64 origins, each origin its own
loopback address (127.1.0.0, 127.1.0.1, ...), all using one monitor.
Usage: create_pairs.py BASE_URL ACCOUNT MONITOR TOKEN N [FROM]
(FROM: the pairs already made by an earlier call; this one adds pairs FROM..N)."""
import json
import sys
import urllib.request

base, account, monitor, token, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
start = int(sys.argv[6]) if len(sys.argv) > 6 else 0


def address(i):
    return f"127.{1 + i // 65536}.{(i // 256) % 256}.{i % 256}"


made, pool = start, 0
while made < n:
    origins = [{"name": f"o{i}", "address": address(i)} for i in range(made, min(made + 64, n))]
    body = json.dumps({"name": f"pairs-{made}", "monitor": monitor, "origins": origins}).encode()
    req = urllib.request.Request(f"{base}/accounts/{account}/load_balancers/pools", body, method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
    made += len(origins)
    pool += 1
print(f"created {made - start} pairs in {pool} pools")
