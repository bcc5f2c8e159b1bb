"""`wanwu serve` over loopback: every route, every error status, uploads cut
off mid-body, a stalled client, graceful shutdown with a request in flight.

Answers must equal `wanwu classify --json` for the same image.
"""

import io
import json
import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serverlib  # noqa: E402
from serverlib import Server, log, multipart, read_http_response, same_answer  # noqa: E402
import wwtest  # noqa: E402


def png_of_size(width, height):
    """A small, valid grayscale PNG with the given dimensions."""
    from PIL import Image
    buf = io.BytesIO()
    Image.new("L", (width, height), 128).save(buf, format="PNG")
    return buf.getvalue()


def main():
    shared, model = serverlib.model_path()
    images = wwtest.spread_images(shared, n=4, n_gray=1)
    jpeg_path = images[0]
    with open(jpeg_path, "rb") as f:
        jpeg = f.read()
    cli = serverlib.cli_results(images, model, k=5)
    c = wwtest.Checker("test_server_api")

    log("== main server: 1 worker, queue 1, 1 MiB uploads, 1 Mpixel images")
    srv = Server(["--model", model, "--workers", "1", "--queue", "1", "--max-upload-mb", "1",
                  "--max-pixels", "1000000", "--client-timeout-s", "3"], name="api-main")
    try:
        check_routes(c, srv, jpeg, jpeg_path, images, cli)
        check_client_errors(c, srv, jpeg)
        check_queue_full(c, srv, jpeg)
        check_broken_uploads(c, srv, jpeg, cli[jpeg_path])
        check_metrics(c, srv)
        check_drain(c, srv, jpeg, cli[jpeg_path])
    finally:
        rc = srv.stop()
    c.check(rc == 0, "main server exits 0 after SIGTERM", "exit %r\n%s" % (rc, srv.stderr()[-3000:]))
    c.check(srv.sanitizer_report() is None, "main server: no sanitizer report",
            srv.sanitizer_report())

    log("== token server")
    with Server(["--model", model, "--workers", "1", "--token", "s3cret"], name="api-token") as tok:
        check_token(c, tok, jpeg)
    c.check(tok.returncode == 0, "token server exits 0", tok.stderr()[-2000:])

    log("== timeout server: --timeout-ms 1")
    with Server(["--model", model, "--workers", "1", "--timeout-ms", "1"], name="api-timeout") as slow:
        status, h, obj = slow.classify(jpeg)
        c.check(status == 504 and isinstance(obj, dict) and "error" in obj,
                "504 when classification takes longer than --timeout-ms", (status, obj))
        status, _, obj = slow.json("GET", "/healthz")
        c.check(status == 200, "server still healthy after a timeout", (status, obj))
    c.check(slow.returncode == 0, "timeout server exits 0 (the late answer is dropped cleanly)",
            slow.stderr()[-2000:])

    log("== two models of one architecture are named by file stem")
    other = os.path.join(wwtest.tmp_dir("server"), "mnv2-other.pth")
    if not os.path.lexists(other):
        os.symlink(model, other)
    with Server(["--model", model, "--model", other, "--workers", "1"], name="api-two") as two:
        status, h, obj = two.json("GET", "/api/v1/models")
        names = [m.get("name") for m in obj.get("models", [])] if status == 200 else obj
        c.check(names == ["mobilenet_v2-q8dq", "mnv2-other"] and obj.get("default") == names[0],
                "two mobilenet_v2 files: named by file stem, the first is the default", obj)
        status, h, obj = two.classify(jpeg, "?model=mnv2-other&top=2")
        c.check(status == 200 and obj.get("model") == "mnv2-other" and len(obj["top"]) == 2,
                "classify with the second model by its stem", (status, obj))
        status, h, obj = two.classify(jpeg, "?model=mobilenet_v2")
        c.check(status == 404, "the shared architecture name is not a model name then",
                (status, obj))
    c.check(two.returncode == 0, "two-model server exits 0", two.stderr()[-2000:])
    r = wwtest.run_cli(["serve", "--port", "0", "--model", model, "--model", model], timeout=120)
    c.check(r.returncode == 1 and "same model name" in r.stderr,
            "serving one file twice is refused at startup", r.describe())
    r = wwtest.run_cli(["serve", "--workers", "0"])
    c.check(r.returncode == 2, "a bad option value is a usage error (exit 2)", r.describe())
    c.done()


