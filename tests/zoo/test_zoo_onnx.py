#!/usr/bin/python3
"""Model zoo from ONNX: parity with PyTorch for models exported by torch.onnx.

The random-weight ResNet-18, MobileNetV2, EfficientNet-B0 and ShuffleNetV2
x1.0 of tests/zoo/zoo_models.py are exported with Debian's python3-torch
(torch.onnx.export) in four variants each, together covering opsets 11 and
17, with and without constant folding, static and dynamic batch axis:

  opset 11, folded,   static batch      opset 17, folded,   dynamic batch
  opset 11, unfolded, dynamic batch     opset 17, unfolded, static batch

`wanwu classify --json --top 5 --model FILE.onnx` on 20 images (2
grayscale) must give PyTorch's top-5 classes with probabilities within 1e-4.
ONNX files carry no preprocessing: EfficientNet-B0's bicubic resize comes
from a FILE.onnx.preprocess sidecar in one variant and from
--interpolation bicubic in the others. Exports and PyTorch results are
cached in $WANWU_TEST_TMP.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))
sys.path.insert(0, HERE)
import wwtest  # noqa: E402
import zoo_models  # noqa: E402
from test_zoo_pth import compare  # noqa: E402

VARIANTS = [(11, True, False), (11, False, True), (17, True, True), (17, False, False)]


def export(arch, pth, opset, fold, dynamic, outdir):
    name = "%s-op%d-%s-%s.onnx" % (arch, opset, "fold" if fold else "nofold",
                                    "dynbatch" if dynamic else "static")
    path = os.path.join(outdir, name)
    if os.path.isfile(path) and os.path.getmtime(path) >= os.path.getmtime(pth):
        return path
    import torch
    model = zoo_models.torch_model(arch, pth)
    tmp = path + ".tmp.%d" % os.getpid()
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), tmp, opset_version=opset,
                      do_constant_folding=fold, input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None)
    os.replace(tmp, path)
    return path


def main():
    c = wwtest.Checker("test_zoo_onnx")
    sh = wwtest.shared_dir()
    wwtest.wanwu_bin()
    wwtest.import_torch(2)
    man = zoo_models.ensure_models()
    images = wwtest.spread_images(sh, 20, 2)
    outdir = wwtest.tmp_dir("zoo-onnx-" + zoo_models.VERSION)
    summary = []
    with wwtest.file_lock("zoo-onnx-export"):
        paths = {(arch, v): export(arch, man["files"][arch], *v, outdir)
                 for arch in zoo_models.ARCHS for v in VARIANTS}
    for arch in zoo_models.ARCHS:
        ref = zoo_models.torch_topk_cached(arch, man["files"][arch], images, "default")
        for i, v in enumerate(VARIANTS):
            path = paths[(arch, v)]
            extra = []
            side = path + ".preprocess"
            if arch == "efficientnet_b0":
                if i == 0:
                    with open(side, "w") as f:
                        f.write("# torchvision's EfficientNet_B0_Weights.IMAGENET1K_V1 transform\n"
                                "resize 256\ncrop 224\ninterpolation bicubic\n")
                else:
                    extra = ["--interpolation", "bicubic"]
            name = os.path.basename(path) + (" (sidecar)" if os.path.isfile(side) else " ".join([""] + extra))
            wwtest.log("\n== %s" % name)
            model_name = os.path.splitext(os.path.basename(path))[0]
            compare(c, name, model_name, ref, images, extra, path, summary)
    wwtest.log("\nper run: " + "; ".join(summary))
    c.done()


if __name__ == "__main__":
    main()
