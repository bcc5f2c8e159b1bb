"""Writes the .pth fixtures read by tests/format/test_pth.c.

Usage: /usr/bin/python3 make_pth_fixtures.py OUTDIR

Every tensor value follows a formula the C test recomputes, so no second
file is needed for the small fixtures; for resnet18 (random weights) a text
manifest gives each tensor's name, dtype, shape and the float64 sum of its
values.
"""
import collections
import os
import pickle
import struct
import sys

import torch
import torchvision


def pattern(n):
    # Multiples of 0.25 in [-3, 21]: exact in fp16, bf16, fp32 and fp64.
    return [(i % 97) * 0.25 - 3.0 for i in range(n)]


def small_state_dict():
    sd = collections.OrderedDict()
    sd["f32"] = torch.tensor(pattern(60), dtype=torch.float32).reshape(3, 4, 5)
    sd["f16"] = torch.tensor(pattern(42), dtype=torch.float16).reshape(2, 3, 7)
    sd["bf16"] = torch.tensor(pattern(9), dtype=torch.bfloat16)
    # i / 3 is not exact in float32: checks the narrowing rounds like C's cast.
    sd["f64"] = torch.tensor([i / 3.0 for i in range(11)], dtype=torch.float64)
    sd["i64"] = torch.tensor([i * 1000000000007 - 5 * 10**12 for i in range(24)],
                             dtype=torch.int64).reshape(4, 6)
    sd["count"] = 7  # not a tensor: skipped
    sd["scalar"] = torch.tensor(2.5)
    sd["i64_scalar"] = torch.tensor(12345678901, dtype=torch.int64)
    # Non-contiguous view: a [4,6] tensor transposed to [6,4].
    sd["transposed"] = torch.tensor(pattern(24), dtype=torch.float32).reshape(4, 6).t()
    # Three views into one 40-element storage at different offsets.
    base = torch.tensor(pattern(40), dtype=torch.float32)
    sd["shared_a"] = base[2:12].view(2, 5)
    sd["shared_b"] = base[20:32].view(3, 4)
    sd["strided"] = base[1::3]
    sd["empty"] = torch.zeros(0, 3)
    sd["expanded"] = torch.tensor(pattern(2)).expand(3, 2)  # stride 0
    sd["param"] = torch.nn.Parameter(torch.tensor(pattern(5)))
    # Signed zeros, subnormals, the largest half, infinities, NaN, 1/3.
    sd["f16_special"] = torch.tensor([0.0, -0.0, 2.0**-24, 3 * 2.0**-24, 1023 * 2.0**-24,
                                      2.0**-14, 65504.0, float("inf"), float("-inf"),
                                      float("nan"), 1 / 3.0], dtype=torch.float16)
    return sd


class FromTypeV2:
    """Pickles a tensor through torch._tensor._rebuild_from_type_v2, as
    torch does for tensors that carry Python attributes."""

    def __init__(self, tensor):
        self.tensor = tensor

    def __reduce_ex__(self, proto):
        func, args = self.tensor._reduce_ex_internal(proto)
        return (torch._tensor._rebuild_from_type_v2, (func, torch.Tensor, args, {}))


class StorageView:
    """Stands for a storage view in write_legacy_view_file's pickle."""


class ViewTensor:
    def __init__(self, view, offset, size, stride):
        self.args = (view, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


def write_legacy_view_file(path):
    """Legacy file whose tensor uses a storage view (view_metadata), as
    torch < 1.0 wrote for views; current torch still reads them."""
    view = StorageView()

    def persistent_id(obj):
        if obj is view:
            return ("storage", torch.FloatStorage, "root", "cpu", 10, ("view", 4, 6))
        return None

    root = struct.pack("<10f", *pattern(10))
    with open(path, "wb") as f:
        pickle.dump(0x1950a86a20f9469cfc6c, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True,
                     "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2)
        pickler = pickle.Pickler(f, protocol=2)
        pickler.persistent_id = persistent_id
        pickler.dump(collections.OrderedDict(v=ViewTensor(view, 1, (2, 2), (2, 1))))
        pickle.dump(["root"], f, protocol=2)
        f.write(struct.pack("<q", 10) + root)
    # The view starts at element 4, the tensor one further: elements 5..8.
    loaded = torch.load(path)["v"]
    assert loaded.tolist() == [pattern(10)[5:7], pattern(10)[7:9]], loaded


def write_manifest(sd, path):
    with open(path, "w") as f:
        for name, t in sd.items():
            dims = " ".join(str(d) for d in t.shape)
            total = float(t.double().sum().item())
            f.write("%s %s %d %s %.17g\n" % (name, str(t.dtype).replace("torch.", ""),
                                           t.dim(), dims, total))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    sd = small_state_dict()
    torch.save(sd, os.path.join(out, "small_zip.pth"))
    torch.save(sd, os.path.join(out, "small_legacy.pth"), _use_new_zipfile_serialization=False)
    # Checkpoint-style wrappers around the same state dict.
    torch.save({"epoch": 3, "state_dict": sd}, os.path.join(out, "ckpt_state_dict.pth"))
    torch.save({"model": sd, "epoch": 3}, os.path.join(out, "ckpt_model.pth"),
               _use_new_zipfile_serialization=False)

    # Other pickle protocols: 4 adds FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE.
    torch.save(sd, os.path.join(out, "small_zip_p4.pth"), pickle_protocol=4)
    torch.save(sd, os.path.join(out, "small_legacy_p5.pth"), pickle_protocol=5,
               _use_new_zipfile_serialization=False)
    # Files that must fail with a clear message, or exercise rarer builders.
    torch.save(torch.nn.Linear(2, 2), os.path.join(out, "whole_module.pth"))
    torch.save({"w": torch.ones(2, dtype=torch.int32)}, os.path.join(out, "int32.pth"))
    torch.save(torch.ones(2), os.path.join(out, "single_tensor.pth"))
    torch.save({"epoch": 3, "net": {"w": torch.ones(2)}}, os.path.join(out, "no_tensors.pth"))
    torch.save({"x": FromTypeV2(torch.tensor(pattern(6)).reshape(2, 3))},
               os.path.join(out, "from_type.pth"))

    write_legacy_view_file(os.path.join(out, "legacy_view.pth"))

    torch.manual_seed(0)
    resnet = torchvision.models.resnet18().state_dict()
    torch.save(resnet, os.path.join(out, "resnet18_zip.pth"))
    torch.save(resnet, os.path.join(out, "resnet18_legacy.pth"),
               _use_new_zipfile_serialization=False)
    write_manifest(resnet, os.path.join(out, "resnet18.txt"))
    # Names and shapes only: checked against the shared real weights.
    write_manifest(torchvision.models.mobilenet_v2().state_dict(),
                   os.path.join(out, "mobilenet_v2.txt"))


if __name__ == "__main__":
    main()
