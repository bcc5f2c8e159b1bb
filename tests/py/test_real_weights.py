#!/usr/bin/python3
"""Real ImageNet weights: wanwu must reproduce PyTorch's answers.

`wanwu classify --json --top 5 --model $WANWU_SHARED/models/mobilenet_v2-q8dq.pth`
on all 500 images of imagenet-sample (a few big batches on the command
line). PyTorch (torchvision.models.mobilenet_v2, strict=True, torchvision's
transforms) is computed here too (cached in $WANWU_TEST_TMP, keyed by the
weight file's size and mtime). Required:
  * PyTorch's top-1 accuracy against labels.tsv is the documented 417/500,
  * wanwu's top-1 accuracy equals PyTorch's,
  * wanwu's top-1 class equals PyTorch's on every image,
  * wanwu's top-5 classes and probabilities match PyTorch's (1e-4) on every
    image (classes PyTorch ties within 1e-5 may swap).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wwtest  # noqa: E402

DOCUMENTED_CORRECT = 417
K = 5
PROB_TOL = 1e-4
BATCHES = 4
CACHE_VERSION = "1"


def torch_reference(sh, images):
    """{basename: [(class_index, prob), ...top 20]}; cached (see wwtest.cache_dirs)
    under a key made of the weight file's size and mtime and the torch,
    torchvision and PIL versions."""
    path = wwtest.real_model_path(sh)
    st = os.stat(path)
    wwtest.import_torch(2)
    name = "torch-real-weights-v%s-%d-%d-%s.json" % (CACHE_VERSION, st.st_size, st.st_mtime_ns,
                                                      wwtest.torch_version_key())
    names = [os.path.basename(p) for p in images]
    with wwtest.file_lock("torch-real-weights"):
        ref = wwtest.cache_load(name)
        if ref is not None and all(n in ref for n in names):
            wwtest.log("PyTorch reference: cached (%s)" % name)
        else:
            t0 = time.time()
            wwtest.log("PyTorch reference: computing on %d images (cached afterwards) ..." % len(images))
            model = wwtest.torch_model_from_file("mobilenet_v2", path)  # strict=True
            ref = {os.path.basename(p): v for p, v in
                   wwtest.torch_topk(model, images, progress=100).items()}
            wwtest.cache_store(name, ref)
            wwtest.log("PyTorch reference: %.1fs" % (time.time() - t0))
    return {n: [tuple(x) for x in ref[n]] for n in names}


def main():
    c = wwtest.Checker("test_real_weights")
    sh = wwtest.shared_dir(need_models=True)
    wwtest.wanwu_bin()
    rows = wwtest.read_labels(sh)
    images = [os.path.join(wwtest.sample_dir(sh), r[0]) for r in rows]
    truth = {r[0]: r[2] for r in rows}
    names = {r[2]: r[3] for r in rows}
    c.check(len(images) == 500, "imagenet-sample has 500 labelled images (%d)" % len(images))

    ref = torch_reference(sh, images)
    torch_correct = sum(ref[os.path.basename(p)][0][0] == truth[os.path.basename(p)] for p in images)
    wwtest.log("PyTorch top-1: %d/%d" % (torch_correct, len(images)))
    c.check(torch_correct == DOCUMENTED_CORRECT,
            "PyTorch's top-1 is the documented %d/500 (got %d)" % (DOCUMENTED_CORRECT, torch_correct))

    model = wwtest.real_model_path(sh)
    batch = (len(images) + BATCHES - 1) // BATCHES
    by_file, problems, results = wwtest.classify_json(images, model, K, batch=batch)
    secs = sum(r.seconds for r in results)
    wwtest.log("wanwu: %.1fs for %d images in %d runs (%.1f ms/image)" %
               (secs, len(images), len(results), 1000 * secs / max(1, len(images))))
    c.check(not problems, "wanwu ran and printed one JSON line per image", "\n".join(problems[:5]))

    fmt_problems, top1_diff, cmp_problems, notes = [], [], [], []
    wanwu_correct, maxdiff, compared = 0, 0.0, 0
    for p in images:
        b = os.path.basename(p)
        o = by_file.get(p)
        if o is None:
            continue
        if "error" in o:
            cmp_problems.append("%s: wanwu error: %s" % (b, o.get("error")))
            top1_diff.append("%s: wanwu error" % b)
            continue
        fmt_problems += ["%s: %s" % (b, x) for x in wwtest.check_result_object(o, "mobilenet_v2", K)]
        top = o.get("top") or [{}]
        w1 = top[0].get("class_index") if isinstance(top[0], dict) else None
        t1, tp1 = ref[b][0]
        if w1 == truth[b]:
            wanwu_correct += 1
        if w1 != t1:
            wp = top[0].get("prob")
            top1_diff.append("%s (truth %d %s): wanwu top-1 %s %r p=%s, PyTorch %d %r p=%.6f" %
                             (b, truth[b], names.get(truth[b]), w1, top[0].get("label"), wp, t1,
                              names.get(t1, "?"), tp1))
        probs, md, n = wwtest.compare_topk(b, ref[b], o, K, PROB_TOL)
        if probs:
            cmp_problems.append(wwtest.join_problems(probs))
        notes += n
        if md != float("inf"):
            maxdiff = max(maxdiff, md)
            compared += 1

    wwtest.log("wanwu top-1: %d/%d (PyTorch %d/%d)" % (wanwu_correct, len(images), torch_correct, len(images)))
    c.check(not fmt_problems, "JSON objects well-formed (exactly the spec's keys, model=mobilenet_v2)",
            "\n".join(fmt_problems[:10]))
    c.check(wanwu_correct == torch_correct and wanwu_correct == DOCUMENTED_CORRECT,
            "wanwu top-1 accuracy %d/500 equals PyTorch's %d/500 and the documented %d/500" %
            (wanwu_correct, torch_correct, DOCUMENTED_CORRECT))
    c.check(not top1_diff, "same top-1 class as PyTorch on every image (%d disagreements)" % len(top1_diff),
            "\n".join(top1_diff))
    c.check(not cmp_problems, "top-%d classes and probs within %.0e of PyTorch on every image "
            "(max |dprob| %.2e over %d images)" % (K, PROB_TOL, maxdiff, compared),
            "\n".join(cmp_problems[:25]) + ("\n... %d more" % (len(cmp_problems) - 25)
                                            if len(cmp_problems) > 25 else ""))
    for n in notes:
        wwtest.log("note: " + n)
    c.done("accuracy wanwu %d/500, PyTorch %d/500, %d top-1 disagreements, max |dprob| %.2e" %
           (wanwu_correct, torch_correct, len(top1_diff), maxdiff))


if __name__ == "__main__":
    main()
