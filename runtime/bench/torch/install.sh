#!/usr/bin/env bash
# Installs the PyTorch side of `npm run bench`: Debian's CPU torch, numpy, and the pthread OpenBLAS
# (without it torch falls back to the reference BLAS, about 10x slower). Idempotent; silent unless
# something is installed or fails.
set -euo pipefail

packages=(python3-torch python3-numpy libopenblas0-pthread)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "moec bench: installing PyTorch needs root; run:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 2
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "moec bench: installing ${missing[*]} with apt" >&2
if ! { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
       "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "moec bench: apt-get failed (output above)" >&2
  exit 1
fi
