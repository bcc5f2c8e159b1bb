#!/usr/bin/python3
"""Randomly initialised torchvision ResNet-18 and MobileNetV2 weight files.

Official ResNet-18 weights are not available offline, and parity on random
weights exercises every tensor of a file, so the end-to-end tests compare
wanwu with PyTorch on these. Outputs (fixed seeds, so always identical):

  resnet18-zip.pth          torch.save default (zip) format
  resnet18-legacy.pth       torch.save(..., _use_new_zipfile_serialization=False)
  mobilenet_v2-zip.pth
  mobilenet_v2-legacy.pth
  mobilenet_v2-fp16.pth     every floating tensor stored as float16 (zip format)
  manifest.json             written last; marks the set as complete

Initialisation, chosen so that a wrong number anywhere changes the answer:
  * convolutions: Kaiming-normal (ReLU gain); fan_out for ResNet-18 (as
    torchvision does), fan_in for MobileNetV2 (torchvision's fan_out would
    shrink the depthwise layers' activations towards zero). Both keep
    activations O(1) through the whole network; MobileNetV2's ReLU6 clips a
    few percent of values.
  * BatchNorm: weight U(0.5, 1.5), bias U(-0.2, 0.2), running_mean
    U(-0.2, 0.2), running_var U(0.5, 2.0) -- so eval-mode BN is never the
    identity.
  * classifier (fc / classifier.1): random weight; then, on a few real
    images, the bias is set to cancel the image-independent part of the
    logits (plus a small random bias) and weight and bias are scaled so the
    logits' standard deviation across images is ~2. Without that, random
    features are dominated by a common component and every image gets the
    same top-1 class, which would make a preprocessing error invisible.

Usage: make_random_models.py [OUTDIR]   (default: $WANWU_TEST_TMP/random-models-VERSION)
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wwtest  # noqa: E402

# Bump when the recipe changes: invalidates cached files.
VERSION = "v1"
SEEDS = {"resnet18": 1818, "mobilenet_v2": 2222}
CONV_FAN = {"resnet18": "fan_out", "mobilenet_v2": "fan_in"}
TARGET_LOGIT_STD = 2.0
FP16_ARCH = "mobilenet_v2"

FILES = {
    # name: (arch, file, format)
    "resnet18-zip": ("resnet18", "resnet18-zip.pth", "zip"),
    "resnet18-legacy": ("resnet18", "resnet18-legacy.pth", "legacy"),
    "mobilenet_v2-zip": ("mobilenet_v2", "mobilenet_v2-zip.pth", "zip"),
    "mobilenet_v2-legacy": ("mobilenet_v2", "mobilenet_v2-legacy.pth", "legacy"),
    "mobilenet_v2-fp16": ("mobilenet_v2", "mobilenet_v2-fp16.pth", "zip-fp16"),
}


def default_dir():
    return wwtest.tmp_dir("random-models-" + VERSION)


def calibration_images():
    """A dozen real images spread over the sample (none of them special)."""
    sh = wwtest.shared_dir()
    paths = wwtest.all_images(sh)
    return paths[3::41]


def classifier_of(model, arch):
    return model.fc if arch == "resnet18" else model.classifier[1]


def randomize_weights(model, g, conv_fan, conv_gain=None):
    """Non-trivial random weights: kaiming-normal convs (conv_fan(mod) is
    "fan_in" or "fan_out"; conv_gain(mod) scales the std), random BatchNorm
    affine parameters and running statistics, small linear layers. Call
    under torch.no_grad()."""
    import torch
    import torch.nn as nn

    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            w = mod.weight
            rf = w.shape[2] * w.shape[3]
            fan = w.shape[1] * rf if conv_fan(mod) == "fan_in" else (w.shape[0] // mod.groups) * rf
            gain = conv_gain(mod) if conv_gain else 1.0
            w.copy_(torch.randn(w.shape, generator=g) * gain * (2.0 / fan) ** 0.5)
            if mod.bias is not None:
                mod.bias.copy_((torch.rand(mod.bias.shape, generator=g) - 0.5) * 0.2)
        elif isinstance(mod, nn.BatchNorm2d):
            n = mod.num_features
            mod.weight.copy_(torch.rand(n, generator=g) + 0.5)
            mod.bias.copy_((torch.rand(n, generator=g) - 0.5) * 0.4)
            mod.running_mean.copy_((torch.rand(n, generator=g) - 0.5) * 0.4)
            mod.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            mod.num_batches_tracked.fill_(int(torch.randint(1, 100000, (1,), generator=g)))
        elif isinstance(mod, nn.Linear):
            mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) / mod.weight.shape[1] ** 0.5)
            mod.bias.zero_()


def calibrate_classifier(model, fc, calib_x, g):
    """Scales the classifier so logits spread with std ~TARGET_LOGIT_STD
    across images, and removes the part common to every image (otherwise
    every image gets the same top-1). Returns the calibration logits. Call
    under torch.no_grad() with the model in eval mode."""
    import torch

    feats = []
    h = fc.register_forward_hook(lambda m, i, o: feats.append(i[0].detach()))
    model(calib_x)
    h.remove()
    f = feats[0]
    mu = f.mean(0)
    spread = ((f - mu) @ fc.weight.t()).std().item()
    fc.weight.mul_(TARGET_LOGIT_STD / spread)
    fc.bias.copy_(-(fc.weight @ mu) + torch.randn(fc.bias.shape, generator=g) * 0.2)
    return model(calib_x)


def make_state_dict(arch, calib_x):
    import torch

    g = torch.Generator().manual_seed(SEEDS[arch])
    model = wwtest.build_torch_model(arch)
    with torch.no_grad():
        randomize_weights(model, g, lambda mod: CONV_FAN[arch])
        model.eval()
        logits = calibrate_classifier(model, classifier_of(model, arch), calib_x, g)
    stats = {
        "logit_std": logits.std().item(),
        "distinct_top1_on_calibration": len(set(logits.argmax(1).tolist())),
        "calibration_images": calib_x.shape[0],
    }
    return model.state_dict(), stats


def fp16_copy(sd):
    import collections
    out = collections.OrderedDict()
    for k, v in sd.items():
        out[k] = v.half() if v.is_floating_point() else v.clone()
    if hasattr(sd, "_metadata"):
        out._metadata = sd._metadata
    return out


def save(sd, path, legacy):
    import torch
    tmp = path + ".tmp.%d" % os.getpid()
    if legacy:
        torch.save(sd, tmp, _use_new_zipfile_serialization=False)
    else:
        torch.save(sd, tmp)
    os.replace(tmp, path)


def ensure_models(outdir=None, verbose=True):
    """Creates the files if needed (cached); returns the manifest dict:
    {"version", "files": {name: {"arch", "path", "format"}}, "stats"}."""
    outdir = outdir or default_dir()
    os.makedirs(outdir, exist_ok=True)
    manifest_path = os.path.join(outdir, "manifest.json")
    with wwtest.file_lock("random-models-" + VERSION):
        if os.path.isfile(manifest_path):
            with open(manifest_path) as f:
                man = json.load(f)
            if man.get("version") == VERSION and all(
                    os.path.isfile(e["path"]) for e in man["files"].values()):
                if verbose:
                    wwtest.log("random models: cached in %s" % outdir)
                return man
        torch = wwtest.import_torch(2)
        torch.manual_seed(0)
        calib_x = wwtest.load_batch(calibration_images())
        man = {"version": VERSION, "files": {}, "stats": {}}
        for arch in ("resnet18", "mobilenet_v2"):
            sd, stats = make_state_dict(arch, calib_x)
            man["stats"][arch] = stats
            for name, (a, fname, fmt) in FILES.items():
                if a != arch:
                    continue
                path = os.path.join(outdir, fname)
                if fmt == "zip-fp16":
                    save(fp16_copy(sd), path, legacy=False)
                else:
                    save(sd, path, legacy=(fmt == "legacy"))
                man["files"][name] = {"arch": arch, "path": path, "format": fmt}
            if verbose:
                wwtest.log("random models: %s logits std %.2f over %d calibration images, %d distinct top-1"
                           % (arch, stats["logit_std"], stats["calibration_images"],
                              stats["distinct_top1_on_calibration"]))
        wwtest.atomic_write_json(manifest_path, man)
        if verbose:
            wwtest.log("random models: written to %s" % outdir)
        return man


if __name__ == "__main__":
    m = ensure_models(sys.argv[1] if len(sys.argv) > 1 else None)
    for name, e in sorted(m["files"].items()):
        print("%-22s %-13s %-9s %s" % (name, e["arch"], e["format"], e["path"]))
