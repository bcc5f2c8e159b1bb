#!/usr/bin/python3
"""Parity of wanwu's image decoding and preprocessing with PIL + torchvision.

Part 1 (always): PNG/JPEG variants generated here with PIL or a small PNG
writer (every colour type and bit depth, palettes with tRNS and
out-of-range indices, interlacing, CMYK and grayscale JPEG, EXIF
orientations, odd sizes) must decode to exactly PIL's convert("RGB") bytes;
Image.resize and the full transform (including CenterCrop's padding path)
must match bit for bit.

Part 2 (needs $WANWU_SHARED/imagenet-sample): every sample JPEG through
Resize(256)/CenterCrop(224)/ToTensor/Normalize, bilinear for all of them and
bicubic for a subset, compared value by value with torchvision.

Run by ctest with /usr/bin/python3 (Debian's torch, torchvision 0.14,
Pillow 9.4). Exit 77 = skipped.
"""
import glob
import io
import os
import struct
import subprocess
import sys
import warnings
import zlib

SKIP = 77


def ci_mode():
    ci = os.environ.get("CI", "")
    return ci != "" and ci.lower() != "false"


def skip(reason):
    if ci_mode():
        print(f"FAIL: {reason} (CI is set, so this cannot be skipped)")
        sys.exit(1)
    print(f"\n*** SKIP: {reason} ***\n")
    sys.exit(SKIP)


try:
    import numpy as np
    import torch
    from PIL import Image, ImageOps
    from torchvision import transforms as T
except ImportError as e:  # pragma: no cover - depends on the machine
    skip(f"PIL/torch/torchvision not importable with {sys.executable}: {e}")

# PIL warns about palette transparency given as bytes; expected here.
warnings.filterwarnings("ignore", message="Palette images with Transparency")

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
ONE_LEVEL = 1.0 / 255.0 / min(STD)  # one 8-bit step after Normalize

TOOLS_DIR = os.environ.get("WANWU_TOOLS_DIR", "")
TOOL = os.path.join(TOOLS_DIR, "tool_preprocess")
TMP = os.path.join(os.environ.get("WANWU_TEST_TMP", "/tmp"), "image-parity")
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print(f"  MISMATCH: {what}")


# --------------------------------------------------------------------------
# Running the C side


def run_tool(paths, *args):
    """Returns one entry per path: a numpy array, or an error string."""
    out_path = os.path.join(TMP, "tool-out.bin")
    cmd = [TOOL, *args, "--out", out_path, *paths]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:8])}... failed ({proc.returncode}): {proc.stderr}")
    blob = open(out_path, "rb").read()
    lines = proc.stdout.splitlines()
    assert len(lines) == len(paths), (len(lines), len(paths), proc.stdout[-500:])
    results, offset = [], 0
    tensor = "--mode" not in args or args[args.index("--mode") + 1] == "tensor"
    for line in lines:
        if line.startswith("ERR"):
            results.append(line)
            continue
        shape = tuple(int(v) for v in line.split()[1:])
        dtype = np.float32 if tensor else np.uint8
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        results.append(np.frombuffer(blob[offset:offset + n], dtype=dtype).reshape(shape))
        offset += n
    return results


def transform(resize=256, crop=224, interp=T.InterpolationMode.BILINEAR):
    return T.Compose([T.Resize(resize, interpolation=interp), T.CenterCrop(crop), T.ToTensor(),
                      T.Normalize(mean=MEAN, std=STD)])


