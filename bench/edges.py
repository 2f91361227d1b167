"""Edge benchmarks, driven by bench/edges.sh (see there). Talks to the controller's API and
reads the edges' logs.
Usage: edges.py populate BASE TOKEN ACCOUNT ZONE LBS
       edges.py changes BASE TOKEN ACCOUNT POOL COUNT GAP_S
       edges.py lags LOG...            (p50/p99/max of lag_ms over the edges' logs)"""
import http.client
import json
import re
import sys
import time
import urllib.parse


class Api:
    def __init__(self, base, token):
        u = urllib.parse.urlparse(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port)
        self.prefix = u.path
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        self.conn.request(method, self.prefix + path, json.dumps(body) if body is not None else None, self.headers)
        r = self.conn.getresponse()
        data = json.loads(r.read())
        if r.status != 200:
            raise SystemExit(f"{method} {path}: {r.status} {data}")
        return data["result"]


def populate(base, token, account, zone, lbs):
    api = Api(base, token)
    pools = []
    for i in range(2 * lbs):
        o = [{"name": "o", "address": f"127.{1 + i // 65536}.{(i // 256) % 256}.{i % 256}"}]
        pools.append(api.call("POST", f"/accounts/{account}/load_balancers/pools", {"name": f"p{i}", "origins": o})["id"])
    for i in range(lbs):
        a, b = pools[2 * i], pools[2 * i + 1]
        api.call("POST", f"/zones/{zone}/load_balancers",
                 {"name": f"lb{i}.example.com", "default_pools": [a, b], "fallback_pool": b})
    print(pools[0])


def changes(base, token, account, pool, count, gap):
    api = Api(base, token)
    path = f"/accounts/{account}/load_balancers/pools/{pool}"
    for k in range(count):
        api.call("PATCH", path, {"origins": [{"name": "o", "address": "127.1.0.0", "weight": 1 if k % 2 else 0.5}]})
        time.sleep(gap)


def field(logs, marker, name):
    out = []
    for path in logs:
        for line in open(path, errors="replace"):
            if marker in line:
                m = re.search(name + r"=([0-9.]+)", line)
                if m:
                    out.append(float(m.group(1)))
    out.sort()
    return out


def summary(out):
    pick = lambda q: out[min(len(out) - 1, int(q * len(out)))]
    return f"p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, max {out[-1]:.1f} ms"


def lags(logs):
    marker = "applied the routing snapshot from controller"
    out = field(logs, marker, "lag_ms")
    if not out:
        raise SystemExit("no snapshot applications logged")
    sizes = field(logs, marker, "bytes")
    print(f"{len(out)} applications: {summary(out)}; applying alone {summary(field(logs, marker, 'apply_ms'))}; "
          f"answer size p50 {sizes[len(sizes) // 2]:.0f} B")


def builds(log, last):
    out = []
    for line in open(log, errors="replace"):
        if "built a routing snapshot" in line:
            m = re.search(r"build_ms=([0-9.]+)", line)
            if m:
                out.append(float(m.group(1)))
    out = sorted(out[-last:])
    print(f"controller snapshot builds (the last {len(out)}): {summary(out)}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "populate":
        populate(args[0], args[1], args[2], args[3], int(args[4]))
    elif cmd == "changes":
        changes(args[0], args[1], args[2], args[3], int(args[4]), float(args[5]))
    elif cmd == "lags":
        lags(args)
    elif cmd == "builds":
        builds(args[0], int(args[1]))
