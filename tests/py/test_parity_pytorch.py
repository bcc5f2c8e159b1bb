#!/usr/bin/python3
"""End-to-end parity with PyTorch on randomly initialised weights.

For ResNet-18 and MobileNetV2, in both torch.save formats (zip, legacy) and
as a float16 file, `wanwu classify --json --top 5 --model FILE` on 22 images
spread over imagenet-sample (2 of them grayscale) must give, for every image,
PyTorch's top-5 class indices and probabilities within 1e-4. PyTorch runs the
same file through torchvision's model and transforms (the fp16 file is loaded
into the fp32 model, i.e. the fp16-rounded weights computed in fp32). One run
per architecture repeats with --threads 2.
"""

import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wwtest  # noqa: E402
import make_random_models  # noqa: E402

K = 5
PROB_TOL = 1e-4
N_IMAGES = 20
N_GRAY = 2


def torch_reference(name, arch, path, images):
    """PyTorch's top 20 for each image; cached (see wwtest.cache_dirs), keyed by
    the file's content, the images and torch's version."""
    with open(path, "rb") as f:
        digest = hashlib.sha1(f.read()).hexdigest()
    key = hashlib.sha1(json.dumps([make_random_models.VERSION, name, digest,
                                   [os.path.basename(p) for p in images],
                                   wwtest.torch_version_key()]).encode()).hexdigest()[:16]
    cname = "torch-parity-%s-%s.json" % (name, key)
    ref = wwtest.cache_load(cname)
    if ref is None:
        model = wwtest.torch_model_from_file(arch, path)
        ref = {os.path.basename(p): v for p, v in wwtest.torch_topk(model, images).items()}
        wwtest.cache_store(cname, ref)
    else:
        wwtest.log("  PyTorch reference: cached")
    return {p: [tuple(x) for x in ref[os.path.basename(p)]] for p in images}


def main():
    c = wwtest.Checker("test_parity_pytorch")
    sh = wwtest.shared_dir()
    wwtest.wanwu_bin()
    wwtest.import_torch(2)
    models = make_random_models.ensure_models()
    images = wwtest.spread_images(sh, N_IMAGES, N_GRAY)
    gray = wwtest.grayscale_images(images)
    wwtest.log("images: %d (%d grayscale: %s)" %
               (len(images), len(gray), ", ".join(os.path.basename(g) for g in gray)))
    c.check(len(images) >= 20 and len(gray) >= 1, "at least 20 images incl. a grayscale one")
    cats = wwtest.imagenet_categories()

    runs = []  # (name, arch, path, extra args)
    for name in ("resnet18-zip", "resnet18-legacy", "mobilenet_v2-zip", "mobilenet_v2-legacy",
                 "mobilenet_v2-fp16"):
        e = models["files"][name]
        runs.append((name, e["arch"], e["path"], []))
    for name in ("resnet18-zip", "mobilenet_v2-zip"):
        e = models["files"][name]
        runs.append((name + " --threads 2", e["arch"], e["path"], ["--threads", "2"]))

    torch_ref = {}
    overall_max = 0.0
    ties = []
    summary = []
    for name, arch, path, extra in runs:
        wwtest.log("\n== %s (%s)" % (name, os.path.basename(path)))
        if path not in torch_ref:
            torch_ref[path] = torch_reference(name.split()[0], arch, path, images)
        ref = torch_ref[path]
        by_file, problems, results = wwtest.classify_json(images, path, K, extra)
        wwtest.log("  wanwu: %.1fs for %d images" % (sum(r.seconds for r in results), len(images)))
        c.check(not problems, "%s: wanwu ran and printed one JSON line per image" % name,
                "\n".join(problems[:5]))
        fmt_problems, cmp_problems, maxdiff, matched = [], [], 0.0, 0
        for img in images:
            o = by_file.get(img)
            if o is None:
                continue
            b = os.path.basename(img)
            if "error" in o:
                cmp_problems.append("%s: wanwu error: %s" % (b, o.get("error")))
                continue
            fmt_problems += ["%s: %s" % (b, p) for p in wwtest.check_result_object(o, arch, K)]
            for e in o.get("top") or []:
                ci = e.get("class_index") if isinstance(e, dict) else None
                if isinstance(ci, int) and 0 <= ci < len(cats) and e.get("label") != cats[ci]:
                    fmt_problems.append("%s: class %d labelled %r, torchvision calls it %r" %
                                        (b, ci, e.get("label"), cats[ci]))
            probs, md, notes = wwtest.compare_topk(b, ref[img], o, K, PROB_TOL)
            if probs:
                cmp_problems.append(wwtest.join_problems(probs))
            ties += ["%s: %s" % (name, n) for n in notes]
            if md != float("inf"):
                maxdiff = max(maxdiff, md)
            if not probs:
                matched += 1
        c.check(not fmt_problems, "%s: JSON objects well-formed (keys, model=%s, labels = torchvision's)"
                % (name, arch), "\n".join(fmt_problems[:10]))
        c.check(matched == len(images) and not cmp_problems,
                "%s: top-%d classes and probs (tol %.0e) match PyTorch on %d/%d images, max |dprob| %.2e "
                "(over entries of the same class)"
                % (name, K, PROB_TOL, matched, len(images), maxdiff), "\n".join(cmp_problems[:20]))
        summary.append("%s %d/%d maxdiff %.2e" % (name, matched, len(images), maxdiff))
        overall_max = max(overall_max, maxdiff)
    for t in ties:
        wwtest.log("note: " + t)
    wwtest.log("\nper run: " + "; ".join(summary))
    c.done("max |prob diff| vs PyTorch over all runs %.2e" % overall_max)


if __name__ == "__main__":
    main()
