#!/usr/bin/env bash
# Installs the Debian 12 packages wanwu needs to build and test, only when
# something is missing (a no-op on a prepared machine).
set -euo pipefail

packages=(
  build-essential cmake pkg-config   # compiler and build
  libjpeg62-turbo-dev                # JPEG decoding (same library PIL uses)
  libpng-dev                         # PNG decoding
  libzip-dev                         # reading the zip container of .pth files
  libcmocka-dev                      # C unit tests
  python3-torch python3-torchvision  # reference results for parity tests
  python3-pil python3-numpy
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
