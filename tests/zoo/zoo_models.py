#!/usr/bin/python3
"""Random, non-trivial torchvision weight files for the model-zoo tests.

Not a test itself. Writes, into $WANWU_TEST_TMP/zoo-models-VERSION (cached,
fixed seeds):

  ARCH.pth     state dict of torchvision's ARCH with random weights, for
               ARCH in resnet18, mobilenet_v2, efficientnet_b0,
               shufflenet_v2_x1_0
  manifest.json

Initialisation (as tests/py/make_random_models.py, extended to the new
layers): Kaiming-normal fan_in convolutions (biases U(-0.1, 0.1)),
BatchNorm weight U(0.5, 1.5), bias/mean U(-0.2, 0.2), var U(0.5, 2);
squeeze-and-excitation convolutions scaled so the gates spread over
(0, 1) instead of saturating; the classifier calibrated on a dozen real
images so logits have std ~2 and images disagree on top-1.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))
import wwtest  # noqa: E402
import make_random_models  # noqa: E402

VERSION = "v1"
ARCHS = ("resnet18", "mobilenet_v2", "efficientnet_b0", "shufflenet_v2_x1_0")
SEEDS = {"resnet18": 1818, "mobilenet_v2": 2222, "efficientnet_b0": 3030, "shufflenet_v2_x1_0": 4040}

# torchvision's IMAGENET1K_V1 transform per architecture: (resize, interpolation)
TRANSFORMS = {
    "resnet18": (256, "bilinear"),
    "mobilenet_v2": (256, "bilinear"),
    "efficientnet_b0": (256, "bicubic"),
    "shufflenet_v2_x1_0": (256, "bilinear"),
}


def build_torch_model(arch):
    import torchvision
    return getattr(torchvision.models, arch)()


def transform(arch, resize=None, interp=None, crop=224):
    from torchvision import transforms
    r, i = TRANSFORMS[arch]
    r = resize or r
    i = interp or i
    mode = transforms.InterpolationMode.BICUBIC if i == "bicubic" else transforms.InterpolationMode.BILINEAR
    return transforms.Compose([
        transforms.Resize(r, interpolation=mode),
        transforms.CenterCrop(crop),
        transforms.ToTensor(),
        transforms.Normalize(mean=wwtest.MEAN, std=wwtest.STD),
    ])


def load_batch(paths, arch, **kw):
    import torch
    from PIL import Image
    tf = transform(arch, **kw)
    ts = []
    for p in paths:
        with open(p, "rb") as f:
            ts.append(tf(Image.open(f).convert("RGB")))
    return torch.stack(ts)


def classifier_of(model, arch):
    if arch in ("resnet18", "shufflenet_v2_x1_0"):
        return model.fc
    return model.classifier[1]


def randomize(model, arch, calib_x):
    import torch
    g = torch.Generator().manual_seed(SEEDS[arch])
    se_convs = set()
    for mod in model.modules():
        if type(mod).__name__ == "SqueezeExcitation":
            se_convs.add(id(mod.fc1))
            se_convs.add(id(mod.fc2))
    with torch.no_grad():
        make_random_models.randomize_weights(
            model, g, lambda mod: "fan_out" if arch == "resnet18" else "fan_in",
            lambda mod: 0.5 if id(mod) in se_convs else 1.0)
        model.eval()
        logits = make_random_models.calibrate_classifier(model, classifier_of(model, arch),
                                                         calib_x, g)
    return {"logit_std": logits.std().item(),
            "distinct_top1_on_calibration": len(set(logits.argmax(1).tolist()))}


def default_dir():
    return wwtest.tmp_dir("zoo-models-" + VERSION)


def ensure_models(outdir=None):
    """{"version", "files": {arch: path}, "stats": {arch: {...}}} (cached)."""
    outdir = outdir or default_dir()
    man_path = os.path.join(outdir, "manifest.json")
    with wwtest.file_lock("zoo-models-" + VERSION):
        if os.path.isfile(man_path):
            with open(man_path) as f:
                man = json.load(f)
            if man.get("version") == VERSION and all(os.path.isfile(p) for p in man["files"].values()):
                return man
        torch = wwtest.import_torch(2)
        sh = wwtest.shared_dir()
        calib = wwtest.all_images(sh)[3::41]
        man = {"version": VERSION, "files": {}, "stats": {}}
        for arch in ARCHS:
            model = build_torch_model(arch)
            man["stats"][arch] = randomize(model, arch, load_batch(calib, arch))
            path = os.path.join(outdir, arch + ".pth")
            tmp = path + ".tmp.%d" % os.getpid()
            torch.save(model.state_dict(), tmp)
            os.replace(tmp, path)
            man["files"][arch] = path
            wwtest.log("zoo models: %s logits std %.2f, %d distinct top-1 on calibration" %
                       (arch, man["stats"][arch]["logit_std"],
                        man["stats"][arch]["distinct_top1_on_calibration"]))
        wwtest.atomic_write_json(man_path, man)
        return man


def torch_model(arch, path):
    import torch
    m = build_torch_model(arch)
    m.load_state_dict(torch.load(path, map_location="cpu"), strict=True)
    m.eval()
    return m


def torch_topk_cached(arch, path, images, tag, n=20, **tf):
    """PyTorch's top-n per image for the .pth at `path`, cached by tag."""
    import torch
    cache = os.path.join(os.path.dirname(path), "torch-%s-%s.json" % (arch, tag))
    key = [os.path.getmtime(path), images]
    if os.path.isfile(cache):
        with open(cache) as f:
            c = json.load(f)
        if c.get("key") == key:
            return {p: [tuple(x) for x in v] for p, v in c["ref"].items()}
    model = torch_model(arch, path)
    out = {}
    with torch.no_grad():
        for p in images:
            probs = torch.softmax(model(load_batch([p], arch, **tf)), dim=1)[0]
            v, ix = torch.topk(probs, n)
            out[p] = [(int(a), float(b)) for a, b in zip(ix, v)]
    wwtest.atomic_write_json(cache, {"key": key, "ref": out})
    return out


if __name__ == "__main__":
    print(json.dumps(ensure_models(sys.argv[1] if len(sys.argv) > 1 else None), indent=1))
