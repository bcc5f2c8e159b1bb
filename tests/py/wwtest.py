"""Shared helpers for wanwu's scripted end-to-end tests.

Not a test itself (ctest runs tests/**/test_*.py only). Imported by
tests/py/test_*.py and tests/cli/test_*.py, which run with Debian's
/usr/bin/python3 (torch + torchvision + PIL).

Environment (set by tests/CMakeLists.txt):
  WANWU_BIN         the `wanwu` command-line binary
  WANWU_SHARED      shared data dir (models/, imagenet-sample/)
  WANWU_TEST_TMP    scratch dir (caches live here)
  WANWU_SOURCE_DIR  source tree
  CI                when set (and not "false"/"0"), missing prerequisites
                    are failures instead of skips
"""

import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

# torch's OpenMP threads spin while waiting; on a busy 2-core machine that
# makes inference 5-40x slower. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("WANWU_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))

# Preprocessing constants (torchvision's ImageNet eval transforms).
RESIZE = 256
CROP = 224
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

JSON_KEYS = {"file", "model", "top", "ms"}
ERROR_KEYS = {"file", "error"}
TOP_KEYS = {"class_index", "label", "prob"}
MS_KEYS = {"decode", "preprocess", "inference"}


def log(*args):
    print(*args, flush=True)


def in_ci():
    v = os.environ.get("CI")
    return v is not None and v.strip().lower() not in ("false", "0", "no", "")


def skip(reason):
    """Missing prerequisite: loud skip (exit 77), or a failure under CI."""
    if in_ci():
        log("FAIL: prerequisite missing (CI is set, so this is not a skip): %s" % reason)
        sys.exit(1)
    log("")
    log("*" * 78)
    log("*** SKIP: %s ***" % reason)
    log("*" * 78)
    sys.exit(SKIP)


def shared_dir(need_models=False):
    d = os.environ.get("WANWU_SHARED") or os.path.join(SOURCE_DIR, "..", "shared")
    d = os.path.abspath(d)
    if not os.path.isfile(os.path.join(d, "imagenet-sample", "labels.tsv")):
        skip("shared data dir not found: %s (expected imagenet-sample/labels.tsv there; "
             "set WANWU_SHARED)" % d)
    if need_models and not os.path.isfile(real_model_path(d)):
        skip("real weights not found: %s" % real_model_path(d))
    return d


def real_model_path(shared):
    return os.path.join(shared, "models", "mobilenet_v2-q8dq.pth")


def tmp_dir(*sub):
    base = os.environ.get("WANWU_TEST_TMP")
    if not base:
        base = os.path.join(tempfile.gettempdir(), "wanwu-test-tmp-%d" % os.getuid())
    d = os.path.join(base, *sub)
    os.makedirs(d, exist_ok=True)
    return d


@contextlib.contextmanager
def file_lock(name):
    """Inter-process lock (ctest -j runs tests concurrently)."""
    path = os.path.join(tmp_dir(), name + ".lock")
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def atomic_write_json(path, obj):
    t = path + ".tmp.%d" % os.getpid()
    with open(t, "w") as f:
        json.dump(obj, f)
    os.replace(t, path)


def cache_dirs():
    """Where PyTorch reference results are cached: $WANWU_TEST_TMP/cache, and
    also a per-user cache (~/.cache/wanwu-tests, or $WANWU_TEST_CACHE) so that
    the sanitizer build's run of the suite, which has its own WANWU_TEST_TMP,
    reuses what the release build computed. Entries are keyed by what they
    depend on, so a stale entry is never used."""
    dirs = [tmp_dir("cache")]
    user = os.environ.get("WANWU_TEST_CACHE")
    if not user:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        user = os.path.join(base, "wanwu-tests")
    try:
        os.makedirs(user, exist_ok=True)
        if os.access(user, os.W_OK) and os.path.realpath(user) != os.path.realpath(dirs[0]):
            dirs.append(user)
    except OSError:
        pass
    return dirs


def torch_version_key():
    import torch
    import torchvision
    import PIL
    return "torch%s-tv%s-pil%s" % (torch.__version__, torchvision.__version__, PIL.__version__)


def cache_load(name):
    for d in cache_dirs():
        p = os.path.join(d, name)
        try:
            with open(p) as f:
                return json.load(f)
        except (OSError, ValueError):
            continue
    return None


