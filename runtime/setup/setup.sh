#!/usr/bin/env bash
# One command from a fresh clone to a working moec: npm packages, the build, a WebGPU adapter
# (a software Vulkan driver only when no usable adapter exists), then the quickstart.
# Idempotent and quiet when everything is already there.
#   --no-quickstart   stop after installing (CI runs the tests next)
set -euo pipefail
cd "$(dirname "$0")/../.."
quickstart=1
[ "${1:-}" = "--no-quickstart" ] && quickstart=0

say() { printf 'moec setup: %s\n' "$*"; }
die() { printf 'moec setup: error: %s\n' "$*" >&2; exit 1; }
# Sets as_root to the prefix that runs a command as root (empty when we are root); fails without a way.
as_root=()
can_be_root() {
  [ "$(id -u)" -eq 0 ] && return 0
  command -v sudo >/dev/null && sudo -n true 2>/dev/null && as_root=(sudo -n)
}

# Mesa warns without a runtime dir; any private writable directory will do.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/moec-runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

command -v node >/dev/null || die "Node.js 20 or newer is needed (https://nodejs.org or Debian's nodejs package)."
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "Node.js $major is too old; moec needs Node.js 20 or newer."

# 1. npm packages, only when the lockfile is newer than the installed tree.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# 2. Build (incremental and quick when nothing changed).
npm run build --silent

# The Debian mirror this machine's apt sources already use (the first one serving the release
# itself, not -security or -updates): the backports line must come from the same place.
debian_mirror() {
  local codename=$1 f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v c="$codename" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ } if ($(i+1) == c) { print $i; exit } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822 stanzas: print the first URI of a stanza whose Suites name the release itself.
    awk -v c="$codename" 'BEGIN { RS = ""; FS = "\n" }
      { uri = ""; hit = 0; deb = 0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/ && $i ~ /[[:space:]]deb([[:space:]]|$)/) deb = 1
          if ($i ~ /^URIs:/) { split($i, a, /[[:space:]]+/); uri = a[2] }
          if ($i ~ /^Suites:/) { n = split($i, a, /[[:space:]]+/); for (j = 2; j <= n; j++) if (a[j] == c) hit = 1 }
        }
        if (deb && hit && uri != "") { print uri; exit } }' "$f"
  done
}

# Adds bookworm-backports beside the existing Debian source, from the same mirror; says so.
add_backports() {
  local codename=$1 list=/etc/apt/sources.list.d/moec-backports.list mirror
  grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ && return 0
  mirror=$(debian_mirror "$codename" | head -n 1)
  [ -n "$mirror" ] || die "no Debian '$codename' source in /etc/apt/sources.list(.d): add the line for ${codename}-backports from your Debian mirror by hand, then run setup again."
  say "adding ${codename}-backports from $mirror (the mirror your apt sources use) in $list"
  echo "deb $mirror ${codename}-backports main" | "${as_root[@]}" tee "$list" >/dev/null
}

apt_updated=0
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" = 0 ]; then "${as_root[@]}" apt-get update -qq; apt_updated=1; fi
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")

# 3. A WebGPU adapter. Dawn rejects bookworm's own mesa (22.3); the backports mesa works.
probe() { node dist/runtime/cli/moec.js doctor --probe >/dev/null 2>&1; }
if ! probe; then
  say "no usable GPU adapter; installing Mesa lavapipe (software Vulkan) from bookworm-backports"
  if ! can_be_root; then
    die "installing a Vulkan driver needs root. Run as root, or install it by hand: add a
bookworm-backports line beside your Debian source in /etc/apt/sources.list.d/ (same mirror), then
  sudo apt-get update && sudo apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1
(on another distribution: a Mesa >= 23 with lavapipe, or your GPU's Vulkan driver, and the Vulkan loader)"
  fi
  command -v apt-get >/dev/null || die "no apt-get here: install a Vulkan driver (Mesa >= 23 lavapipe, or your GPU's) and the Vulkan loader by hand."
  if [ "$codename" = "bookworm" ]; then
    add_backports "$codename"
    apt_install -t bookworm-backports mesa-vulkan-drivers libvulkan1
  else
    apt_install mesa-vulkan-drivers libvulkan1
  fi
  probe || die "still no usable GPU adapter after installing lavapipe; 'node dist/runtime/cli/moec.js doctor' shows why."
fi

# 4. What the test suite drives for real, from Debian: tmux (the terminal UI), redis-server (the
# BullMQ queue), slurm-wlm + munge (a one-node Slurm cluster), chromium (report.html in a browser),
# and Debian's CPU PyTorch with the pthread OpenBLAS (the cross-checks, the export, the bench's
# PyTorch side). None is needed to train: without root, setup says what is missing and goes on, and
# the tests that need a missing one skip with its name.
test_packages=(tmux redis-server slurm-wlm munge chromium python3-torch python3-numpy libopenblas0-pthread)
missing=()
for p in "${test_packages[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && can_be_root; then
    say "installing ${missing[*]} (for the tests)"
    apt_install "${missing[@]}"
  else
    say "note: ${missing[*]} not installed, and installing needs root and apt-get; the tests that use them will be skipped (install them by hand to run those)"
  fi
fi

if [ "$quickstart" = 1 ]; then
  say "ready; running the quickstart"
  if [ -f pipelines/quickstart.moe ] && node dist/runtime/cli/moec.js run --help >/dev/null 2>&1; then
    node dist/runtime/cli/moec.js run pipelines/quickstart.moe --resume
  else
    node dist/runtime/cli/moec.js doctor
  fi
else
  say "ready"
fi
