#!/usr/bin/python3
"""Constant subgraphs in ONNX files: folded by the graph pass, parity with PyTorch.

A small classifier computes its operands and weights from parameters the
way source networks sometimes do (products and quotients of parameters
broadcast onto the image, a transposed and scaled conv weight, a bias
computed and reshaped, a gathered scale, a constant feature map
concatenated with the activations, a scaled classifier matrix). It is
exported by torch.onnx without constant folding, so that the ONNX file
holds those computations as Mul/Div/Sub/Transpose/Reshape/Unsqueeze/
Gather/Concat nodes over initializers (opsets 11 and 17), and once with
folding as a control. The importer emits them as graph nodes over
CONSTANT values, the constant-folding pass evaluates them; `wanwu classify`
must give PyTorch's top-5 classes and probabilities (tolerance 1e-4) on
6 images.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))
import wwtest  # noqa: E402

K = 5
PROB_TOL = 1e-4


def build_model():
    import torch

    class ConstantMath(torch.nn.Module):
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(7)
            P = torch.nn.Parameter
            self.a = P(torch.rand(3, 1, 1, generator=g) + 0.5)
            self.b = P(torch.rand(1, generator=g) + 0.5)
            self.w0 = P(torch.randn(3, 8, 3, 3, generator=g) * 0.4)  # stored transposed
            self.shift = P(torch.randn(8, generator=g) * 0.2)
            self.e1 = P(torch.randn(2, 56, 56, generator=g))
            self.e2 = P(torch.randn(2, 56, 56, generator=g))
            self.fc = P(torch.randn(1000, 10, generator=g) * 2.0)
            self.fcb = P(torch.randn(1000, generator=g))

        def forward(self, x):
            s = self.a[[2, 0, 1]] * self.b                     # Gather, Mul (broadcast)
            x = x * s - self.a / 4.0                          # runtime (op) computed constant
            w = self.w0.transpose(0, 1) * 0.5                 # conv weight: Transpose, Mul
            y = torch.nn.functional.conv2d(x, w, stride=4, padding=1)
            y = y + (self.shift * 2.0).view(1, 8, 1, 1)       # bias: Mul, Reshape
            y = torch.relu(y)
            e = (self.e1 - self.e2).unsqueeze(0)              # Sub, Unsqueeze
            y = torch.cat([e, y], 1)                          # constant map first
            y = y.mean((2, 3))
            return torch.nn.functional.linear(y, self.fc * 1.5, self.fcb)

    return ConstantMath().eval()


def export(model, path, opset, fold):
    import torch
    if os.path.isfile(path):
        return
    tmp = path + ".tmp.%d" % os.getpid()
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), tmp, opset_version=opset,
                      do_constant_folding=fold, input_names=["image"], output_names=["logits"])
    os.replace(tmp, path)


def main():
    c = wwtest.Checker("test_onnx_constant_subgraphs")
    sh = wwtest.shared_dir()
    wwtest.wanwu_bin()
    torch = wwtest.import_torch(2)
    images = wwtest.spread_images(sh, 6, 1)
    model = build_model()
    ref = wwtest.torch_topk(model, images)
    outdir = wwtest.tmp_dir("onnx-constant-subgraphs-v1-torch" + torch.__version__.replace("+", "_"))
    for opset, fold in [(11, False), (17, False), (17, True)]:
        name = "constant-math-op%d-%s.onnx" % (opset, "fold" if fold else "nofold")
        path = os.path.join(outdir, name)
        with wwtest.file_lock("onnx-constant-subgraphs"):
            export(model, path, opset, fold)
        by_file, problems, _ = wwtest.classify_json(images, path, K)
        c.check(not problems, "%s: wanwu ran and printed one JSON line per image" % name,
                "\n".join(problems[:5]))
        cmp_problems, maxdiff = [], 0.0
        for img in images:
            o = by_file.get(img)
            if o is None:
                continue
            if "error" in o:
                cmp_problems.append("%s: wanwu error: %s" % (os.path.basename(img), o["error"]))
                continue
            probs, md, _ = wwtest.compare_topk(os.path.basename(img), ref[img], o, K, PROB_TOL)
            cmp_problems += probs
            maxdiff = max(maxdiff, md)
        c.check(not cmp_problems and len(by_file) == len(images),
                "%s: top-%d and probs (tol %.0e) match PyTorch on %d images, max |dprob| %.2e" %
                (name, K, PROB_TOL, len(images), maxdiff), "\n".join(cmp_problems[:10]))
    c.done()


if __name__ == "__main__":
    main()