def cache_store(name, obj):
    for d in cache_dirs():
        try:
            atomic_write_json(os.path.join(d, name), obj)
        except OSError:
            pass


def wanwu_bin():
    b = os.environ.get("WANWU_BIN")
    if not b:
        for cand in ("build-e2e", "build"):
            p = os.path.join(SOURCE_DIR, cand, "wanwu")
            if os.access(p, os.X_OK):
                b = p
                break
    if not b or not os.access(b, os.X_OK):
        skip("wanwu binary not found (WANWU_BIN=%r)" % os.environ.get("WANWU_BIN"))
    return b


def import_torch(threads=2):
    try:
        import torch
        import torchvision  # noqa: F401
        import PIL  # noqa: F401
    except Exception as e:  # pragma: no cover
        skip("torch/torchvision/PIL not importable with %s: %s" % (sys.executable, e))
    torch.set_num_threads(threads)
    return torch


# ---- images ---------------------------------------------------------------

def sample_dir(shared):
    return os.path.join(shared, "imagenet-sample")


def read_labels(shared):
    """[(file, synset, class_index, name)] in labels.tsv order."""
    rows = []
    with open(os.path.join(sample_dir(shared), "labels.tsv")) as f:
        header = f.readline().rstrip("\n").split("\t")
        assert header[:4] == ["file", "synset", "class_index", "name"], header
        for line in f:
            if not line.strip():
                continue
            p = line.rstrip("\n").split("\t")
            rows.append((p[0], p[1], int(p[2]), p[3]))
    return rows


def all_images(shared):
    return [os.path.join(sample_dir(shared), r[0]) for r in read_labels(shared)]


def grayscale_images(paths):
    from PIL import Image
    out = []
    for p in paths:
        with Image.open(p) as im:
            if im.mode != "RGB":
                out.append(p)
    return out


