"""The web page of `wanwu serve` in a real browser: Playwright (playwright-core
from npm, see package.json) drives Debian's headless Chromium through
tests/server/page_check.js. Screenshots are kept under the build directory
(test-artifacts/)."""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serverlib  # noqa: E402
from serverlib import Server, log  # noqa: E402
import wwtest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = "/usr/bin/chromium"


def main():
    shared, model = serverlib.model_path()
    node = shutil.which("node")
    if not node:
        wwtest.skip("node is not installed (scripts/install-deps.sh installs nodejs)")
    if not os.access(CHROMIUM, os.X_OK):
        wwtest.skip("%s is not installed (scripts/install-deps.sh installs chromium)" % CHROMIUM)
    if not os.path.isfile(os.path.join(wwtest.SOURCE_DIR, "node_modules", "playwright-core",
                                       "package.json")):
        wwtest.skip("playwright-core is not installed: run 'npm ci' in %s" % wwtest.SOURCE_DIR)

    image = os.path.join(wwtest.sample_dir(shared), "n01440764_tench.JPEG")
    if not os.path.isfile(image):
        image = wwtest.all_images(shared)[0]
    expected = serverlib.cli_results([image], model, k=3)[image]
    tmp = os.environ.get("WANWU_TEST_TMP") or wwtest.tmp_dir()
    artifacts = os.path.join(os.path.dirname(os.path.abspath(tmp)), "test-artifacts")
    os.makedirs(artifacts, exist_ok=True)

    c = wwtest.Checker("test_server_browser")
    with Server(["--model", model, "--workers", "1"], name="browser") as srv:
        env = dict(os.environ, WANWU_URL=srv.url, WANWU_IMAGE=image,
                   WANWU_EXPECTED=json.dumps(expected), WANWU_ARTIFACTS=artifacts,
                   PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
        log("page %s, image %s, expecting %s" % (srv.url, os.path.basename(image),
                                                  expected["top"][0]["label"]))
        try:
            p = subprocess.run([node, os.path.join(HERE, "page_check.js")], env=env,
                               cwd=wwtest.SOURCE_DIR, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=300)
            out, rc = p.stdout.decode("utf-8", "replace"), p.returncode
        except subprocess.TimeoutExpired as e:
            out, rc = (e.stdout or b"").decode("utf-8", "replace") + "\n[timed out]", -9
        log(out.rstrip())
        c.check(rc == 0, "the page classifies an uploaded image in Chromium (page_check.js)",
                "exit %d" % rc)
    c.check(srv.returncode == 0, "server exits 0", srv.stderr()[-2000:])
    c.check(srv.sanitizer_report() is None, "no sanitizer report", srv.sanitizer_report())
    shots = sorted(f for f in os.listdir(artifacts) if f.startswith("serve-page"))
    c.check(len(shots) >= 2, "screenshots saved in %s" % artifacts, shots)
    c.done()


if __name__ == "__main__":
    main()
