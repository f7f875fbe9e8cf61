#!/usr/bin/env bash
# Install the Debian packages labviz uses: real Fashion-MNIST and Chromium (figure export, browser
# tests). Without apt or root, say what to install by hand and carry on: labviz then works on the
# bundled digits set only.
set -u
pkgs=(dataset-fashion-mnist chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  echo "Installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null && exit 0
  echo "apt-get failed; continuing without: ${missing[*]}" >&2
else
  echo "Not installing ${missing[*]} (needs apt-get and root). By hand:" >&2
fi
echo "  sudo apt-get install ${missing[*]}" >&2
echo "  or set LABVIZ_FASHION_MNIST_DIR to a folder with Fashion-MNIST's IDX files." >&2
echo "Carrying on: without them labviz uses the bundled digits set, and figure export is off." >&2
exit 0