def check_routes(c, srv, jpeg, jpeg_path, images, cli):
    status, h, obj = srv.json("GET", "/healthz")
    c.check(status == 200 and obj == {"status": "ok"}, "GET /healthz: 200 ok", (status, obj))

    status, h, body = srv.request("GET", "/")
    page = body.decode("utf-8", "replace")
    c.check(status == 200 and h.get("content-type", "").startswith("text/html") and "识别" in page
            and "/app.js" in page, "GET /: the page, with its 识别 button", (status, h, page[:300]))
    c.check("default-src 'self'" in h.get("content-security-policy", ""),
            "the page may load nothing from other hosts (CSP)", h)
    c.check(not re.search(r"(src|href)=\"(https?:)?//", page),
            "the page references no other host", page[:500])
    for path, ctype in (("/app.js", "text/javascript"), ("/app.css", "text/css"),
                        ("/favicon.svg", "image/svg+xml")):
        status, h, body = srv.request("GET", path)
        c.check(status == 200 and h.get("content-type", "").startswith(ctype) and len(body) > 0,
                "GET %s: 200 %s" % (path, ctype), (status, h))
    status, h, body = srv.request("HEAD", "/")
    c.check(status == 200 and body == b"", "HEAD /: 200 without a body", (status, body[:50]))

    status, h, obj = srv.json("GET", "/api/v1/models")
    ok = status == 200 and obj.get("default") == "mobilenet_v2" and len(obj.get("models", [])) == 1
    m = obj["models"][0] if ok else {}
    c.check(ok and m.get("name") == "mobilenet_v2" and m.get("arch") == "mobilenet_v2"
            and m.get("input_size") == 224 and m.get("num_classes") == 1000
            and isinstance(m.get("params"), int) and m["params"] > 3000000,
            "GET /api/v1/models: architecture, input size, parameters", (status, obj))

    # Raw body and multipart, several images, several content types.
    for i, path in enumerate(images):
        with open(path, "rb") as f:
            data = f.read()
        ctype = ["image/jpeg", "application/octet-stream", "image/anything"][i % 3]
        status, h, obj = srv.classify(data, content_type=ctype)
        probs = same_answer(obj, cli[path]) if status == 200 else ["status %d: %r" % (status, obj)]
        c.check(not probs and set(obj) == {"model", "top", "ms"} and len(obj["top"]) == 5,
                "POST raw %s (%s): 200, same answer as wanwu classify --json"
                % (os.path.basename(path), ctype), "\n".join(probs))
        if not probs:
            problems = wwtest.check_result_object(dict(obj, file="x"), arch="mobilenet_v2", k=5)
            c.check(not problems, "answer has the CLI's JSON shape", problems)

    body, ctype = multipart("image", "cat photo.jpg", jpeg)
    status, h, obj = srv.json("POST", "/api/v1/classify?top=3", body, {"Content-Type": ctype})
    c.check(status == 200 and obj.get("file") == "cat photo.jpg" and len(obj.get("top", [])) == 3
            and not same_answer(obj, dict(cli[jpeg_path], top=cli[jpeg_path]["top"][:3])),
            "POST multipart field 'image' with ?top=3: 200, file name echoed", (status, obj))
    status, h, obj = srv.classify(jpeg, "?model=mobilenet_v2&top=1")
    c.check(status == 200 and len(obj["top"]) == 1 and obj["top"][0]["class_index"]
            == cli[jpeg_path]["top"][0]["class_index"], "?model=NAME&top=1: 200", (status, obj))