# --------------------------------------------------------------------------
# A tiny PNG writer, for the bit depths and layouts PIL cannot save.

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def png_chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_samples(samples, depth):
    samples = [int(s) for s in samples]
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    per_byte = 8 // depth
    out = bytearray((len(samples) + per_byte - 1) // per_byte)
    for i, s in enumerate(samples):
        out[i // per_byte] |= s << (8 - depth * (i % per_byte + 1))
    return bytes(out)


def make_png(pixels, depth, color_type, palette=None, trns=None, interlace=False, filters=(0,),
             extra_after_idat=b""):
    """pixels: H x W x samples-per-pixel integer array."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    h, w = pixels.shape[:2]
    raw = bytearray()

    def emit(sub):
        bpp = max(1, (depth * sub.shape[2] + 7) // 8)
        prev = bytes(len(pack_samples(sub[0].reshape(-1), depth))) if len(sub) else b""
        for y, row in enumerate(sub):
            line = pack_samples(row.reshape(-1), depth)
            ftype = filters[y % len(filters)]
            enc = bytearray(line)
            for i in range(len(line)):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                if ftype == 1:
                    enc[i] = (line[i] - a) & 0xFF
                elif ftype == 2:
                    enc[i] = (line[i] - b) & 0xFF
            raw.append(ftype)
            raw.extend(enc)
            prev = line

    if interlace:
        for x0, y0, dx, dy in ADAM7:
            sub = pixels[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                emit(sub)
    else:
        emit(pixels)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    if palette is not None:
        out += png_chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    out += png_chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    return out + extra_after_idat + png_chunk(b"IEND", b"")


# --------------------------------------------------------------------------
# Variant files


def write(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def pil_save(name, image, fmt, **kw):
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return write(name, buf.getvalue())


SIZES = [(1, 1), (1, 9), (9, 1), (2, 3), (13, 9), (33, 17), (64, 48)]


def png_variants(rng):
    files = []
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
    depths = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
    for (w, h) in SIZES:
        for ct, ds in depths.items():
            for d in ds:
                for interlace in (False, True):
                    tag = f"ct{ct}-d{d}-{w}x{h}{'-i' if interlace else ''}"
                    if ct == 3:
                        entries = min(1 << d, 256)
                        pal = rng.integers(0, 256, (entries, 3))
                        px = rng.integers(0, entries, (h, w))
                        files.append(write(f"{tag}.png", make_png(px, d, ct, palette=pal,
                                                                  interlace=interlace)))
                        trns = bytes(rng.integers(0, 256, entries).astype(np.uint8))
                        files.append(write(f"{tag}-trns.png",
                                           make_png(px, d, ct, palette=pal, trns=trns,
                                                    interlace=interlace, filters=(0, 1, 2))))
                        if d >= 2:  # PLTE shorter than the indices used
                            short = pal[:max(1, entries // 3)]
                            files.append(write(f"{tag}-short-plte.png",
                                               make_png(px, d, ct, palette=short,
                                                        interlace=interlace)))
                        continue
                    top = (1 << d) - 1
                    px = rng.integers(0, top + 1, (h, w, channels[ct]))
                    files.append(write(f"{tag}.png", make_png(px, d, ct, interlace=interlace,
                                                              filters=(0, 1, 2))))
                    if d == 16 and ct == 0:  # 16-bit gray straddling 255
                        small = rng.integers(0, 600, (h, w))
                        files.append(write(f"{tag}-low.png", make_png(small, d, ct,
                                                                      interlace=interlace)))
                    if ct in (0, 2) and d == 8:
                        trns = b"\x00\x07" if ct == 0 else b"\x00\x07\x00\x08\x00\x09"
                        files.append(write(f"{tag}-trns.png", make_png(px, d, ct, trns=trns,
                                                                       interlace=interlace)))
    # Files written by PIL itself (its zlib settings and filters).
    base = Image.fromarray(rng.integers(0, 256, (37, 29, 3), dtype=np.uint8), "RGB")
    for mode in ("RGB", "RGBA", "L", "LA", "P", "1", "I"):
        files.append(pil_save(f"pil-{mode}.png", base.convert(mode), "PNG"))
    files.append(pil_save("pil-I16.png", Image.fromarray(
        rng.integers(0, 1000, (11, 7)).astype(np.uint16), "I;16"), "PNG"))
    files.append(pil_save("pil-P-trns.png", base.convert("P"), "PNG", transparency=3))
    # Extra bytes after IEND, and an ancillary chunk after the image data.
    px = rng.integers(0, 256, (5, 6, 3))
    files.append(write("trailing-garbage.png", make_png(px, 8, 2) + b"garbage"))
    files.append(write("text-after-idat.png", make_png(px, 8, 2, extra_after_idat=png_chunk(
        b"tEXt", b"Comment\x00hello"))))
    return files


def jpeg_variants(rng):
    files = []
    for (w, h) in SIZES + [(100, 75), (75, 100)]:
        smooth = np.clip(np.add.outer(np.arange(h) * 7, np.arange(w) * 3)[:, :, None]
                         + rng.integers(0, 60, (h, w, 3)), 0, 255).astype(np.uint8)
        im = Image.fromarray(smooth, "RGB")
        tag = f"{w}x{h}"
        files.append(pil_save(f"rgb-{tag}.jpg", im, "JPEG", quality=90))
        files.append(pil_save(f"rgb444-{tag}.jpg", im, "JPEG", quality=95, subsampling=0))
        files.append(pil_save(f"rgb422-{tag}.jpg", im, "JPEG", quality=80, subsampling=1))
        files.append(pil_save(f"prog-{tag}.jpg", im, "JPEG", quality=85, progressive=True))
        files.append(pil_save(f"opt-{tag}.jpg", im, "JPEG", quality=70, optimize=True))
        files.append(pil_save(f"gray-{tag}.jpg", im.convert("L"), "JPEG", quality=90))
        files.append(pil_save(f"cmyk-{tag}.jpg", im.convert("CMYK"), "JPEG", quality=90))
        cmyk = Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), "CMYK")
        files.append(pil_save(f"cmyk-rand-{tag}.jpg", cmyk, "JPEG", quality=95))
    return files


def exif_variants(rng):
    files = []
    im = Image.fromarray(rng.integers(0, 256, (21, 34, 3), dtype=np.uint8), "RGB")
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        files.append(pil_save(f"exif-{orientation}.jpg", im, "JPEG", quality=95,
                              exif=exif.tobytes()))
    big_endian = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01" \
                 b"\x00\x06\x00\x00\x00\x00\x00\x00"
    files.append(pil_save("exif-be-6.jpg", im, "JPEG", quality=95, exif=big_endian))
    # PNG: eXIf before the image data (as PIL writes it) and after it.
    exif = Image.Exif()
    exif[0x0112] = 6
    files.append(pil_save("exif-6.png", im, "PNG", exif=exif.tobytes()))
    exif[0x0112] = 7
    files.append(write("exif-7-after-idat.png", make_png(
        np.asarray(im), 8, 2, extra_after_idat=png_chunk(b"eXIf", exif.tobytes()[6:]))))
    return files


# --------------------------------------------------------------------------
# Part 1


def part1():
    rng = np.random.default_rng(20240501)
    os.makedirs(TMP, exist_ok=True)

    print("decode: PNG and JPEG variants vs PIL convert('RGB')")
    for label, paths in (("PNG", png_variants(rng)), ("JPEG", jpeg_variants(rng))):
        got = run_tool(paths, "--mode", "rgb")
        same = 0
        for path, arr in zip(paths, got):
            ref = np.asarray(Image.open(path).convert("RGB"))
            ok = not isinstance(arr, str) and arr.shape == ref.shape and (arr == ref).all()
            same += ok
            check(ok, f"decode {os.path.basename(path)}: "
                      f"{arr if isinstance(arr, str) else 'pixels differ'}")
        print(f"  {label}: {same}/{len(paths)} files byte-identical")

    print("decode: EXIF orientation vs ImageOps.exif_transpose")
    paths = exif_variants(rng)
    got = run_tool(paths, "--mode", "rgb", "--exif")
    plain = run_tool(paths, "--mode", "rgb")
    same = 0
    for path, arr, arr_plain in zip(paths, got, plain):
        ref = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        ok = not isinstance(arr, str) and arr.shape == ref.shape and (arr == ref).all()
        unrotated = np.asarray(Image.open(path).convert("RGB"))
        ok = ok and arr_plain.shape == unrotated.shape and (arr_plain == unrotated).all()
        same += ok
        check(ok, f"exif {os.path.basename(path)}")
    print(f"  {same}/{len(paths)} orientations identical (and ignored without --exif)")

    print("resize: ww_image_resize vs Image.resize")
    src = [pil_save(f"resize-src-{w}x{h}.png", Image.fromarray(
        rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB"), "PNG")
        for (w, h) in ((1, 1), (7, 3), (50, 31), (300, 211))]
    targets = [(1, 1), (3, 7), (50, 31), (256, 256), (17, 300), (300, 5), (229, 211)]
    cases = same = 0
    for name, resample in (("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)):
        for (tw, th) in targets:
            got = run_tool(src, "--mode", "resize", "--size", f"{tw}x{th}", "--interp", name)
            for path, arr in zip(src, got):
                ref = np.asarray(Image.open(path).convert("RGB").resize((tw, th), resample))
                ok = not isinstance(arr, str) and arr.shape == ref.shape and (arr == ref).all()
                cases += 1
                same += ok
                check(ok, f"resize {os.path.basename(path)} -> {tw}x{th} {name}")
    print(f"  {same}/{cases} resizes byte-identical")

    print("preprocess: odd sizes, small images and CenterCrop padding")
    imgs = [pil_save(f"pre-{w}x{h}.png", Image.fromarray(
        rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB"), "PNG")
        for (w, h) in ((1, 1), (1, 40), (40, 1), (100, 80), (223, 224), (256, 300), (301, 257))]
    settings = [(256, 224), (100, 224), (224, 224), (256, 300), (150, 149)]
    cases = same = 0
    for name, interp in (("bilinear", T.InterpolationMode.BILINEAR),
                         ("bicubic", T.InterpolationMode.BICUBIC)):
        for resize, crop in settings:
            got = run_tool(imgs, "--resize", str(resize), "--crop", str(crop), "--interp", name)
            tf = transform(resize, crop, interp)
            for path, arr in zip(imgs, got):
                ref = tf(Image.open(path).convert("RGB")).numpy()
                ok = not isinstance(arr, str) and arr.shape == ref.shape and (arr == ref).all()
                cases += 1
                same += ok
                check(ok, f"preprocess {os.path.basename(path)} resize={resize} crop={crop} "
                          f"{name}")
    print(f"  {same}/{cases} tensors bit-identical")

    print("errors: truncated and non-image files fail on both sides")
    good_jpeg = open(os.path.join(TMP, "rgb-33x17.jpg"), "rb").read()
    good_png = open(os.path.join(TMP, "ct2-d8-33x17.png"), "rb").read()
    bad = [write("cut.jpg", good_jpeg[:len(good_jpeg) // 2]),
           write("cut-eoi.jpg", good_jpeg[:-2]),
           write("cut.png", good_png[:len(good_png) // 2]),
           write("text.png", b"hello, this is not an image"),
           write("empty.jpg", b"")]
    got = run_tool(bad, "--mode", "rgb")
    for path, arr in zip(bad, got):
        try:
            Image.open(path).convert("RGB")
            pil_ok = True
        except Exception:
            pil_ok = False
        check(isinstance(arr, str) and not pil_ok, f"error parity for {os.path.basename(path)}: "
                                                   f"wanwu={arr if isinstance(arr, str) else 'ok'}")
    unsupported = got[3]
    check(isinstance(unsupported, str) and "not a JPEG or PNG image" in unsupported,
          f"unknown format message: {unsupported}")
    print(f"  {len(bad)} broken files rejected")

    # Cut files at many offsets: wanwu must succeed exactly when PIL does
    # (PIL accepts a PNG once all rows are decoded, even without its zlib
    # checksum, IDAT CRC or IEND) and then give the same pixels.
    cut_sources = [("png", make_png(rng.integers(0, 256, (19, 31, 3)), 8, 2)),
                   ("png-i", make_png(rng.integers(0, 256, (19, 31, 3)), 8, 2, interlace=True)),
                   ("png-pal", make_png(rng.integers(0, 4, (9, 50)), 2, 3,
                                        palette=rng.integers(0, 256, (4, 3)))),
                   ("png-i-1x1", make_png(rng.integers(0, 256, (1, 1, 3)), 8, 2, interlace=True)),
                   ("png-i-3x2", make_png(rng.integers(0, 256, (2, 3)), 8, 0, interlace=True)),
                   ("png-i-5x9", make_png(rng.integers(0, 256, (9, 5, 4)), 16, 6, interlace=True)),
                   ("jpg", good_jpeg)]
    agree = cases = 0
    for tag, blob in cut_sources:
        offsets = sorted(set(list(range(max(1, len(blob) - 70), len(blob)))
                             + list(range(1, len(blob), max(1, len(blob) // 40)))))
        paths = [write(f"cut-{tag}-{n}.bin", blob[:n]) for n in offsets]
        got = run_tool(paths, "--mode", "rgb")
        for path, arr in zip(paths, got):
            try:
                ref = np.asarray(Image.open(path).convert("RGB"))
            except Exception:
                ref = None
            if ref is None:
                ok = isinstance(arr, str)
            else:
                ok = not isinstance(arr, str) and arr.shape == ref.shape and (arr == ref).all()
            cases += 1
            agree += ok
            check(ok, f"truncated {os.path.basename(path)}: wanwu "
                      f"{arr if isinstance(arr, str) else 'decoded'}, PIL "
                      f"{'failed' if ref is None else 'decoded'}")
    print(f"  {agree}/{cases} truncated files: same outcome (and pixels) as PIL")


# --------------------------------------------------------------------------
# Part 2


def compare_dataset(paths, interp_name, interp):
    tf = transform(256, 224, interp)
    total = identical = worst_files = 0
    max_diff = 0.0
    over_one_level = 0
    batch = 100
    for start in range(0, len(paths), batch):
        chunk = paths[start:start + batch]
        got = run_tool(chunk, "--interp", interp_name)
        for path, arr in zip(chunk, got):
            ref = tf(Image.open(path).convert("RGB")).numpy()
            if isinstance(arr, str):
                check(False, f"{os.path.basename(path)}: {arr}")
                total += ref.size
                continue
            diff = np.abs(arr.astype(np.float64) - ref.astype(np.float64))
            total += ref.size
            identical += int((arr == ref).sum())
            worst_files += bool((arr != ref).any())
            over_one_level += int((diff > ONE_LEVEL * 1.0001).sum())
            max_diff = max(max_diff, float(diff.max()))
    pct = 100.0 * identical / max(total, 1)
    print(f"  {interp_name}: {identical}/{total} values identical ({pct:.4f}%), "
          f"{worst_files} of {len(paths)} images with any difference, max |diff| {max_diff:.3g}, "
          f"{over_one_level} values off by more than one 8-bit level")
    check(identical >= 0.999 * total, f"{interp_name}: only {pct:.4f}% identical")
    check(over_one_level == 0, f"{interp_name}: {over_one_level} values off by > 1 level")


def part2():
    shared = os.environ.get("WANWU_SHARED") or os.path.join(
        os.environ.get("WANWU_SOURCE_DIR", "."), "..", "shared")
    paths = sorted(glob.glob(os.path.join(shared, "imagenet-sample", "*.JPEG")))
    if not paths:
        return False
    gray = sum(Image.open(p).mode == "L" for p in paths)
    print(f"imagenet-sample: {len(paths)} JPEGs ({gray} grayscale) vs torchvision")
    compare_dataset(paths, "bilinear", T.InterpolationMode.BILINEAR)
    subset = paths[::max(1, len(paths) // 50)][:50]
    compare_dataset(subset, "bicubic", T.InterpolationMode.BICUBIC)
    return True


def main():
    if not os.access(TOOL, os.X_OK):
        print(f"FAIL: helper {TOOL} not found (set WANWU_TOOLS_DIR to the tests build dir)")
        return 1
    torch.set_num_threads(1)
    part1()
    have_shared = part2()
    if failures:
        print(f"FAILED: {len(failures)} mismatches")
        return 1
    if not have_shared:
        skip("imagenet-sample parity needs the shared data folder (WANWU_SHARED, default "
             "../shared), which is absent; synthetic parity checks passed")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
