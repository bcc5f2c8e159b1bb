#!/usr/bin/python3
"""`wanwu bench --models ...`: the comparison of several models.

  * accuracy: bench's top-1/top-5 counts equal a count made here from
    `wanwu classify --json` on the same images, with the labels read here
    from imagenet-sample/labels.tsv (for --images DIR, where bench takes the
    class from the file name's synset, and for --labels FILE.tsv);
  * the JSON document has every model and every figure (the single-model
    keys too), the GMACs equal a count made here with torch hooks, and a
    short soak reports zero errors;
  * the HTML report is one self-contained file (no script, nothing
    fetched) that names every model and shows every summary figure, with
    the SVG charts;
  * the Markdown tables on stdout; no progress bar when stderr is piped,
    one when forced; the single-model `wanwu bench --model M --json` keeps
    its keys; a model that cannot be loaded fails that model only.

Models: the real MobileNetV2 of the shared folder and the random ResNet-18
of tests/py/make_random_models.py.
"""

import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "py"))
import wwtest  # noqa: E402
import make_random_models  # noqa: E402

N_IMAGES = 10
LEGACY_KEYS = ["model", "threads", "batch", "runs", "median_ms", "p90_ms", "p99_ms", "min_ms",
               "mean_ms", "load_ms", "peak_rss_mb"]
SUMMARY_KEYS = ["count", "mean", "p50", "p90", "p99", "min", "max"]
COST_KEYS = ["load_ms", "file_size_mb", "params", "gmacs", "peak_rss_mb", "cpu_percent"]

c = wwtest.Checker("test_bench_compare")


def fresh_dir(*parts):
    d = wwtest.tmp_dir("bench", *parts)
    shutil.rmtree(d)
    os.makedirs(d)
    return d


def independent_counts(model, paths, labels):
    """(top1, top5) counted from `wanwu classify --json` output."""
    by_file, problems, _ = wwtest.classify_json(paths, model, k=5)
    c.check(not problems, "classify --json on %d images with %s" % (len(paths), os.path.basename(model)),
            "\n".join(problems[:5]))
    tops = {p: [e["class_index"] for e in by_file.get(p, {}).get("top", [])] for p in paths}
    return count_hits(tops, paths, labels), tops


def count_hits(tops, paths, labels):
    top1 = sum(1 for p in paths if tops.get(p) and tops[p][0] == labels[p])
    top5 = sum(1 for p in paths if labels[p] in (tops.get(p) or []))
    return top1, top5


