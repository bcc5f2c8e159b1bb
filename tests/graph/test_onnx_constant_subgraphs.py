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

A hand-written model whose conv weight, conv bias and classifier matrix are
DequantizeLinear of int8/int32/uint8 initializers (per-axis and scalar
scales and zero points) must give the same top-5 probabilities (1e-6) as
the same model with the dequantized float weights stored directly.
"""

import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))
sys.path.insert(0, os.path.join(HERE, "..", "zoo"))
import wwtest  # noqa: E402
import onnxpb as pb  # noqa: E402

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


INT8, UINT8, INT32 = 3, 2, 6


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def quantized_pair():
    """(float model, quantized model): image -> Conv(4, 3x3) -> Relu -> GAP -> Flatten -> Gemm."""
    rnd = random.Random(11)
    wq = [rnd.randint(-128, 127) for _ in range(4 * 27)]
    w_scale = [f32(rnd.uniform(0.001, 0.01)) for _ in range(4)]
    w_zero = [rnd.randint(-5, 5) for _ in range(4)]
    bq = [rnd.randint(-50000, 50000) for _ in range(4)]
    b_scale = f32(1e-5)
    fq = [rnd.randint(0, 255) for _ in range(1000 * 4)]
    f_scale, f_zero = f32(0.02), 128
    w = [f32((q - w_zero[i // 27]) * w_scale[i // 27]) for i, q in enumerate(wq)]
    b = [f32(q * b_scale) for q in bq]
    fc = [f32((q - f_zero) * f_scale) for q in fq]
    fcb = [0.0] * 1000

    def graph(weights, inits):
        W, B, FC = weights
        nodes = list(inits[1]) + [
            pb.node("Conv", ["image", W, B], ["c"], "conv0", [pb.attr_ints("pads", [1, 1, 1, 1])]),
            pb.node("Relu", ["c"], ["r"], "relu0"),
            pb.node("GlobalAveragePool", ["r"], ["p"], "pool0"),
            pb.node("Flatten", ["p"], ["f"], "flatten0"),
            pb.node("Gemm", ["f", FC, "FCB"], ["logits"], "fc0", [pb.attr_int("transB", 1)]),
        ]
        return pb.model(nodes, inits[0] + [pb.tensor("FCB", [1000], fcb)],
                        [("image", [1, 3, 224, 224])], [("logits", [1, 1000])], 13)

    plain = graph(("W", "B", "FC"), ([pb.tensor("W", [4, 3, 3, 3], w), pb.tensor("B", [4], b),
                                       pb.tensor("FC", [1000, 4], fc)], []))
    inits = [
        pb.tensor("Wq", [4, 3, 3, 3], raw=struct.pack("<%db" % len(wq), *wq), data_type=INT8),
        pb.tensor("Ws", [4], w_scale),
        pb.tensor("Wz", [4], raw=struct.pack("<4b", *w_zero), data_type=INT8),
        pb.tensor("Bq", [4], raw=struct.pack("<4i", *bq), data_type=INT32),
        pb.tensor("Bs", [], [b_scale]),
        pb.tensor("Fq", [1000, 4], raw=bytes(fq), data_type=UINT8),
        pb.tensor("Fs", [], [f_scale]),
        pb.tensor("Fz", [], raw=bytes([f_zero]), data_type=UINT8),
    ]
    deq = [
        pb.node("DequantizeLinear", ["Wq", "Ws", "Wz"], ["W"], "dq_w", [pb.attr_int("axis", 0)]),
        pb.node("DequantizeLinear", ["Bq", "Bs"], ["B"], "dq_b"),
        pb.node("DequantizeLinear", ["Fq", "Fs", "Fz"], ["FC"], "dq_fc"),
    ]
    quantized = graph(("W", "B", "FC"), (inits, deq))
    return plain, quantized


def check_quantized(c, images, outdir):
    results = {}
    for name, data in zip(["plain", "quantized"], quantized_pair()):
        path = os.path.join(outdir, "dequantize-%s.onnx" % name)
        with open(path, "wb") as f:
            f.write(data)
        by_file, problems, _ = wwtest.classify_json(images, path, K)
        c.check(not problems and all("top" in o for o in by_file.values()),
                "dequantize-%s.onnx: wanwu ran and printed one JSON line per image" % name,
                "\n".join(problems[:5] + [str(o) for o in by_file.values() if "top" not in o][:3]))
        results[name] = by_file
    diffs = []
    for img in images:
        a = results["plain"].get(img, {}).get("top", [])
        b = results["quantized"].get(img, {}).get("top", [])
        same = [x["class_index"] for x in a] == [x["class_index"] for x in b] and len(a) == K
        d = max([abs(x["prob"] - y["prob"]) for x, y in zip(a, b)] or [1.0])
        if not same or d > 1e-6:
            diffs.append("%s: %s vs %s" % (os.path.basename(img), a, b))
    c.check(not diffs, "DequantizeLinear of initializers (per-axis int8, int32, uint8): same top-%d "
            "as the float weights (1e-6)" % K, "\n".join(diffs[:3]))


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
    check_quantized(c, images, outdir)
    c.done()


if __name__ == "__main__":
    main()
