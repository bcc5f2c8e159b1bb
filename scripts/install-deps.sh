#!/usr/bin/env bash
# Installs the Debian 12 packages wanwu needs to build and test, only when
# something is missing (a no-op on a prepared machine).
set -euo pipefail

packages=(
  build-essential cmake pkg-config   # compiler and build
  libjpeg62-turbo-dev                # JPEG decoding (same library PIL uses)
  libpng-dev                         # PNG decoding
  libzip-dev                         # reading the zip container of .pth files
  libprotobuf-c-dev protobuf-c-compiler libonnx-dev  # ONNX import (C generated from onnx.proto)
  libonnx-testdata                   # ONNX conformance tests (data/node/test_*)
  libcmocka-dev                      # C unit tests
  python3-torch python3-torchvision  # reference results for parity tests
  python3-pil python3-numpy
  libmicrohttpd-dev                  # HTTP server of `wanwu serve`
  chromium nodejs npm                # browser test of the web page (Playwright drives chromium)
  fonts-wqy-microhei                 # CJK glyphs for the page's screenshots
)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
for p in "${packages[@]}"; do
  case "$p" in
    nodejs | npm)
      # A node that did not come from Debian's packages (e.g. NodeSource's
      # nodejs, which bundles npm) is as good.
      command -v "${p/nodejs/node}" >/dev/null 2>&1 && continue ;;
  esac
  installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# JavaScript test dependencies (playwright-core, pinned in package-lock.json):
# `npm ci` when node_modules is missing or older than the lock file. The
# browser is Debian's chromium; Playwright must not download its own.
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "install-deps: npm ci (package-lock.json)" >&2
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi
