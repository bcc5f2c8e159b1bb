#!/usr/bin/python3
"""Regenerates src/data/imagenet_labels.c from torchvision's class list."""
import os
from torchvision.models._meta import _IMAGENET_CATEGORIES as names

assert len(names) == 1000
lines = [
    "/* ImageNet-1k class names in torchvision's class-index order (the order of",
    " * sorted WordNet synsets), as torchvision.models._meta._IMAGENET_CATEGORIES",
    " * lists them. Generated once by scripts/gen-labels.py. */",
    '#include "wanwu.h"', "", "static const char *const imagenet_labels[1000] = {",
]
lines += ['    "%s",' % n.replace("\\", "\\\\").replace('"', '\\"') for n in names]
lines += ["};", "", "const char *wanwu_imagenet_label(int class_index)", "{",
          "    if (class_index < 0 || class_index >= 1000) return NULL;",
          "    return imagenet_labels[class_index];", "}", ""]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(root, "src/data/imagenet_labels.c"), "w") as f:
    f.write("\n".join(lines))
