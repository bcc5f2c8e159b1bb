#!/usr/bin/python3
"""Behaviour of the `wanwu` command-line front end.

  * `wanwu --help` / `wanwu classify --help` (exit 0, every option named)
  * usage errors: unknown options exit 2; other bad invocations fail cleanly
  * bad images (empty, text named .jpg, truncated JPEG/PNG, missing path)
    mixed with good ones: good ones are classified (and match PyTorch), bad
    ones give {"file","error"} lines (--json) or stderr messages (plain),
    exit status non-zero
  * plain output `label (12.3%)`, --top K
  * --model NAME lookup in $WANWU_MODELS (official file names, arbitrary
    names detected by keys, default resnet18 over mobilenet_v2, ./models
    default, empty/missing dir)
  * --arch forcing, unrelated / truncated / garbage weight files: a clear
    error, never a crash (no signal, no sanitizer report)

Weights: the randomly initialised files of tests/py/make_random_models.py.
"""

import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "py"))
import wwtest  # noqa: E402
import make_random_models  # noqa: E402

OPTIONS = ["--model", "--arch", "--top", "--json", "--threads"]
OFFICIAL = {"resnet18": "resnet18-f37072fd.pth", "mobilenet_v2": "mobilenet_v2-b0353104.pth"}
PROB_TOL = 1e-4
SAME_TOL = 1e-6  # same file, same engine

c = wwtest.Checker("test_cli")


