#!/usr/bin/python3
"""Model zoo from .pth: parity with PyTorch for all four architectures.

For ResNet-18, MobileNetV2, EfficientNet-B0 and ShuffleNetV2 x1.0 with
random, non-trivial weights (tests/zoo/zoo_models.py), `wanwu classify
--json --top 5` on 20 images spread over imagenet-sample (2 grayscale) must
give PyTorch's top-5 classes with probabilities within 1e-4, each
architecture preprocessed with torchvision's own transform for it
(EfficientNet-B0: Resize 256 bicubic). Also checked:
  * architecture detection names each file's architecture;
  * an official file name selects its transform (mobilenet_v2-7ebf99e0.pth:
    Resize 232), and --resize/--crop/--interpolation override it;
  * --crop changes the network's input size (fully convolutional nets).
PyTorch results are cached in $WANWU_TEST_TMP.
"""

import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))
sys.path.insert(0, HERE)
import wwtest  # noqa: E402
import zoo_models  # noqa: E402

K = 5
PROB_TOL = 1e-4


def compare(c, name, arch, ref, images, extra, model_path, summary, env=None):
    """Checks `wanwu classify --json` (with extra args, env) against PyTorch's top-K in ref."""
    by_file, problems, results = wwtest.classify_json(images, model_path, K, extra, env=env)
    c.check(not problems, "%s: wanwu ran and printed one JSON line per image" % name,
            "\n".join(problems[:5]))
    cmp_problems, maxdiff, matched = [], 0.0, 0
    for img in images:
        o = by_file.get(img)
        if o is None:
            continue
        if "error" in o:
            cmp_problems.append("%s: wanwu error: %s" % (os.path.basename(img), o["error"]))
            continue
        cmp_problems += ["%s: %s" % (os.path.basename(img), p) for p in wwtest.check_result_object(o, arch, K)]
        probs, md, _ = wwtest.compare_topk(os.path.basename(img), ref[img], o, K, PROB_TOL)
        cmp_problems += probs
        if not probs:
            matched += 1
            maxdiff = max(maxdiff, md)
    c.check(matched == len(images) and not cmp_problems,
            "%s: top-%d and probs (tol %.0e) match PyTorch on %d/%d images, max |dprob| %.2e" %
            (name, K, PROB_TOL, matched, len(images), maxdiff), "\n".join(cmp_problems[:10]))
    summary.append("%s %d/%d maxdiff %.2e" % (name, matched, len(images), maxdiff))


def main():
    c = wwtest.Checker("test_zoo_pth")
    sh = wwtest.shared_dir()
    wwtest.wanwu_bin()
    wwtest.import_torch(2)
    man = zoo_models.ensure_models()
    images = wwtest.spread_images(sh, 20, 2)
    summary = []
    refs = {}
    for arch in zoo_models.ARCHS:
        path = man["files"][arch]
        wwtest.log("\n== %s" % arch)
        ref = refs[arch] = zoo_models.torch_topk_cached(arch, path, images, "default")
        compare(c, arch, arch, ref, images, [], path, summary)

    # 2 threads: on AVX-512 the 1x1 convs next to the depthwise layers that
    # split channels split their K (after) or output channels (before) the
    # same way (kernels/conv2d.c, ksplit_run and msplit_bounds)
    for arch in ("mobilenet_v2", "efficientnet_b0"):
        wwtest.log("\n== %s --threads 2" % arch)
        compare(c, arch + " --threads 2", arch, refs[arch], images[:8], ["--threads", "2"],
                man["files"][arch], summary)

    # official file names carry their own transform; flags override it
    tmp = wwtest.tmp_dir("zoo-official")
    official = os.path.join(tmp, "mobilenet_v2-7ebf99e0.pth")
    shutil.copyfile(man["files"]["mobilenet_v2"], official)
    few = images[:8]
    ref232 = zoo_models.torch_topk_cached("mobilenet_v2", man["files"]["mobilenet_v2"], few,
                                          "resize232", resize=232)
    wwtest.log("\n== official name mobilenet_v2-7ebf99e0.pth (Resize 232)")
    compare(c, "mobilenet_v2-7ebf99e0.pth", "mobilenet_v2", ref232, few, [], official, summary)
    ref_bicubic = zoo_models.torch_topk_cached("shufflenet_v2_x1_0", man["files"]["shufflenet_v2_x1_0"],
                                               few, "r240-bicubic", resize=240, interp="bicubic")
    wwtest.log("\n== shufflenet --resize 240 --interpolation bicubic")
    compare(c, "shufflenet_v2_x1_0 --resize 240 --interpolation bicubic", "shufflenet_v2_x1_0",
            ref_bicubic, few, ["--resize", "240", "--interpolation", "bicubic"],
            man["files"]["shufflenet_v2_x1_0"], summary)
    ref_crop = zoo_models.torch_topk_cached("efficientnet_b0", man["files"]["efficientnet_b0"], few[:4],
                                            "r288-c256", resize=288, crop=256)
    wwtest.log("\n== efficientnet --resize 288 --crop 256")
    compare(c, "efficientnet_b0 --resize 288 --crop 256", "efficientnet_b0", ref_crop, few[:4],
            ["--resize", "288", "--crop", "256"], man["files"]["efficientnet_b0"], summary)

    r = wwtest.run_cli(["classify", "--interpolation", "nearest", "--model",
                        man["files"]["resnet18"], images[0]])
    c.check(r.returncode == 2 and "bilinear or bicubic" in r.stderr and not r.crashed,
            "--interpolation nearest is a usage error", r.describe())
    r = wwtest.run_cli(["classify", "--crop", "300", "--model", man["files"]["resnet18"], images[0]])
    c.check(r.returncode == 1 and "larger than the resize" in r.stderr and not r.crashed,
            "--crop above the resize size is refused with a message", r.describe())
    # wanwu models: every file of the directory, parameters as torch counts them
    import json
    r = wwtest.run_cli(["models", "--json"], env={"WANWU_MODELS": os.path.dirname(man["files"]["resnet18"])})
    listed = {}
    for line in r.stdout.splitlines():
        try:
            o = json.loads(line)
            listed[o.get("name")] = o
        except ValueError:
            pass
    problems = []
    expected_gmacs = {"resnet18": 1.81, "mobilenet_v2": 0.30, "efficientnet_b0": 0.39,
                      "shufflenet_v2_x1_0": 0.15}
    for arch in zoo_models.ARCHS:
        o = listed.get(arch + ".pth")
        if not o:
            problems.append("%s.pth not listed" % arch)
            continue
        params = sum(p.numel() for p in zoo_models.build_torch_model(arch).parameters())
        if (o.get("architecture"), o.get("format"), o.get("parameters"), o.get("input")) != \
                (arch, "pth", params, [1, 3, 224, 224]):
            problems.append("%s: %r (torch: %d parameters)" % (arch, o, params))
        if abs(o.get("gmacs", 0) - expected_gmacs[arch]) > 0.01:
            problems.append("%s: %r GMACs, torchvision documents %.2f" % (arch, o.get("gmacs"),
                                                                          expected_gmacs[arch]))
    c.check(r.returncode == 0 and not problems and not r.crashed,
            "wanwu models --json lists the four files with torch's parameter counts and GMACs",
            "\n".join(problems) + "\n" + r.describe())
    wwtest.log("\nper run: " + "; ".join(summary))
    c.done()


if __name__ == "__main__":
    main()