def check_client_errors(c, srv, jpeg):
    def expect(status_want, what, status, h, obj):
        ok = status == status_want and isinstance(obj, dict) and isinstance(obj.get("error"), str) \
            and obj["error"] and set(obj) == {"error"} and h.get("content-type", "").startswith(
                "application/json")
        c.check(ok, "%d %s" % (status_want, what), (status, obj, h.get("content-type")))

    expect(400, "not an image", *srv.classify(b"hello, I am text pretending to be a JPEG"))
    corrupt = jpeg[:600] + bytes((b * 7 + 13) & 0xFF for b in jpeg[600:4000]) + b"\xff\xd9"
    expect(400, "corrupt JPEG", *srv.classify(corrupt))
    expect(400, "truncated JPEG", *srv.classify(jpeg[: len(jpeg) // 2]))
    expect(400, "empty body", *srv.classify(b""))
    expect(400, "top=0", *srv.classify(jpeg, "?top=0"))
    expect(400, "top=abc", *srv.classify(jpeg, "?top=abc"))
    body, ctype = multipart("photo", "x.jpg", jpeg)
    expect(400, "multipart without an 'image' field",
           *srv.json("POST", "/api/v1/classify", body, {"Content-Type": ctype}))
    expect(400, "multipart without a boundary", *srv.classify(jpeg, content_type="multipart/form-data"))

    expect(404, "unknown model", *srv.classify(jpeg, "?model=resnet999"))
    expect(404, "unknown route", *srv.json("GET", "/nope"))
    expect(404, "unknown API route", *srv.json("GET", "/api/v1/nope"))

    status, h, obj = srv.json("GET", "/api/v1/classify")
    expect(405, "GET /api/v1/classify", status, h, obj)
    c.check(h.get("allow") == "POST", "405 names the allowed method", h)
    expect(405, "POST /healthz", *srv.json("POST", "/healthz", b"x", {"Content-Type": "text/plain"}))
    expect(405, "DELETE /api/v1/models", *srv.json("DELETE", "/api/v1/models"))

    expect(415, "text/plain", *srv.classify(jpeg, content_type="text/plain"))
    expect(415, "application/json", *srv.classify(b"{}", content_type="application/json"))

    # 413 from Content-Length, before the body is sent.
    s = srv.raw_socket()
    s.sendall(b"POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
              b"Content-Length: 5000000\r\n\r\n")
    status, h, body = read_http_response(s)
    s.close()
    expect(413, "Content-Length over --max-upload-mb (answered before the body)", status, h,
           json.loads(body or b"null"))
    # 413 for a chunked body (no Content-Length) that grows over the limit.
    big = jpeg * (2 * 1024 * 1024 // len(jpeg) + 1)
    s = srv.raw_socket()
    s.sendall(b"POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    try:
        for i in range(0, len(big), 65536):
            piece = big[i:i + 65536]
            s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        s.sendall(b"0\r\n\r\n")
    except OSError as e:
        log("  (server closed the chunked upload early: %s)" % e)
    status, h, body = read_http_response(s)
    s.close()
    expect(413, "chunked body over --max-upload-mb", status, h,
           json.loads(body) if status else None)
    # 413 from the image header: 1200 x 1000 pixels > 1,000,000.
    expect(413, "image over --max-pixels (from its header)", *srv.classify(png_of_size(1200, 1000),
                                                                           content_type="image/png"))
    status, h, obj = srv.classify(png_of_size(1000, 1000), content_type="image/png")
    c.check(status == 200, "an image of exactly --max-pixels is classified", (status, obj))


def check_queue_full(c, srv, jpeg):
    """1 worker, queue 1: a burst of requests must get some 503 with Retry-After
    and every other one a 200. At least one is served: usually two (one in the
    worker, one queued), one when the worker had not yet taken the first off
    the queue (seen on a loaded machine). (A burst can, rarely, be served too
    fast to fill the queue: up to three bursts.)"""
    for attempt in range(3):
        results = []
        lock = threading.Lock()
        start = threading.Event()

        def client():
            start.wait()
            r = srv.classify(jpeg)
            with lock:
                results.append(r)

        threads = [threading.Thread(target=client) for _ in range(12)]
        for t in threads:
            t.start()
        start.set()
        for t in threads:
            t.join()
        statuses = sorted(r[0] for r in results)
        full = [r for r in results if r[0] == 503]
        if full or set(statuses) - {200}:
            break
        log("  (burst %d was served without a full queue; again)" % (attempt + 1))
    c.check(set(statuses) <= {200, 503} and full and statuses.count(200) >= 1,
            "burst of 12 on 1 worker + queue 1: 200s and 503s only", statuses)
    c.check(all(r[1].get("retry-after") for r in full) and all("error" in r[2] for r in full),
            "503 queue full carries Retry-After and an error", [r[1] for r in full[:2]])


def check_broken_uploads(c, srv, jpeg, cli_obj):
    # Cut off mid-body (raw), then mid-multipart: the server must carry on.
    for kind in ("raw", "multipart"):
        s = srv.raw_socket()
        if kind == "raw":
            head = ("POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                    "Content-Length: %d\r\n\r\n" % len(jpeg)).encode()
            s.sendall(head + jpeg[: len(jpeg) // 3])
        else:
            body, ctype = multipart("image", "a.jpg", jpeg)
            head = ("POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                    "Content-Length: %d\r\n\r\n" % (ctype, len(body))).encode()
            s.sendall(head + body[: len(body) // 2])
        time.sleep(0.2)
        s.close()
        status, h, obj = srv.classify(jpeg)
        c.check(status == 200 and not same_answer(obj, cli_obj),
                "upload cut off mid-body (%s): the next request is served" % kind, (status, obj))

    # A client that stalls mid-upload holds no worker: others are served.
    stalled = srv.raw_socket()
    stalled.sendall(("POST /api/v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                     "Content-Length: %d\r\n\r\n" % len(jpeg)).encode() + jpeg[:1000])
    t0 = time.time()
    ok = 0
    for _ in range(3):
        status, h, obj = srv.classify(jpeg, timeout=20)
        ok += status == 200
    c.check(ok == 3 and time.time() - t0 < 15,
            "while a client stalls mid-upload (1 worker), others are served", (ok, time.time() - t0))
    # --client-timeout-s 3: the stalled connection is closed by the server.
    stalled.settimeout(15)
    t0 = time.time()
    try:
        data = stalled.recv(4096)
    except (ConnectionResetError, socket.timeout) as e:
        data = repr(e).encode()
    c.check(data == b"" or b"Reset" in data, "the stalled connection is closed after the client "
            "timeout (%.1fs)" % (time.time() - t0), data[:200])
    stalled.close()

    # A client that sends headers and then nothing.
    idle = srv.raw_socket()
    idle.sendall(b"POST /api/v1/classify HTTP/1.1\r\nHost: x\r\n")
    status, h, obj = srv.classify(jpeg)
    c.check(status == 200, "a client stuck in its headers does not block others", status)
    idle.close()


def parse_metrics(text):
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        values[name] = float(value)
    return values


def check_metrics(c, srv):
    status, h, body = srv.request("GET", "/metrics")
    text = body.decode()
    c.check(status == 200 and h.get("content-type", "").startswith("text/plain"),
            "GET /metrics: 200 text/plain", (status, h))
    v = parse_metrics(text)
    want = [
        'wanwu_http_requests_total{route="/api/v1/classify",status="200"}',
        'wanwu_http_requests_total{route="/api/v1/classify",status="400"}',
        'wanwu_http_requests_total{route="/api/v1/classify",status="413"}',
        'wanwu_http_requests_total{route="/api/v1/classify",status="503"}',
        'wanwu_http_requests_total{route="/healthz",status="200"}',
        'wanwu_http_requests_total{route="other",status="404"}',
        'wanwu_classify_duration_seconds_bucket{model="mobilenet_v2",le="+Inf"}',
        'wanwu_classify_duration_seconds_count{model="mobilenet_v2"}',
        'wanwu_classify_duration_seconds_sum{model="mobilenet_v2"}',
        "wanwu_http_requests_in_flight",
        "wanwu_queue_depth",
        'wanwu_model_load_seconds{model="mobilenet_v2"}',
        "process_resident_memory_bytes",
    ]
    missing = [w for w in want if w not in v]
    c.check(not missing, "metrics: requests by route and status, latency histogram, in-flight, "
            "queue depth, model load time, RSS", "missing: %s\n%s" % (missing, text[:3000]))
    if not missing:
        c.check(v['wanwu_http_requests_total{route="/api/v1/classify",status="200"}'] >= 10
                and v['wanwu_classify_duration_seconds_count{model="mobilenet_v2"}'] >= 10
                and v["wanwu_queue_depth"] == 0 and v["wanwu_http_requests_in_flight"] >= 1
                and v["process_resident_memory_bytes"] > 1e6
                and v['wanwu_model_load_seconds{model="mobilenet_v2"}'] > 0,
                "metric values are plausible", {k: v[k] for k in want})
        buckets = [(k, x) for k, x in v.items() if k.startswith("wanwu_classify_duration_seconds_bucket")]
        counts = [x for _, x in buckets]
        c.check(counts == sorted(counts), "histogram buckets are cumulative", buckets)


def check_drain(c, srv, jpeg, cli_obj):
    """SIGTERM with an upload in flight: healthz says draining, new connections
    are refused, the in-flight request still gets its answer, exit 0."""
    keep = srv.connection()
    keep.request("GET", "/healthz")
    r = keep.getresponse()
    r.read()
    c.check(r.status == 200, "healthz before shutdown: 200", r.status)

    inflight = srv.raw_socket()
    half = len(jpeg) // 2
    inflight.sendall(("POST /api/v1/classify?top=5 HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      "image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)).encode() + jpeg[:half])
    time.sleep(0.3)
    srv.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    keep.request("GET", "/healthz")
    r = keep.getresponse()
    body = r.read()
    c.check(r.status == 503 and json.loads(body).get("status") == "draining",
            "healthz while draining: 503 draining", (r.status, body))
    keep.close()
    try:
        s = socket.create_connection((srv.host, srv.port), timeout=2)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = read_http_response(s, timeout=3)
        s.close()
        refused = status is None
    except OSError:
        refused = True
    c.check(refused, "no new connections are served while draining")
    inflight.sendall(jpeg[half:])
    status, h, body = read_http_response(inflight, timeout=30)
    inflight.close()
    obj = json.loads(body) if status == 200 else body
    c.check(status == 200 and not same_answer(obj, cli_obj),
            "the request in flight at SIGTERM is finished", (status, obj))


def check_token(c, srv, jpeg):
    status, h, obj = srv.classify(jpeg)
    c.check(status == 401 and "error" in obj and h.get("www-authenticate", "").startswith("Bearer"),
            "401 without a token", (status, obj, h))
    status, h, obj = srv.classify(jpeg, headers={"Authorization": "Bearer wrong"})
    c.check(status == 401, "401 with a wrong token", (status, obj))
    status, h, obj = srv.classify(jpeg, headers={"Authorization": "Bearer s3cret0"})
    c.check(status == 401, "401 with a token that only starts right", (status, obj))
    status, h, obj = srv.json("GET", "/api/v1/models")
    c.check(status == 401, "401 on /api/v1/models without a token", (status, obj))
    status, h, obj = srv.classify(jpeg, headers={"Authorization": "Bearer s3cret"})
    c.check(status == 200 and "top" in obj, "200 with the right token", (status, obj))
    status, h, obj = srv.json("GET", "/api/v1/models", headers={"Authorization": "Bearer s3cret"})
    c.check(status == 200, "models with the right token", (status, obj))
    status, _, _ = srv.request("GET", "/")
    c.check(status == 200, "the page itself needs no token (it asks for it)", status)
    status, _, _ = srv.request("GET", "/healthz")
    c.check(status == 200, "healthz needs no token", status)


if __name__ == "__main__":
    main()
