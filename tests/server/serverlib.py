"""Helpers for the `wanwu serve` tests: start a server on a free loopback
port, talk HTTP to it (politely or not), stop it and check it exited
cleanly (exit 0, no sanitizer report).

Not a test itself (ctest runs tests/**/test_*.py only).
"""

import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "py"))

import wwtest  # noqa: E402
from wwtest import log  # noqa: E402,F401

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer", "AddressSanitizer:DEADLYSIGNAL")


class Server:
    """A running `wanwu serve`. Use as a context manager, or call stop()."""

    def __init__(self, args, name="serve", env=None, ready_timeout=180):
        self.name = name
        self.log_path = os.path.join(wwtest.tmp_dir("server"), "%s.log" % name)
        self.log_file = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.args = [wwtest.wanwu_bin(), "serve", "--host", "127.0.0.1", "--port", "0"] + list(args)
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.log_file,
                                     env=full_env)
        self.stdout = b""
        self.url = self._wait_ready(ready_timeout)
        m = re.match(r"http://([^:/]+):(\d+)/", self.url)
        self.host, self.port = m.group(1), int(m.group(2))
        self.returncode = None

    def _wait_ready(self, timeout):
        deadline = time.time() + timeout
        fd = self.proc.stdout.fileno()
        while time.time() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                self.stdout += chunk
                m = re.search(rb"(http://[^ ]+/)", self.stdout)
                if m and b"\n" in self.stdout:
                    return m.group(1).decode()
            if self.proc.poll() is not None:
                break
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("wanwu serve did not become ready (exit %r)\nargs: %s\nstdout: %r\n"
                           "stderr:\n%s" % (self.proc.returncode, " ".join(self.args),
                                            self.stdout, self.stderr()))

    def stderr(self):
        if not self.log_file.closed:
            self.log_file.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def sanitizer_report(self):
        text = self.stderr()
        for marker in SANITIZER_MARKERS:
            i = text.find(marker)
            if i >= 0:
                return text[max(0, i - 200):i + 4000]
        return None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=90):
        """SIGTERM (or `sig`) and wait; returns the exit status."""
        if self.returncode is not None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.returncode = "hung (killed after %ds)" % timeout
        self.proc.stdout.close()
        self.log_file.close()
        return self.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- talking to it -----------------------------------------------------

    def connection(self, timeout=60):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60):
        """One request on a fresh connection: (status, headers dict, body bytes)."""
        c = self.connection(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def json(self, method, path, body=None, headers=None, timeout=60):
        status, h, data = self.request(method, path, body, headers, timeout)
        try:
            obj = json.loads(data.decode("utf-8")) if data else None
        except ValueError:
            obj = {"_not_json": data[:200].decode("utf-8", "replace")}
        return status, h, obj

    def classify(self, image_bytes, query="", content_type="image/jpeg", headers=None, timeout=60):
        h = {"Content-Type": content_type}
        h.update(headers or {})
        return self.json("POST", "/api/v1/classify" + query, image_bytes, h, timeout)

    def raw_socket(self, timeout=30):
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        return s


def read_http_response(sock, timeout=30):
    """Reads one HTTP/1.1 response from a raw socket: (status, headers, body).
    Status is None when the server closed the connection without answering."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    if b"\r\n\r\n" not in data:
        return None, {}, data
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    try:
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return status, headers, body


def multipart(field, filename, content, content_type="image/jpeg", boundary="wanwuTestBoundary7"):
    """A multipart/form-data body with one file field: (body, content_type header)."""
    parts = [
        b"--" + boundary.encode(),
        ('Content-Disposition: form-data; name="%s"; filename="%s"' % (field, filename)).encode(),
        ("Content-Type: %s" % content_type).encode(),
        b"",
        content,
        b"--" + boundary.encode() + b"--",
        b"",
    ]
    return b"\r\n".join(parts), "multipart/form-data; boundary=" + boundary


def model_path():
    shared = wwtest.shared_dir(need_models=True)
    return shared, wwtest.real_model_path(shared)


def cli_results(paths, model, k):
    """`wanwu classify --json --top k` for each path: {path: object}."""
    by_file, problems, results = wwtest.classify_json(paths, model, k=k)
    if problems:
        raise RuntimeError("wanwu classify failed:\n" + "\n".join(problems[:5]))
    return by_file


def same_answer(server_obj, cli_obj, tol=1e-6):
    """Problems (empty when equal): same model, same classes in order, probs within tol."""
    probs = []
    if not isinstance(server_obj, dict) or "top" not in server_obj:
        return ["server answer is not a result: %r" % (server_obj,)]
    if server_obj.get("model") != cli_obj.get("model"):
        probs.append("model %r != CLI %r" % (server_obj.get("model"), cli_obj.get("model")))
    a, b = server_obj["top"], cli_obj["top"]
    if [e["class_index"] for e in a] != [e["class_index"] for e in b]:
        probs.append("classes %r != CLI %r" % ([e["class_index"] for e in a],
                                               [e["class_index"] for e in b]))
    else:
        for x, y in zip(a, b):
            if abs(x["prob"] - y["prob"]) > tol or x["label"] != y["label"]:
                probs.append("class %d: %r/%.7f != CLI %r/%.7f" % (x["class_index"], x["label"],
                                                                   x["prob"], y["label"], y["prob"]))
    return probs
