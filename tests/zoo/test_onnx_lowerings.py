#!/usr/bin/python3
"""ONNX configurations the importer lowers through load-time gathers, batch
folding or padding, checked against PyTorch where Debian's ONNX node tests
(test_onnx_conformance) do not reach: padded/strided dilated and 3-D
pooling, ceil_mode with count_include_pad, 1-D and batched pooling, batched
Conv and BatchNorm, broadcast batched MatMul, Gemm with a per-row bias, Softmax and
ReduceMean on inner axes (both Softmax conventions), GlobalAveragePool of a
batch.

Each case is written as an ONNX node test (model.onnx, test_data_set_0/
input_0.pb, output_0.pb, the expected output computed by PyTorch) and the
directory is run by test_onnx_conformance, which must pass every case with
ONNX's tolerance and skip none.
"""

import os
import random
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))
sys.path.insert(0, HERE)
import wwtest  # noqa: E402
import onnxpb as pb  # noqa: E402


def main():
    torch = wwtest.import_torch()
    F = torch.nn.functional
    tools = os.environ.get("WANWU_TOOLS_DIR") or os.path.join(wwtest.SOURCE_DIR, "build", "tests")
    runner = os.path.join(tools, "test_onnx_conformance")
    if not os.access(runner, os.X_OK):
        wwtest.skip("test_onnx_conformance not found in %s" % tools)
    root = wwtest.tmp_dir("onnx-lowerings")
    gen = torch.Generator().manual_seed(11)
    cases = []

    def rand(*shape):
        return torch.randn(*shape, generator=gen)

    def case(name, op, x, y, attrs=(), inits=(), opset=13, extra_inputs=()):
        """One node `op`(x, *extra_inputs) -> y, constants as initializers."""
        d = os.path.join(root, "test_" + name)
        os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
        init_pbs = [pb.tensor(n, list(t.shape), t.flatten().tolist(),
                              data_type=pb.FLOAT if t.is_floating_point() else 7)
                    for n, t in inits]
        node = pb.node(op, ["x"] + list(extra_inputs), ["y"], name, list(attrs))
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(pb.model([node], init_pbs, [("x", list(x.shape))], [("y", list(y.shape))], opset))
        for fname, t, tname in (("input_0.pb", x, "x"), ("output_0.pb", y, "y")):
            with open(os.path.join(d, "test_data_set_0", fname), "wb") as f:
                f.write(pb.tensor(tname, list(t.shape), t.flatten().tolist()))
        cases.append(name)

    ai, af = pb.attr_ints, pb.attr_float

    # pooling the kernels cannot run directly
    x = rand(1, 3, 9, 10)
    case("maxpool_dilated_padded", "MaxPool", x,
         F.max_pool2d(x, 3, stride=2, padding=1, dilation=2),
         [ai("kernel_shape", [3, 3]), ai("strides", [2, 2]), ai("pads", [1, 1, 1, 1]),
          ai("dilations", [2, 2])])
    case("maxpool_ceil_padded", "MaxPool", x, F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
         [ai("kernel_shape", [3, 3]), ai("strides", [2, 2]), ai("pads", [1, 1, 1, 1]),
          pb.attr_int("ceil_mode", 1)])
    case("avgpool_ceil_include_pad", "AveragePool", x,
         F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=True),
         [ai("kernel_shape", [3, 3]), ai("strides", [2, 2]), ai("pads", [1, 1, 1, 1]),
          pb.attr_int("ceil_mode", 1), pb.attr_int("count_include_pad", 1)])
    case("avgpool_ceil_exclude_pad", "AveragePool", x,
         F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
         [ai("kernel_shape", [3, 3]), ai("strides", [2, 2]), ai("pads", [1, 1, 1, 1]),
          pb.attr_int("ceil_mode", 1)])
    x3 = rand(2, 2, 5, 6, 7)
    case("maxpool_3d_padded_batch2", "MaxPool", x3, F.max_pool3d(x3, 3, stride=2, padding=1),
         [ai("kernel_shape", [3, 3, 3]), ai("strides", [2, 2, 2]), ai("pads", [1] * 6)])
    case("avgpool_3d_exclude_pad", "AveragePool", x3,
         F.avg_pool3d(x3, (2, 3, 3), stride=(1, 2, 2), padding=(1, 1, 1), count_include_pad=False),
         [ai("kernel_shape", [2, 3, 3]), ai("strides", [1, 2, 2]), ai("pads", [1] * 6)])
    x1 = rand(2, 3, 11)
    case("avgpool_1d_batch2", "AveragePool", x1,
         F.avg_pool1d(x1, 3, stride=2, padding=1, count_include_pad=False),
         [ai("kernel_shape", [3]), ai("strides", [2]), ai("pads", [1, 1])])
    xb = rand(3, 4, 7, 6)
    case("maxpool_batch3_ceil", "MaxPool", xb, F.max_pool2d(xb, 2, stride=2, ceil_mode=True),
         [ai("kernel_shape", [2, 2]), ai("strides", [2, 2]), pb.attr_int("ceil_mode", 1)])
    case("globalaveragepool_batch3", "GlobalAveragePool", xb, xb.mean(dim=(2, 3), keepdim=True))
    case("globalaveragepool_1d", "GlobalAveragePool", x1, x1.mean(dim=2, keepdim=True))

    # Conv of a batch: grouped, strided, padded, with and without bias
    xc = rand(3, 4, 8, 7)
    wc, bc = rand(6, 2, 3, 3), rand(6)
    case("conv_batch3_grouped", "Conv", xc, F.conv2d(xc, wc, bc, stride=2, padding=1, groups=2),
         [ai("strides", [2, 2]), ai("pads", [1, 1, 1, 1]), pb.attr_int("group", 2)],
         [("W", wc), ("B", bc)], extra_inputs=["W", "B"])
    wd = rand(5, 4, 1, 1)
    case("conv_batch3_1x1_no_bias", "Conv", xc, F.conv2d(xc, wd), inits=[("W", wd)],
         extra_inputs=["W"])

    # BatchNorm of a batch, rank 3
    xn = rand(3, 4, 5)
    s, b, m, v = rand(4), rand(4), rand(4), rand(4).abs() + 0.5
    case("batchnorm_batch3_rank3", "BatchNormalization", xn,
         F.batch_norm(xn, m, v, s, b, training=False, eps=1e-3), [af("epsilon", 1e-3)],
         [("s", s), ("b", b), ("m", m), ("v", v)], extra_inputs=["s", "b", "m", "v"])

    # MatMul / Gemm with rows and batches
    a = rand(2, 1, 3, 4)
    bm = rand(3, 4, 5)
    case("matmul_broadcast_batch", "MatMul", a, torch.matmul(a, bm), inits=[("B", bm)],
         extra_inputs=["B"])
    a2 = rand(2, 3, 4)
    b2 = rand(4, 5)
    case("matmul_rows_3d", "MatMul", a2, torch.matmul(a2, b2), inits=[("B", b2)], extra_inputs=["B"])
    at = rand(4, 3)
    bt = rand(5, 4)
    c = rand(3, 1)
    case("gemm_trans_row_bias", "Gemm", at, 0.5 * at.t() @ bt.t() + 2.0 * c,
         [pb.attr_int("transA", 1), pb.attr_int("transB", 1), af("alpha", 0.5), af("beta", 2.0)],
         [("B", bt), ("C", c)], extra_inputs=["B", "C"])

    # Softmax: opset 13 along a middle axis, opset 11 over the trailing axes
    xs = rand(1, 3, 4, 5)
    case("softmax_middle_axis", "Softmax", xs, F.softmax(xs, dim=1), [pb.attr_int("axis", 1)])
    xs2 = rand(2, 3, 4)
    case("softmax_opset11_axis1", "Softmax", xs2,
         F.softmax(xs2.reshape(2, 12), dim=1).reshape(2, 3, 4), [pb.attr_int("axis", 1)], opset=11)

    # ReduceMean: attribute axes (opset 13) and input axes (opset 18)
    xr = rand(2, 3, 4, 5)
    case("reducemean_axes_0_2", "ReduceMean", xr, xr.mean(dim=(0, 2)),
         [ai("axes", [0, 2]), pb.attr_int("keepdims", 0)])
    case("reducemean_opset18_input_axes", "ReduceMean", xr, xr.mean(dim=(1, 3), keepdim=True),
         inits=[("axes", torch.tensor([-1, 1], dtype=torch.int64))], opset=18,
         extra_inputs=["axes"])

    env = dict(os.environ, WANWU_ONNX_TESTDATA=root)
    r = subprocess.run([runner], capture_output=True, text=True, env=env, timeout=600)
    out = r.stdout + r.stderr
    wwtest.log(out)
    want = ("total: %d passed, 0 failed, 0 skipped of supported ops (0 known gaps), 0 out of scope"
            % len(cases))
    if r.returncode != 0 or want not in out:
        wwtest.log("FAIL: expected '%s' (exit 0), got exit %d" % (want, r.returncode))
        return 1
    wwtest.log("ok: %d lowering cases match PyTorch" % len(cases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
