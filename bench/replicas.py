#!/usr/bin/env python3
"""Measurements between two replicas of one PostgreSQL database (bench/replicas.sh runs them).

  replicas.py writes   A B TOKEN ACCOUNT N
      N pool creates, alternating between the replicas; each timed from the 2xx answer until
      the other replica serves the pool.
  replicas.py verdicts JUDGE FOLLOWER TOKEN AGENT_TOKEN ACCOUNT MONITOR N
      N verdict changes made on the judge (an agent's result through the agent protocol: the
      POST returns once the judge recorded it), each timed until the follower serves it.
  replicas.py failover SURVIVOR TOKEN AGENT_TOKEN ACCOUNT MONITOR JUDGE_PID
      kill -9 of the judge, then a result that changes a verdict posted to the survivor every
      50 ms until it applies it: the time from the kill to the verdict served.
"""
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request


def call(base, path, token, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{base}{path}", data, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
    except (urllib.error.URLError, ConnectionError):
        return 0, None


def pct(samples, q):
    s = sorted(samples)
    return s[int((len(s) - 1) * q)] * 1000


def report(name, samples, goal):
    print(f"RESULT {name}: n={len(samples)} p50={pct(samples, 0.5):.1f}ms p99={pct(samples, 0.99):.1f}ms "
          f"max={max(samples) * 1000:.1f}ms (goal {goal})")


def writes(a, b, token, account, n):
    delays = []
    for i in range(n):
        here, there = (a, b) if i % 2 == 0 else (b, a)
        status, v = call(here, f"/client/v4/accounts/{account}/load_balancers/pools", token, "POST",
                         {"name": f"replicated-{i}", "origins": [{"name": "o", "address": "192.0.2.1"}]})
        assert status == 200, (status, v)
        t0 = time.monotonic()
        path = f"/client/v4/accounts/{account}/load_balancers/pools/{v['result']['id']}"
        while call(there, path, token)[0] != 200:
            time.sleep(0.002)
        delays.append(time.monotonic() - t0)
    report("replication delay of a write", delays, "p99 <= 1 s")


def result(monitor, address, healthy):
    return {"key": {"monitor": monitor, "address": address, "port": 0, "host": None},
            "at": int(time.time() * 1e6),
            "facts": {"outcome": {"Http": {"status": 200 if healthy else 503, "body_matched": True}},
                      "rtt_micros": 1000}}


def post_result(base, agent_token, monitor, address, healthy):
    return call(base, "/agent/v1/results", agent_token, "POST",
                {"region": "WEU", "location": "ams1", "results": [result(monitor, address, healthy)]})


def pools(base, token, account, monitor, n):
    """n pools of one origin each (192.0.3.x), probed by `monitor`: their ids and addresses."""
    made = []
    for i in range(n):
        address = f"192.0.{3 + i // 256}.{i % 256}"
        status, v = call(base, f"/client/v4/accounts/{account}/load_balancers/pools", token, "POST",
                         {"name": f"judged-{i}", "monitor": monitor, "check_regions": ["WEU"],
                          "origins": [{"name": "o", "address": address}]})
        assert status == 200, (status, v)
        made.append((v["result"]["id"], address))
    return made


def healthy(base, token, account, pool):
    status, v = call(base, f"/client/v4/accounts/{account}/load_balancers/pools/{pool}", token)
    return v["result"].get("healthy") if status == 200 else "gone"


def verdicts(judge, follower, token, agent_token, account, monitor, n):
    made = pools(judge, token, account, monitor, n)
    # Both replicas know every pool before the clock starts.
    for pool, _ in made:
        while call(follower, f"/client/v4/accounts/{account}/load_balancers/pools/{pool}", token)[0] != 200:
            time.sleep(0.01)
    delays = []
    for pool, address in made:
        while True:
            status, v = post_result(judge, agent_token, monitor, address, False)
            assert status == 200, (status, v)
            if v["result"]["accepted"] == 1:
                break
            # Refused as unassigned until the judge's engine has followed the new pools.
            time.sleep(0.1)
        t0 = time.monotonic()
        while healthy(follower, token, account, pool) is not False:
            time.sleep(0.002)
        delays.append(time.monotonic() - t0)
    report("verdict replication delay (judge recorded -> follower serves)", delays, "<= 1 s")
    print(json.dumps({"pool": made[0][0], "address": made[0][1]}))


def failover(survivor, token, agent_token, account, monitor, judge_pid, pool, address):
    os.kill(judge_pid, signal.SIGKILL)
    t0 = time.monotonic()
    refused = 0
    while True:
        status, v = post_result(survivor, agent_token, monitor, address, True)
        if status == 200 and v["result"]["accepted"] == 1:
            while healthy(survivor, token, account, pool) is not True:
                time.sleep(0.002)
            break
        refused += status != 200
        time.sleep(0.05)
    took = time.monotonic() - t0
    print(f"RESULT failover: kill -9 of the judge -> next verdict change served by the survivor "
          f"after {took:.2f} s ({refused} results refused meanwhile: 503, the judge unreachable)")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "writes":
        writes(args[0], args[1], args[2], args[3], int(args[4]))
    elif cmd == "verdicts":
        verdicts(*args[:6], int(args[6]))
    elif cmd == "failover":
        failover(args[0], args[1], args[2], args[3], args[4], int(args[5]), args[6], args[7])
