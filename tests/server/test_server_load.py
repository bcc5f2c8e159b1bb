"""`wanwu serve` under load: 8 concurrent clients x 50 requests with real
images, every answer 200 and equal to `wanwu classify --json` for that image
(same classes in the same order, probabilities within 1e-6)."""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serverlib  # noqa: E402
from serverlib import Server, log, same_answer  # noqa: E402
import wwtest  # noqa: E402

CLIENTS = 8
REQUESTS_PER_CLIENT = 50
TOP = 5


def main():
    shared, model = serverlib.model_path()
    images = wwtest.spread_images(shared, n=24, n_gray=2)
    data = {}
    for p in images:
        with open(p, "rb") as f:
            data[p] = f.read()
    log("reference: wanwu classify --json on %d images" % len(images))
    cli = serverlib.cli_results(images, model, k=TOP)
    c = wwtest.Checker("test_server_load")

    # A queue as deep as the number of clients: nobody should see 503.
    srv = Server(["--model", model, "--workers", "2", "--queue", str(CLIENTS)], name="load")
    failures = []
    counts = {"ok": 0}
    lock = threading.Lock()

    def client(n):
        conn = srv.connection(timeout=120)  # keep-alive, like a real client
        for i in range(REQUESTS_PER_CLIENT):
            path = images[(n * REQUESTS_PER_CLIENT + i * 7) % len(images)]
            multipart = (i % 5 == 4)
            try:
                if multipart:
                    body, ctype = serverlib.multipart("image", os.path.basename(path), data[path])
                else:
                    body, ctype = data[path], "image/jpeg"
                conn.request("POST", "/api/v1/classify?top=%d" % TOP, body=body,
                             headers={"Content-Type": ctype})
                r = conn.getresponse()
                raw = r.read()
                status = r.status
            except Exception as e:  # noqa: BLE001 - report any client-side failure
                conn.close()
                conn = srv.connection(timeout=120)
                with lock:
                    failures.append("client %d request %d: %r" % (n, i, e))
                continue
            obj = json.loads(raw) if raw else None
            probs = same_answer(obj, cli[path]) if status == 200 else ["status %d: %r" % (status, obj)]
            if multipart and status == 200 and obj.get("file") != os.path.basename(path):
                probs.append("multipart file name %r" % obj.get("file"))
            with lock:
                if probs:
                    failures.append("client %d request %d (%s): %s" %
                                    (n, i, os.path.basename(path), "; ".join(probs)))
                else:
                    counts["ok"] += 1
        conn.close()

    t0 = time.time()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.time() - t0
    total = CLIENTS * REQUESTS_PER_CLIENT
    log("%d requests in %.1fs (%.1f/s)" % (total, dt, total / dt))
    c.check(not failures and counts["ok"] == total,
            "%d clients x %d requests: all 200 and equal to wanwu classify --json"
            % (CLIENTS, REQUESTS_PER_CLIENT),
            "%d ok of %d; first failures:\n%s" % (counts["ok"], total, "\n".join(failures[:10])))

    status, _, body = srv.request("GET", "/metrics")
    text = body.decode()
    line = [l for l in text.splitlines()
            if l.startswith('wanwu_http_requests_total{route="/api/v1/classify",status="200"}')]
    c.check(line and float(line[0].split()[-1]) == total, "metrics count every request", line)
    rc = srv.stop()
    c.check(rc == 0, "server exits 0 after SIGTERM", srv.stderr()[-3000:])
    c.check(srv.sanitizer_report() is None, "no sanitizer report", srv.sanitizer_report())
    c.done("%.1f requests/s" % (total / dt))


if __name__ == "__main__":
    main()