def place(src, dst):
    """Hard link (cheap) or copy `src` to `dst`."""
    if os.path.lexists(dst):
        os.remove(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def fresh_dir(*parts):
    d = wwtest.tmp_dir("cli", *parts)
    for name in os.listdir(d):
        p = os.path.join(d, name)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.remove(p)
    return d


def show(r):
    return r.describe()


def clean_failure(r, what, want_code=None, stderr_has=None):
    """A refused invocation: non-zero exit (want_code if given), no crash, a message."""
    ok = r.returncode != 0 and not r.crashed and r.stderr.strip() != ""
    if want_code is not None:
        ok = ok and r.returncode == want_code
    if stderr_has is not None:
        ok = ok and any(s.lower() in r.stderr.lower() for s in stderr_has)
    exp = "exit %s" % (want_code if want_code is not None else "1..127")
    if stderr_has:
        exp += ", stderr mentioning one of %r" % (stderr_has,)
    c.check(ok, "%s -> %s (got exit %d%s)" % (what, exp, r.returncode, ", CRASH" if r.crashed else ""),
            "" if ok else show(r))
    return ok


def one_json(r, what, arch=None, k=5):
    """The single result object of a successful --json run on one image, or None."""
    objs, errs = wwtest.parse_json_lines(r.stdout)
    probs = list(errs)
    if r.returncode != 0 or r.crashed:
        probs.append("exit %d" % r.returncode)
    if len(objs) != 1:
        probs.append("%d JSON objects on stdout, expected 1" % len(objs))
    elif "error" in objs[0]:
        probs.append("error object: %r" % objs[0])
    else:
        probs += wwtest.check_result_object(objs[0], arch, k)
    c.check(not probs, what, "" if not probs else "\n".join(probs) + "\n" + show(r))
    return objs[0] if not probs else None


def same_top(a, b):
    if a is None or b is None:
        return False
    ta, tb = a.get("top") or [], b.get("top") or []
    return len(ta) == len(tb) and all(
        x["class_index"] == y["class_index"] and abs(x["prob"] - y["prob"]) <= SAME_TOL for x, y in zip(ta, tb))


def top_str(o):
    if o is None:
        return "None"
    return "model=%s %s" % (o.get("model"), [(e.get("class_index"), round(e.get("prob", 0), 6))
                                              for e in o.get("top") or []])


# ---------------------------------------------------------------------------

def test_help():
    wwtest.log("\n== help and usage errors")
    r = wwtest.run_cli(["--help"])
    text = r.stdout + r.stderr
    c.check(r.returncode == 0 and r.stdout.strip() != "" and "classify" in text,
            "`wanwu --help`: exit 0, usage on stdout mentioning the classify command", show(r))
    r = wwtest.run_cli(["classify", "--help"])
    text = r.stdout + r.stderr
    missing = [o for o in OPTIONS if o not in text]
    c.check(r.returncode == 0 and r.stdout.strip() != "" and not missing,
            "`wanwu classify --help`: exit 0, documents %s%s" %
            (" ".join(OPTIONS), (" (missing: %s)" % " ".join(missing)) if missing else ""), show(r))


def test_usage_errors(img, model):
    clean_failure(wwtest.run_cli(["classify", "--no-such-option", "--model", model, img]),
                  "`classify --no-such-option`", want_code=2)
    clean_failure(wwtest.run_cli(["--no-such-option"]), "`wanwu --no-such-option`", want_code=2)
    clean_failure(wwtest.run_cli(["classify", "--model", model, "-Z", img]), "`classify -Z`", want_code=2)
    clean_failure(wwtest.run_cli(["no-such-command", img]), "`wanwu no-such-command`")
    clean_failure(wwtest.run_cli(["classify", "--model", model]), "`classify` without images")
    clean_failure(wwtest.run_cli(["classify", "--model", model, "--top"]), "`classify --top` missing value")
    clean_failure(wwtest.run_cli(["classify", "--model", model, "--top", "abc", img]), "`--top abc`")
    clean_failure(wwtest.run_cli(["classify", "--model", model, "--threads", "many", img]),
                  "`--threads many`")
    clean_failure(wwtest.run_cli(["classify", "--model", model, "--arch", "no_such_arch", img]),
                  "`--arch no_such_arch`")


def make_bad_files(good_jpeg):
    from PIL import Image
    d = fresh_dir("bad-images")
    files = {}
    files["empty"] = os.path.join(d, "empty.jpg")
    open(files["empty"], "wb").close()
    files["text"] = os.path.join(d, "text.jpg")
    with open(files["text"], "w") as f:
        f.write("this is not a JPEG, just text pretending to be one\n" * 20)
    data = open(good_jpeg, "rb").read()
    files["truncated_jpeg"] = os.path.join(d, "truncated.jpg")
    with open(files["truncated_jpeg"], "wb") as f:
        f.write(data[: len(data) // 2])
    png = os.path.join(d, "good.png")
    with open(good_jpeg, "rb") as f:
        Image.open(f).convert("RGB").save(png)
    pdata = open(png, "rb").read()
    files["truncated_png"] = os.path.join(d, "truncated.png")
    with open(files["truncated_png"], "wb") as f:
        f.write(pdata[: len(pdata) // 2])
    files["missing"] = os.path.join(d, "does-not-exist.jpg")
    return png, files


def test_bad_images(good, model, arch, ref):
    """good: [jpeg, png...]; ref: {path: torch top list}."""
    wwtest.log("\n== bad images mixed with good ones")
    png, bad = make_bad_files(good[0])
    good = good + [png]
    inputs = [good[0], bad["empty"], bad["text"], good[1], bad["truncated_jpeg"], bad["missing"], png,
              bad["truncated_png"]]
    bad_set = set(bad.values())

    r = wwtest.run_cli(["classify", "--json", "--top", "5", "--model", model] + inputs)
    c.check(r.returncode != 0 and not r.crashed,
            "--json with %d bad + %d good files: exit non-zero, no crash (got %d)" %
            (len(bad), len(good), r.returncode), show(r))
    objs, errs = wwtest.parse_json_lines(r.stdout)
    c.check(not errs, "--json: every stdout line is a JSON object", "\n".join(errs))
    files = [o.get("file") for o in objs]
    c.check(sorted(files) == sorted(inputs), "--json: exactly one line per input file",
            "got files %r\nexpected %r" % (files, inputs))
    if files != inputs and sorted(files) == sorted(inputs):
        wwtest.log("  note: output order differs from command-line order: %r" % files)
    by_file = {o.get("file"): o for o in objs}
    for name, p in sorted(bad.items()):
        o = by_file.get(p)
        ok = o is not None and set(o) == wwtest.ERROR_KEYS and isinstance(o.get("error"), str) \
            and o["error"].strip() != ""
        c.check(ok, "--json: %s file -> {\"file\",\"error\"} only" % name, "got %r" % (o,))
        if ok:
            wwtest.log("       error for %s: %s" % (name, o["error"]))
    for p in good:
        o = by_file.get(p)
        probs = ["no result"] if o is None else (["error object %r" % o] if "error" in o else
                                                  wwtest.check_result_object(o, arch, 5))
        if not probs:
            probs, md, _ = wwtest.compare_topk(os.path.basename(p), ref[p], o, 5, PROB_TOL)
        c.check(not probs, "--json: good file %s classified as PyTorch does" % os.path.basename(p),
                "\n".join(probs))

    r = wwtest.run_cli(["classify", "--top", "3", "--model", model] + inputs)
    c.check(r.returncode != 0 and not r.crashed,
            "plain mode with bad files: exit non-zero, no crash (got %d)" % r.returncode, show(r))
    for name, p in sorted(bad.items()):
        c.check(p in r.stderr or os.path.basename(p) in r.stderr,
                "plain mode: stderr names the %s file" % name, "stderr:\n" + r.stderr)
    lines = [ln for ln in r.stdout.splitlines() if re.search(r"\(\d+(\.\d+)?%\)", ln)]
    c.check(len(lines) == len(good), "plain mode: %d result lines for the %d good files (got %d)" %
            (len(good), len(good), len(lines)), "stdout:\n" + r.stdout)
    bad_in_stdout = [p for p in bad_set if any(os.path.basename(p) in ln for ln in lines)]
    c.check(not bad_in_stdout, "plain mode: no result line for a bad file", "%r" % bad_in_stdout)


def check_plain_line(line, obj, k, what):
    """`line` must hold the k entries of `obj` as `label (12.3%)`, in order."""
    probs = []
    n = len(re.findall(r"\(\d+\.\d%\)", line))
    if n != k:
        probs.append("%d `(x.y%%)` entries, expected %d" % (n, k))
    pos = -1
    for e in (obj.get("top") or [])[:k]:
        m = None
        for m_ in re.finditer(re.escape(e["label"]) + r" \((\d+\.\d)%\)", line):
            if m_.start() > pos:
                m = m_
                break
        if m is None:
            probs.append("no `%s (x.y%%)` after position %d" % (e["label"], pos))
            continue
        pos = m.start()
        if abs(float(m.group(1)) - 100.0 * e["prob"]) > 0.051:
            probs.append("%s printed as %s%%, JSON prob %.6f" % (e["label"], m.group(1), e["prob"]))
    c.check(not probs, what, "\n".join(probs) + "\nline: %r" % line)


def test_output_formats(img, model, arch):
    wwtest.log("\n== output formats and --top")
    tops = {}
    for k in (1, 3, 10):
        tops[k] = one_json(wwtest.run_cli(["classify", "--json", "--top", str(k), "--model", model, img]),
                           "--json --top %d: one object with %d entries" % (k, k), arch, k)
    if tops[3] and tops[10]:
        c.check(same_top(tops[3], {"top": tops[10]["top"][:3]}) and same_top(tops[1], {"top": tops[10]["top"][:1]}),
                "--top 1 and --top 3 are prefixes of --top 10",
                "%s\n%s\n%s" % (top_str(tops[1]), top_str(tops[3]), top_str(tops[10])))
        ps = [e["prob"] for e in tops[10]["top"]]
        c.check(sum(ps) <= 1.0 + 1e-5, "top-10 probabilities sum to <= 1 (%.5f)" % sum(ps))
    for k in (3, 1):
        r = wwtest.run_cli(["classify", "--top", str(k), "--model", model, img])
        lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
        ok = r.returncode == 0 and not r.crashed and len(lines) == 1
        c.check(ok, "plain --top %d: exit 0, one line for one image" % k, show(r))
        if ok and tops[k]:
            check_plain_line(lines[0], tops[k], k, "plain --top %d: `label (12.3%%)` x %d matching --json" % (k, k))
            wwtest.log("       plain: %s" % lines[0])
    r = wwtest.run_cli(["classify", "--model", model, img, img])
    lines = [ln for ln in r.stdout.splitlines() if re.search(r"\(\d+\.\d%\)", ln)]
    c.check(r.returncode == 0 and len(lines) == 2, "plain, default --top, 2 images: 2 result lines", show(r))


def test_model_lookup(img, r18, mnv2, direct):
    """direct: {arch: result object of --model PATH}."""
    wwtest.log("\n== --model NAME lookup in $WANWU_MODELS")
    cwd = fresh_dir("cwd-empty")

    def run(mdir, model_arg, what, expect_arch, cwd=cwd):
        args = ["classify", "--json", "--top", "5"] + (["--model", model_arg] if model_arg else []) + [img]
        env = {"WANWU_MODELS": mdir}
        r = wwtest.run_cli(args, env=env, cwd=cwd)
        o = one_json(r, what + " -> runs, model=%s" % expect_arch, expect_arch)
        if o is not None:
            c.check(same_top(o, direct[expect_arch]),
                    what + " -> same answer as --model <that %s file>" % expect_arch,
                    "got %s\nexpected %s" % (top_str(o), top_str(direct[expect_arch])))

    a = fresh_dir("models-official")
    place(r18, os.path.join(a, OFFICIAL["resnet18"]))
    place(mnv2, os.path.join(a, OFFICIAL["mobilenet_v2"]))
    run(a, "mobilenet_v2", "official names: --model mobilenet_v2", "mobilenet_v2")
    run(a, "resnet18", "official names: --model resnet18", "resnet18")
    run(a, None, "official names: no --model (default resnet18)", "resnet18")
    run(a, OFFICIAL["mobilenet_v2"], "--model %s (a file name in the models dir)" % OFFICIAL["mobilenet_v2"],
        "mobilenet_v2")

    b = fresh_dir("models-arbitrary")
    place(mnv2, os.path.join(b, "a_mobile_net.pth"))  # sorts first
    place(r18, os.path.join(b, "my_weights.pth"))
    run(b, "resnet18", "arbitrary names: --model resnet18 finds my_weights.pth by its keys", "resnet18")
    run(b, "mobilenet_v2", "arbitrary names: --model mobilenet_v2 finds a_mobile_net.pth by its keys",
        "mobilenet_v2")
    run(b, None, "arbitrary names: no --model prefers resnet18 over a mobilenet_v2 that sorts first",
        "resnet18")

    only = fresh_dir("models-only-mobilenet")
    place(mnv2, os.path.join(only, OFFICIAL["mobilenet_v2"]))
    run(only, None, "only mobilenet_v2 present: no --model", "mobilenet_v2")
    r = wwtest.run_cli(["classify", "--json", "--model", "resnet18", img], env={"WANWU_MODELS": only}, cwd=cwd)
    clean_failure(r, "only mobilenet_v2 present: --model resnet18", stderr_has=["resnet18"])

    # Default models directory: ./models
    home = fresh_dir("cwd-with-models")
    os.makedirs(os.path.join(home, "models"))
    place(mnv2, os.path.join(home, "models", OFFICIAL["mobilenet_v2"]))
    run(None, None, "WANWU_MODELS unset, ./models/%s" % OFFICIAL["mobilenet_v2"], "mobilenet_v2", cwd=home)
    run(None, "mobilenet_v2", "WANWU_MODELS unset, --model mobilenet_v2 from ./models", "mobilenet_v2", cwd=home)

    hints = ["download", "http", "--model", ".pth"]
    empty = fresh_dir("models-empty")
    r = wwtest.run_cli(["classify", img], env={"WANWU_MODELS": empty}, cwd=cwd)
    clean_failure(r, "empty models dir, no --model", stderr_has=[empty])
    c.check(any(h in r.stderr for h in hints), "empty models dir: message says how to get a model "
            "(mentions one of %r)" % hints, "stderr:\n" + r.stderr)
    r = wwtest.run_cli(["classify", "--model", "resnet18", img], env={"WANWU_MODELS": empty}, cwd=cwd)
    clean_failure(r, "empty models dir, --model resnet18", stderr_has=[empty])
    missing = os.path.join(empty, "no-such-subdir")
    r = wwtest.run_cli(["classify", img], env={"WANWU_MODELS": missing}, cwd=cwd)
    clean_failure(r, "nonexistent models dir", stderr_has=[missing])
    r = wwtest.run_cli(["classify", img], env={"WANWU_MODELS": None}, cwd=cwd)
    clean_failure(r, "WANWU_MODELS unset and no ./models", stderr_has=["models"])
    r = wwtest.run_cli(["classify", "--model", "no_such_model_name", img], env={"WANWU_MODELS": a}, cwd=cwd)
    clean_failure(r, "--model no_such_model_name", stderr_has=["no_such_model_name"])


def test_arch_and_bad_weights(img, r18, mnv2, direct):
    import torch
    wwtest.log("\n== --arch and bad weight files")
    o = one_json(wwtest.run_cli(["classify", "--json", "--arch", "resnet18", "--model", r18, img]),
                 "--arch resnet18 on resnet18 weights runs", "resnet18")
    c.check(same_top(o, direct["resnet18"]), "--arch resnet18 on resnet18 weights: same answer as without")
    o = one_json(wwtest.run_cli(["classify", "--json", "--arch", "mobilenet_v2", "--model", mnv2, img]),
                 "--arch mobilenet_v2 on mobilenet_v2 weights runs", "mobilenet_v2")
    c.check(same_top(o, direct["mobilenet_v2"]), "--arch mobilenet_v2 on mobilenet_v2 weights: same answer")

    names = ["resnet18", "mobilenet_v2", "arch"]
    for forced, path in (("resnet18", mnv2), ("mobilenet_v2", r18)):
        r = wwtest.run_cli(["classify", "--json", "--arch", forced, "--model", path, img])
        clean_failure(r, "--arch %s on %s weights" % (forced, os.path.basename(path)), stderr_has=names)
        objs, _ = wwtest.parse_json_lines(r.stdout)
        c.check(not any("top" in o for o in objs), "--arch %s on the wrong weights prints no result" % forced,
                r.stdout)

    d = fresh_dir("bad-weights")
    unrelated = os.path.join(d, "unrelated.pth")
    g = torch.Generator().manual_seed(5)
    torch.save({"encoder.weight": torch.randn(16, 8, generator=g), "encoder.bias": torch.randn(16, generator=g),
                "head.weight": torch.randn(10, 16, generator=g)}, unrelated)
    clean_failure(wwtest.run_cli(["classify", "--model", unrelated, img]), "unrelated state dict as --model")
    clean_failure(wwtest.run_cli(["classify", "--arch", "resnet18", "--model", unrelated, img]),
                  "unrelated state dict with --arch resnet18")
    # resnet18 with one tensor missing / one with the wrong shape
    sd = torch.load(r18, map_location="cpu")
    sd_missing = dict(sd)
    del sd_missing["layer3.1.bn2.running_var"]
    p = os.path.join(d, "resnet18-missing-tensor.pth")
    torch.save(sd_missing, p)
    clean_failure(wwtest.run_cli(["classify", "--arch", "resnet18", "--model", p, img]),
                  "resnet18 weights missing layer3.1.bn2.running_var")
    sd_shape = dict(sd)
    sd_shape["layer2.0.conv1.weight"] = sd["layer2.0.conv1.weight"][:, :, :2, :2].clone()
    p = os.path.join(d, "resnet18-wrong-shape.pth")
    torch.save(sd_shape, p)
    clean_failure(wwtest.run_cli(["classify", "--model", p, img]), "resnet18 weights with a 2x2 conv kernel")

    text = os.path.join(d, "text.pth")
    with open(text, "w") as f:
        f.write("not a weight file\n")
    clean_failure(wwtest.run_cli(["classify", "--model", text, img]), "text file as --model")
    garbage = os.path.join(d, "garbage.pth")
    with open(garbage, "wb") as f:
        f.write(bytes((i * 7919 + 13) % 251 for i in range(100000)))
    clean_failure(wwtest.run_cli(["classify", "--model", garbage, img]), "random bytes as --model")
    clean_failure(wwtest.run_cli(["classify", "--model", os.path.join(d, "none.pth"), img]),
                  "nonexistent --model path")

    models = make_random_models.ensure_models(verbose=False)["files"]
    for fmt in ("zip", "legacy"):
        src = models["mobilenet_v2-" + fmt]["path"]
        data = open(src, "rb").read()
        for cut in (16, 4096, len(data) // 2, len(data) - 1):
            p = os.path.join(d, "truncated-%s-%d.pth" % (fmt, cut))
            with open(p, "wb") as f:
                f.write(data[:cut])
            r = wwtest.run_cli(["classify", "--json", "--model", p, img])
            clean_failure(r, "%s .pth truncated to %d of %d bytes" % (fmt, cut, len(data)))


def main():
    sh = wwtest.shared_dir()
    wwtest.wanwu_bin()
    wwtest.import_torch(2)
    models = make_random_models.ensure_models()["files"]
    r18 = models["resnet18-zip"]["path"]
    mnv2 = models["mobilenet_v2-zip"]["path"]
    imgs = wwtest.all_images(sh)
    img = imgs[0]
    gray = wwtest.grayscale_images(imgs)[0]

    test_help()
    test_usage_errors(img, mnv2)

    # PyTorch's answers for the images classified with the mobilenet_v2 file.
    tm = wwtest.torch_model_from_file("mobilenet_v2", mnv2)
    png_src = imgs[123]
    ref = wwtest.torch_topk(tm, [png_src, gray])
    # the PNG made from png_src holds PIL's decoded pixels: same answer expected
    d = wwtest.tmp_dir("cli", "bad-images")
    ref[os.path.join(d, "good.png")] = ref[png_src]
    test_bad_images([png_src, gray], mnv2, "mobilenet_v2", ref)

    test_output_formats(img, mnv2, "mobilenet_v2")

    direct = {
        "resnet18": one_json(wwtest.run_cli(["classify", "--json", "--model", r18, img]),
                             "--model <resnet18 file path> runs", "resnet18"),
        "mobilenet_v2": one_json(wwtest.run_cli(["classify", "--json", "--model", mnv2, img]),
                                 "--model <mobilenet_v2 file path> runs", "mobilenet_v2"),
    }
    test_model_lookup(img, r18, mnv2, direct)
    test_arch_and_bad_weights(img, r18, mnv2, direct)
    c.done()


if __name__ == "__main__":
    main()
