#!/usr/bin/env python3
"""Load for a running recorder: N threads each sending signed single-event (or batch) requests for
a fixed time; prints acknowledged events per second, latency percentiles, and the server's commit
count, so that the group-commit ratio (events per transaction) is visible.

    python3 bench/recorder_load.py --endpoint http://127.0.0.1:8787 --tenant acme --key-id k1 \
        --secret-file acme.k1.secret --threads 32 --seconds 10 [--batch 1]

Standard library only; the signing is the one in docs/recorder.md.
"""
import argparse, hashlib, hmac, http.client, json, os, threading, time, urllib.parse


def signature(secret, method, path, tenant, key_id, ts, nonce, body):
    s = "\n".join(["CLYRA-HMAC-SHA256-V1", method, path, tenant, key_id, str(ts), nonce,
                   hashlib.sha256(body).hexdigest()])
    return "v1=" + hmac.new(secret, s.encode(), hashlib.sha256).hexdigest()


def metric(host, port, name):
    c = http.client.HTTPConnection(host, port)
    c.request("GET", "/metrics")
    for line in c.getresponse().read().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--tenant", required=True)
    ap.add_argument("--key-id", required=True)
    ap.add_argument("--secret-file", required=True)
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--batch", type=int, default=1)
    a = ap.parse_args()
    secret = open(a.secret_file, "rb").read()
    u = urllib.parse.urlparse(a.endpoint)
    host, port = u.hostname, u.port or 80
    commits0 = metric(host, port, "clyra_recorder_commits_total")
    stop = time.monotonic() + a.seconds
    lat, lock, errors = [], threading.Lock(), [0]

    def worker(t):
        c = http.client.HTTPConnection(host, port)
        n, mine = 0, []
        while time.monotonic() < stop:
            events = [{"kind": "bench.load", "id": f"{os.getpid()}-{t}-{n}-{j}"} for j in range(a.batch)]
            n += 1
            body = json.dumps(events[0] if a.batch == 1 else {"events": events}).encode()
            ts, nonce = int(time.time()), os.urandom(16).hex()
            h = {"Content-Type": "application/json", "X-Clyra-Tenant": a.tenant,
                 "X-Clyra-Key-Id": a.key_id, "X-Clyra-Timestamp": str(ts), "X-Clyra-Nonce": nonce,
                 "X-Clyra-Signature": signature(secret, "POST", "/v1/events", a.tenant, a.key_id, ts, nonce, body)}
            t0 = time.monotonic()
            c.request("POST", "/v1/events", body, h)
            r = c.getresponse()
            r.read()
            if r.status == 200:
                mine.append(time.monotonic() - t0)
            else:
                errors[0] += 1
        with lock:
            lat.extend(mine)

    ths = [threading.Thread(target=worker, args=(i,)) for i in range(a.threads)]
    t0 = time.monotonic()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    elapsed = time.monotonic() - t0
    commits = metric(host, port, "clyra_recorder_commits_total") - commits0
    lat.sort()
    events = len(lat) * a.batch
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else 0
    print(f"{len(lat)} requests ({events} events) in {elapsed:.1f}s: {events / elapsed:.0f} events/s, "
          f"{errors[0]} errors; latency p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms; "
          f"{commits:.0f} commits ({events / max(commits, 1):.1f} events per commit)")


if __name__ == "__main__":
    main()