def spread_images(shared, n=20, n_gray=2):
    """n images spread evenly across the folder, plus n_gray grayscale ones."""
    paths = all_images(shared)
    step = max(1, len(paths) // n)
    picked = paths[::step][:n]
    gray = [p for p in grayscale_images(paths) if p not in picked]
    have_gray = len(grayscale_images(picked))
    picked += gray[: max(0, n_gray - have_gray)]
    return picked


def preprocess_transform():
    from torchvision import transforms
    return transforms.Compose([
        transforms.Resize(RESIZE),
        transforms.CenterCrop(CROP),
        transforms.ToTensor(),
        transforms.Normalize(mean=MEAN, std=STD),
    ])


def load_batch(paths):
    """The exact torchvision preprocessing, stacked into an N x 3 x 224 x 224 tensor."""
    import torch
    from PIL import Image
    tf = preprocess_transform()
    ts = []
    for p in paths:
        with open(p, "rb") as f:
            img = Image.open(f).convert("RGB")
        ts.append(tf(img))
    return torch.stack(ts)


# ---- models on the torch side --------------------------------------------

def build_torch_model(arch):
    import torchvision
    if arch == "resnet18":
        return torchvision.models.resnet18()
    if arch == "mobilenet_v2":
        return torchvision.models.mobilenet_v2()
    raise ValueError(arch)


def torch_model_from_file(arch, path):
    import torch
    sd = torch.load(path, map_location="cpu")
    m = build_torch_model(arch)
    m.load_state_dict(sd, strict=True)  # casts fp16 tensors to the fp32 params
    m.eval()
    return m


def torch_topk(model, paths, n=20, batch=1, progress=None):
    """{path: [(class_index, prob), ...]}: PyTorch's n most probable classes.

    (Batch 1 is the fastest on this machine's torch build.)"""
    import torch
    out = {}
    with torch.no_grad():
        for i in range(0, len(paths), batch):
            chunk = paths[i:i + batch]
            probs = torch.softmax(model(load_batch(chunk)), dim=1)
            for p, row in zip(chunk, probs):
                v, ix = torch.topk(row, n)
                out[p] = [(int(a), float(b)) for a, b in zip(ix, v)]
            if progress and (i // batch) % progress == progress - 1:
                log("  torch: %d/%d images" % (i + len(chunk), len(paths)))
    return out


def topk_from_probs(probs, k):
    order = sorted(range(len(probs)), key=lambda i: (-probs[i], i))[:k]
    return [(i, probs[i]) for i in order]


def imagenet_categories():
    from torchvision.models import _meta
    return list(_meta._IMAGENET_CATEGORIES)


# ---- running the CLI ------------------------------------------------------

SANITIZER_RE = re.compile(r"(AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                          r"ThreadSanitizer|MemorySanitizer|runtime error:)")


class Result:
    def __init__(self, args, returncode, stdout, stderr, seconds):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds

    @property
    def sanitizer_report(self):
        return bool(SANITIZER_RE.search(self.stderr))

    @property
    def crashed(self):
        """Killed by a signal, a shell-style signal status, or a sanitizer report
        (UBSan/LSan exit with small codes that would otherwise look like errors)."""
        return self.returncode < 0 or self.returncode >= 128 or self.sanitizer_report

    def describe(self):
        rc = self.returncode
        if rc < 0:
            try:
                rc = "%d (%s)" % (rc, signal.Signals(-rc).name)
            except ValueError:
                pass
        tail = lambda s: s if len(s) < 3000 else s[:1500] + "\n...\n" + s[-1500:]
        return ("command: %s\nexit: %s\n--- stdout ---\n%s\n--- stderr ---\n%s" %
                (" ".join(self.args[:12]) + (" ... (%d args)" % len(self.args) if len(self.args) > 12 else ""),
                 rc, tail(self.stdout), tail(self.stderr)))


def run_cli(args, env=None, cwd=None, timeout=1500):
    cmd = [wanwu_bin()] + list(args)
    full_env = dict(os.environ)
    if env:
        for k, v in env.items():
            if v is None:
                full_env.pop(k, None)
            else:
                full_env[k] = v
    t0 = time.time()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env,
                           cwd=cwd, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return Result(cmd, -9, (e.stdout or b"").decode("utf-8", "replace"),
                      (e.stderr or b"").decode("utf-8", "replace") + "\n[timed out]", timeout)
    return Result(cmd, p.returncode, p.stdout.decode("utf-8", "replace"),
                  p.stderr.decode("utf-8", "replace"), time.time() - t0)


def parse_json_lines(text):
    """Every non-empty stdout line must be a JSON object. Returns (objs, errors)."""
    objs, errors = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            o = json.loads(line)
        except ValueError as e:
            errors.append("stdout line %d is not JSON (%s): %r" % (n, e, line[:200]))
            continue
        if not isinstance(o, dict):
            errors.append("stdout line %d is not a JSON object: %r" % (n, line[:200]))
            continue
        objs.append(o)
    return objs, errors


def check_result_object(o, arch=None, k=None):
    """Problems with one successful --json object (empty list when fine)."""
    probs = []
    if set(o) != JSON_KEYS:
        probs.append("keys %s, expected exactly %s" % (sorted(o), sorted(JSON_KEYS)))
    if arch is not None and o.get("model") != arch:
        probs.append("model %r, expected %r" % (o.get("model"), arch))
    top = o.get("top")
    if not isinstance(top, list):
        return probs + ["'top' is not a list"]
    if k is not None and len(top) != k:
        probs.append("top has %d entries, expected %d" % (len(top), k))
    for e in top:
        if not isinstance(e, dict) or set(e) != TOP_KEYS:
            probs.append("top entry %r does not have exactly keys %s" % (e, sorted(TOP_KEYS)))
            continue
        if not isinstance(e["class_index"], int) or not isinstance(e["prob"], (int, float)) \
                or not isinstance(e["label"], str):
            probs.append("top entry has wrong value types: %r" % (e,))
        elif not (0.0 <= e["prob"] <= 1.0):
            probs.append("prob out of [0,1]: %r" % (e,))
    ps = [e.get("prob", 0) for e in top if isinstance(e, dict)]
    if any(ps[i] < ps[i + 1] for i in range(len(ps) - 1)):
        probs.append("top is not sorted by descending prob: %r" % ps)
    ms = o.get("ms")
    if not isinstance(ms, dict) or not MS_KEYS <= set(ms):
        probs.append("'ms' is %r, expected an object with %s" % (ms, sorted(MS_KEYS)))
    elif not all(isinstance(ms[x], (int, float)) and ms[x] >= 0 for x in MS_KEYS):
        probs.append("'ms' values must be non-negative numbers: %r" % (ms,))
    return probs


def classify_json(paths, model, k=5, extra=(), batch=None, env=None):
    """Runs `wanwu classify --json` on paths (in batches of `batch` files).

    Returns (by_file, problems, results): by_file maps a path to its JSON object.
    """
    by_file, problems, results = {}, [], []
    batch = batch or len(paths)
    for i in range(0, len(paths), batch):
        chunk = paths[i:i + batch]
        args = ["classify", "--json", "--top", str(k)]
        if model:
            args += ["--model", model]
        args += list(extra) + chunk
        r = run_cli(args, env=env)
        results.append(r)
        if r.returncode != 0 or r.crashed:
            problems.append("wanwu exited %d on a batch of %d good images\n%s" %
                            (r.returncode, len(chunk), r.describe()))
        objs, errs = parse_json_lines(r.stdout)
        problems += errs
        for o in objs:
            f = o.get("file")
            if f in by_file:
                problems.append("file %r reported twice" % f)
            by_file[f] = o
        missing = [p for p in chunk if p not in by_file]
        if missing:
            problems.append("%d of %d files have no JSON line with that exact \"file\" value, e.g. %r; "
                            "got files %r" % (len(missing), len(chunk), missing[0],
                                              [o.get("file") for o in objs[:3]]))
    return by_file, problems, results


def compare_topk(name, ref, got, k, prob_tol, tie_tol=1e-5):
    """Compares one wanwu JSON object with PyTorch's answer.

    `ref` is PyTorch's [(class_index, prob), ...] sorted best first, at least
    k long (longer is better: it is used to look up the probability of a
    class wanwu ranks where PyTorch does not). The class at each rank must be
    PyTorch's class at that rank; a different class is accepted only when
    PyTorch's probabilities of the two are tied within tie_tol (so that a
    rounding-level difference cannot fail the test). Every probability must
    be within prob_tol of PyTorch's for that class.
    Returns (problems, max_abs_prob_diff, tie_notes).
    """
    problems, notes, maxdiff = [], [], 0.0
    lookup = dict(ref)
    top = got.get("top") or []
    if len(top) != k:
        return ["%s: %d entries in top, expected %d" % (name, len(top), k)], float("inf"), notes
    for rank, (e, (ri, rp)) in enumerate(zip(top, ref)):
        ci, p = e.get("class_index"), e.get("prob")
        if not isinstance(ci, int) or not isinstance(p, (int, float)):
            problems.append("%s rank %d: bad entry %r" % (name, rank + 1, e))
            maxdiff = float("inf")
            continue
        tp = lookup.get(ci)
        if ci != ri:
            desc = ("%s rank %d: wanwu class %d (prob %.6f, PyTorch's prob %s), PyTorch class %d "
                    "(prob %.6f); wanwu top-%d %s, PyTorch %s" %
                    (name, rank + 1, ci, p, "%.6f" % tp if tp is not None else "not in its top %d" % len(ref),
                     ri, rp, k, [x.get("class_index") for x in top], [x[0] for x in ref[:k]]))
            if tp is not None and abs(tp - rp) <= tie_tol:
                notes.append("near-tie accepted: " + desc)
            else:
                problems.append(desc)
                continue
        d = abs(p - tp)
        maxdiff = max(maxdiff, d)
        if d > prob_tol:
            problems.append("%s rank %d class %d: prob %.6f, PyTorch %.6f (diff %.2e > %.0e)" %
                            (name, rank + 1, ci, p, tp, d, prob_tol))
    return problems, maxdiff, notes


def join_problems(probs, n=2):
    """One line for one image's problems."""
    more = " | (+%d more)" % (len(probs) - n) if len(probs) > n else ""
    return " | ".join(probs[:n]) + more


class Checker:
    """Collects failures; prints a summary line and exits accordingly."""

    def __init__(self, name):
        self.name = name
        self.failures = []
        self.passed = 0
        self.t0 = time.time()

    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            log("  ok   %s" % what)
        else:
            self.failures.append(what)
            log("  FAIL %s" % what)
            if detail:
                for line in str(detail).splitlines():
                    log("       " + line)
        return cond

    def done(self, extra=""):
        dt = time.time() - self.t0
        if self.failures:
            log("\n%s: FAILED %d of %d checks (%.1fs)%s" %
                (self.name, len(self.failures), len(self.failures) + self.passed, dt,
                 ("; " + extra) if extra else ""))
            for f in self.failures:
                log("  - " + f)
            sys.exit(1)
        log("\n%s: PASSED all %d checks (%.1fs)%s" % (self.name, self.passed, dt,
                                                     ("; " + extra) if extra else ""))
        sys.exit(0)