def torch_gmacs(arch):
    """Multiply-accumulates of conv and linear layers, counted with hooks."""
    torch = wwtest.import_torch(2)
    model = wwtest.build_torch_model(arch).eval()
    total = [0]

    def conv_hook(m, inp, out):
        total[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear_hook(m, inp, out):
        total[0] += m.in_features * m.out_features

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(conv_hook)
        elif isinstance(m, torch.nn.Linear):
            m.register_forward_hook(linear_hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    return total[0] / 1e9


def check_summary(name, s, count=None):
    ok = isinstance(s, dict) and all(isinstance(s.get(k), (int, float)) for k in SUMMARY_KEYS)
    if ok:
        ok = s["min"] <= s["p50"] <= s["p90"] <= s["p99"] <= s["max"] and s["min"] <= s["mean"] <= s["max"] \
            and s["min"] > 0 and (count is None or s["count"] == count)
        ok = ok and len(s.get("samples", [])) == s["count"]
    c.check(ok, "%s: latency summary with %s%s, ordered" % (name, SUMMARY_KEYS,
                                                            "" if count is None else " (count %d)" % count),
            json.dumps(s)[:600])


def main():
    shared = wwtest.shared_dir(need_models=True)
    real = wwtest.real_model_path(shared)
    man = make_random_models.ensure_models()
    rand18 = man["files"]["resnet18-zip"]["path"]

    rows = wwtest.read_labels(shared)
    picked = rows[7::len(rows) // N_IMAGES][:N_IMAGES]
    img_dir = fresh_dir("images")
    labels = {}
    for f, _syn, idx, _name in picked:
        dst = os.path.join(img_dir, f)
        os.symlink(os.path.join(wwtest.sample_dir(shared), f), dst)
        labels[dst] = idx
    paths = sorted(labels)
    expected, tops = {}, {}
    for name, model in (("mobilenet_v2", real), ("resnet18", rand18)):
        expected[name], tops[name] = independent_counts(model, paths, labels)

    # A TSV whose labels make top-1, top-5 and misses all occur for the real
    # model: the true class, MobileNetV2's 3rd-ranked class, a class outside its top 5.
    tsv_labels = {}
    for i, p in enumerate(paths):
        top = tops["mobilenet_v2"].get(p) or [0] * 5
        tsv_labels[p] = [labels[p], top[2], next(k for k in range(1000) if k not in top)][i % 3]
    tsv_expected = {name: count_hits(tops[name], paths, tsv_labels) for name in tops}
    tsv_dir = fresh_dir("tsv")
    tsv = os.path.join(tsv_dir, "set.tsv")
    with open(tsv, "w") as f:
        f.write("file\tclass_index\n")
        for i, p in enumerate(paths):
            # relative paths resolve against the TSV's folder; absolute ones as they are
            name = os.path.relpath(p, tsv_dir) if i % 2 else p
            f.write("%s\t%d\n" % (name, tsv_labels[p]))
    wwtest.log("independent counts (top-1, top-5) on %d images: %s" % (len(paths), expected))
    c.check(expected["mobilenet_v2"][0] >= len(paths) // 2 and expected["resnet18"] != expected["mobilenet_v2"],
            "the real MobileNetV2 gets at least half right, the random ResNet-18 not as many "
            "(sanity of the reference counts)")

    out_dir = fresh_dir("out")
    report = os.path.join(out_dir, "report.html")
    r = wwtest.run_cli(["bench", "--models", "%s,%s" % (real, rand18), "--images", img_dir,
                        "--runs", "4", "--warmup", "1", "--soak", "3s", "--interval", "1s",
                        "--report", report, "--json"], env={"WANWU_PROGRESS": None})
    c.check(r.returncode == 0 and not r.crashed, "bench --models A,B --images DIR --soak --report --json exits 0",
            r.describe())
    try:
        doc = json.loads(r.stdout)
    except ValueError as e:
        c.check(False, "stdout is one JSON document", "%s\n%s" % (e, r.stdout[:2000]))
        c.done()
    c.check("\r" not in r.stderr and "ETA" not in r.stderr, "no progress bar when stderr is not a terminal",
            r.stderr[:500])
    models = doc.get("models") or []
    c.check([m.get("model") for m in models] == ["mobilenet_v2", "resnet18"],
            "JSON has both models in order", json.dumps([m.get("model") for m in models]))
    c.check(doc.get("images", {}).get("count") == len(paths), "JSON images.count = %d" % len(paths))
    gmacs_ref = {a: torch_gmacs(a) for a in ("mobilenet_v2", "resnet18")}
    for m in models:
        name = m.get("model")
        c.check(all(isinstance(m.get(k), (int, float, str)) for k in LEGACY_KEYS) and m["runs"] == 4
                and m["batch"] == 1 and m["threads"] == 1,
                "%s: single-model keys %s" % (name, LEGACY_KEYS), json.dumps({k: m.get(k) for k in LEGACY_KEYS}))
        c.check(all(isinstance(m.get(k), (int, float)) and m[k] > 0 for k in COST_KEYS),
                "%s: cost figures %s all positive" % (name, COST_KEYS), json.dumps({k: m.get(k) for k in COST_KEYS}))
        c.check(m.get("file_size_mb") and abs(m["file_size_mb"] * 1048576 - os.path.getsize(m["file"])) < 2048,
                "%s: file_size_mb is the file's size" % name)
        c.check(name in gmacs_ref and abs(m.get("gmacs", 0) - gmacs_ref[name]) < 0.005 * gmacs_ref[name],
                "%s: GMACs %.4f = torch hook count %.4f" % (name, m.get("gmacs", 0), gmacs_ref.get(name, 0)))
        acc = m.get("accuracy") or {}
        t1, t5 = expected.get(name, (-1, -1))
        c.check(acc.get("top1_correct") == t1 and acc.get("top5_correct") == t5 and acc.get("images") == len(paths)
                and acc.get("errors") == 0,
                "%s: bench accuracy %s/%s of %s = independent count %d/%d of %d" %
                (name, acc.get("top1_correct"), acc.get("top5_correct"), acc.get("images"), t1, t5, len(paths)))
        c.check(abs(acc.get("top1", -1) - t1 / len(paths)) < 1e-6 and abs(acc.get("top5", -1) - t5 / len(paths)) < 1e-6,
                "%s: top1/top5 fractions" % name)
        lat = m.get("latency_ms") or {}
        check_summary(name + " inference", lat.get("inference"), 4)
        check_summary(name + " end to end", lat.get("end_to_end"), len(paths))
        if isinstance(lat.get("inference"), dict):
            c.check(abs(lat["inference"]["p50"] - m["median_ms"]) < 1e-3 and abs(lat["inference"]["mean"] - m["mean_ms"]) < 1e-3,
                    "%s: median_ms/mean_ms are the inference figures" % name)
        soak = m.get("soak") or {}
        series = soak.get("series") or []
        c.check(soak.get("errors") == 0 and soak.get("classifications", 0) >= 3 and len(series) == soak.get("classifications")
                and all(isinstance(x.get("ms"), (int, float)) and x["rss_mb"] > 0 for x in series),
                "%s: 3 s soak at 1 s: >= 3 classifications, zero errors, a series of (t, ms, rss)" % name,
                json.dumps(soak)[:800])
        c.check(all(isinstance(soak.get(k), (int, float)) for k in
                    ("rss_start_mb", "rss_end_mb", "rss_slope_mb_per_hour", "duration_s", "interval_s")),
                "%s: soak RSS start/end/slope" % name)
        ts = [x["t_s"] for x in series]
        c.check(ts == sorted(ts) and (len(ts) < 2 or ts[-1] - ts[0] >= 1.5),
                "%s: soak samples spread over time at the interval" % name, json.dumps(ts))

    # the HTML report
    ok = os.path.isfile(report)
    c.check(ok, "report written: %s" % report)
    html = open(report, encoding="utf-8").read() if ok else ""
    c.check(html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>"), "report is a whole HTML page")
    c.check("<script" not in html.lower() and not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", html),
            "report has no script and loads nothing")
    c.check(html.count("<svg") >= 7, "report has the charts (>= 7 inline SVGs, got %d)" % html.count("<svg"))
    for chart in ("Accuracy per model", "Inference latency distribution", "End-to-end latency distribution",
                  "Model load time", "Peak resident memory", "Soak latency over time", "Resident memory over time"):
        c.check(chart in html, "report chart: %s" % chart)
    for m in models:
        name = m["model"]
        acc = m["accuracy"]
        # The JSON carries 3-4 decimals, the page 1-2: the page's figure is one of
        # the roundings of the JSON value +- half its last JSON digit.
        def cell(fmt, v, json_decimals):
            eps = 0.5 * 10 ** -json_decimals
            return {"<td>%s</td>" % (fmt % x) for x in (v - eps, v, v + eps)}

        figures = {
            "top-1": {"%.1f%% (%d/%d)" % (100.0 * acc["top1_correct"] / acc["images"], acc["top1_correct"],
                                          acc["images"])},
            "top-5": {"%.1f%%" % (100.0 * acc["top5_correct"] / acc["images"])},
            "mean latency": cell("%.2f", m["latency_ms"]["inference"]["mean"], 4),
            "end-to-end p99": cell("%.2f", m["latency_ms"]["end_to_end"]["p99"], 4),
            "load time": cell("%.1f", m["load_ms"], 3),
            "peak RSS": cell("%.1f", m["peak_rss_mb"], 1),
            "file size": cell("%.1f", m["file_size_mb"], 3),
            "params": {"<td>%.2f</td>" % (m["params"] / 1e6)},
            "GMACs": cell("%.2f", m["gmacs"], 4),
            "soak classifications": {"<td>%d</td>" % m["soak"]["classifications"]},
            "RSS slope": cell("%+.2f", m["soak"]["rss_slope_mb_per_hour"], 4),
        }
        c.check(">%s<" % name in html, "report names %s" % name)
        missing = [k for k, v in figures.items() if not any(x in html for x in v)]
        c.check(not missing, "report shows every figure of %s" % name,
                "missing: %s" % ", ".join("%s %r" % (k, sorted(figures[k])) for k in missing))

    # --labels TSV (header, relative and absolute paths, labels chosen so that
    # top-1 hits, top-5-only hits and misses all occur)
    wwtest.log("independent counts with the TSV's labels: %s" % tsv_expected)
    t1, t5 = tsv_expected["mobilenet_v2"]
    c.check(0 < t1 < t5 < len(paths), "the TSV labels give 0 < top-1 < top-5 < n for MobileNetV2 (%d, %d)" % (t1, t5))
    r = wwtest.run_cli(["bench", "--models", "%s,%s" % (real, rand18), "--labels", tsv, "--runs", "2",
                        "--warmup", "0", "--json"])
    try:
        d2 = json.loads(r.stdout)
        got = {m["model"]: (m["accuracy"]["top1_correct"], m["accuracy"]["top5_correct"]) for m in d2["models"]}
    except (ValueError, KeyError, IndexError, TypeError):
        got = None
    c.check(r.returncode == 0 and got == tsv_expected,
            "bench --labels FILE.tsv: counts %s = independent %s" % (got, tsv_expected), r.describe())

    r = wwtest.run_cli(["bench", "--models", real, "--labels", tsv, "--runs", "2", "--warmup", "0", "--json"])
    try:
        d2 = json.loads(r.stdout)
        top_level = all(k in d2 for k in LEGACY_KEYS) and d2["model"] == "mobilenet_v2"
    except (ValueError, KeyError, TypeError):
        top_level = False
    c.check(top_level, "one model: the single-model keys are also at the top level", r.stdout[:500])

    # --limit takes the first N files by name
    r = wwtest.run_cli(["bench", "--models", real, "--images", img_dir, "--limit", "3", "--runs", "2", "--json"])
    try:
        n3 = json.loads(r.stdout)["models"][0]["accuracy"]["images"]
    except (ValueError, KeyError, IndexError, TypeError):
        n3 = None
    c.check(n3 == 3, "--limit 3 benchmarks 3 images (got %r)" % n3, r.describe())

    # Markdown, a failing model, a forced progress bar
    r = wwtest.run_cli(["bench", "--models", "%s,%s" % (real, os.path.join(out_dir, "missing.pth")),
                        "--images", img_dir, "--limit", "2", "--runs", "2"], env={"WANWU_PROGRESS": "1"})
    lines = r.stdout.splitlines()
    c.check(r.returncode == 1 and not r.crashed, "a model that cannot be loaded: exit 1, no crash", r.describe())
    c.check(any(l.startswith("| model | top-1 | top-5 |") for l in lines)
            and any(l.startswith("| mobilenet_v2 | ") and "(%d/2)" % 0 not in l for l in lines)
            and any("missing.pth" in l and "failed" in l for l in lines),
            "Markdown tables: the good model's row and the failed one's", r.stdout)
    c.check("ETA" in r.stderr and "\r" in r.stderr, "WANWU_PROGRESS=1 draws the progress bar", r.stderr[:300])
    c.check(not any(ch in r.stdout for ch in "\r\033"), "stdout holds only the results")

    # the single-model form keeps its keys
    r = wwtest.run_cli(["bench", "--model", real, "--runs", "3", "--warmup", "1", "--json"])
    try:
        d3 = json.loads(r.stdout)
    except ValueError:
        d3 = {}
    c.check(r.returncode == 0 and set(LEGACY_KEYS) <= set(d3) and d3.get("runs") == 3,
            "bench --model M --json keeps %s" % LEGACY_KEYS, r.describe())

    # --profile: one entry per layer of the optimized graph; every conv is a
    # torchvision Conv2d module (none fused into another), the work adds up
    # to PyTorch's count, and the table is printed without --json
    r = wwtest.run_cli(["bench", "--model", real, "--runs", "3", "--warmup", "1", "--profile", "--json"])
    try:
        dp = json.loads(r.stdout)
    except ValueError:
        dp = {}
    layers = dp.get("layers") or []
    c.check(r.returncode == 0 and set(LEGACY_KEYS) <= set(dp) and len(layers) > 50
            and all(set(l) == {"name", "op", "output", "macs", "ms"} and l["ms"] >= 0 for l in layers),
            "bench --model M --profile --json adds per-layer entries", r.describe())
    torch = wwtest.import_torch(2)
    tmodel = wwtest.build_torch_model("mobilenet_v2")
    torch_convs = {n for n, m in tmodel.named_modules() if isinstance(m, torch.nn.Conv2d)}
    convs = [l["name"] for l in layers if l["op"] == "Conv2d"]
    c.check(set(convs) == torch_convs and len(convs) == len(torch_convs),
            "profiled convs are torchvision's Conv2d modules, each once",
            sorted(set(convs) ^ torch_convs)[:5])
    macs = sum(l["macs"] for l in layers)
    c.check(abs(macs / 1e9 - torch_gmacs("mobilenet_v2")) < 1e-9, "layer MACs add up to PyTorch's count",
            "%d vs %.6f G" % (macs, torch_gmacs("mobilenet_v2")))
    r = wwtest.run_cli(["bench", "--model", real, "--runs", "2", "--warmup", "0", "--profile"])
    c.check(r.returncode == 0 and "per layer" in r.stdout and "features.18.0" in r.stdout
            and "GFLOP/s" in r.stdout, "bench --profile prints the per-layer table", r.describe())

    # usage errors
    for args in (["--models", real, "--soak", "soon"], ["--models", real, "--images", img_dir, "--labels", tsv],
                 ["--models", real, "--interval", "0s"], ["--models", real, "--profile"]):
        r = wwtest.run_cli(["bench"] + args)
        c.check(r.returncode == 2 and not r.crashed and r.stderr.strip(), "usage error exits 2: %s" % " ".join(args[2:]),
                r.describe())
    c.done()


if __name__ == "__main__":
    main()
