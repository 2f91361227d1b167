#!/usr/bin/env python3
"""Result ingestion load: every location of TOKENS.json (39 in bench/regions.sh: 13 regions x 3),
each reporting on 10,000 origins at a 60 s interval through the agent protocol
(POST /agent/v1/results, one batch per second), for two minutes (INGEST_SECONDS). Prints the controllers' CPU and the POSTs' durations (a POST returns once its verdicts
are recorded) for the first interval (every result changes a verdict) and the second (steady).

Usage: ingest.py BASE[,BASE...] TOKENS.json MONITOR_ID PID[,PID...]
(locations are spread over the bases in turn; CPU is summed over the PIDs). A location is named
after its region and a number (`weu0`), as its token was made."""
import json, os, sys, threading, time, urllib.request
bases, tokens, monitor, pids = sys.argv[1].split(","), json.load(open(sys.argv[2])), sys.argv[3], sys.argv[4].split(",")
tck = float(os.sysconf("SC_CLK_TCK"))
N, INTERVAL, SECONDS = 10000, 60, int(os.environ.get("INGEST_SECONDS", "120"))
def address(i): return f"127.{1 + i // 65536}.{(i // 256) % 256}.{i % 256}"
keys = [{"monitor": monitor, "address": address(i), "port": 0, "host": None} for i in range(N)]
# Index 0: the first interval (every pair's first check: every result changes a verdict);
# index 1: the second (steady state), which is what the goals are about.
latencies, lock, sent, marks = [[], []], threading.Lock(), [0, 0], []
def cpu():
    """CPU seconds of every controller."""
    total = 0
    for pid in pids:
        f = open(f"/proc/{pid}/stat").read().split()
        total += int(f[13]) + int(f[14])
    return total / tck
def location(region, name, offset, base):
    start = time.time()
    for second in range(SECONDS):
        # This second's share of the interval: every origin once per 60 s, spread evenly.
        lo = ((second + offset) % INTERVAL) * N // INTERVAL
        hi = ((second + offset) % INTERVAL + 1) * N // INTERVAL
        now = int(time.time() * 1e6)
        results = [{"key": keys[i], "at": now, "rtt_micros": 1000,
                    "facts": {"outcome": {"Http": {"status": 503 if (i + second) % 997 == 0 else 200, "body_matched": True}}, "rtt_micros": 1000}}
                   for i in range(lo, hi)]
        for r in results: del r["rtt_micros"]
        body = json.dumps({"region": region, "location": name, "results": results}).encode()
        req = urllib.request.Request(f"{base}/agent/v1/results", body, method="POST",
                                     headers={"Authorization": f"Bearer {tokens[name]}", "Content-Type": "application/json"})
        t0 = time.time(); urllib.request.urlopen(req).read(); dt = time.time() - t0
        with lock:
            latencies[second >= INTERVAL].append(dt); sent[second >= INTERVAL] += len(results)
            if second == INTERVAL and not marks:
                marks.append((cpu(), time.time()))
        time.sleep(max(0.0, start + second + 1 - time.time()))
# Locations are spread over the controllers in turn (a follower hands its results to the judge).
threads = [threading.Thread(target=location, args=(name.rstrip("0123456789").upper(), name, i, bases[i % len(bases)]))
           for i, name in enumerate(tokens)]
c0, w0 = cpu(), time.time()
for t in threads: t.start()
for t in threads: t.join()
c1, w1 = cpu(), time.time()
cm, wm = marks[0]
for phase, (name, a, b, ca, cb) in enumerate([("first interval", w0, wm, c0, cm), ("steady state", wm, w1, cm, c1)]):
    lat = sorted(latencies[phase])
    pick = lambda q: lat[int((len(lat) - 1) * q)] * 1000
    print(f"RESULT ingestion {name}: controllers={len(bases)} locations={len(tokens)} results={sent[phase]} results_per_s={sent[phase] / (b - a):.0f} "
          f"controllers_cpu={(cb - ca) / (b - a) * 100:.1f}% of one core (goal <= 100%) "
          f"verdict_applied_after p50={pick(0.5):.1f}ms p99={pick(0.99):.1f}ms (goal <= 200 ms; a batch's POST returns once its verdicts are recorded)")
