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

# 3. A WebGPU adapter. Dawn rejects bookworm's own mesa (22.3); the backports mesa works.
probe() { node dist/runtime/cli/moec.js doctor --probe >/dev/null 2>&1; }
if ! probe; then
  say "no usable GPU adapter; installing Mesa lavapipe (software Vulkan) from bookworm-backports"
  if ! can_be_root; then
    die "installing a Vulkan driver needs root. Run as root, or install it by hand:
  echo 'deb http://deb.debian.org/debian bookworm-backports main' | sudo tee /etc/apt/sources.list.d/backports.list
  sudo apt-get update && sudo apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1
(on another distribution: a Mesa >= 23 with lavapipe, or your GPU's Vulkan driver, and the Vulkan loader)"
  fi
  command -v apt-get >/dev/null || die "no apt-get here: install a Vulkan driver (Mesa >= 23 lavapipe, or your GPU's) and the Vulkan loader by hand."
  codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
  list=/etc/apt/sources.list.d/moec-backports.list
  if [ "$codename" = "bookworm" ] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' | "${as_root[@]}" tee "$list" >/dev/null
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  if [ "$codename" = "bookworm" ]; then
    "${as_root[@]}" apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
  else
    "${as_root[@]}" apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  fi
  probe || die "still no usable GPU adapter after installing lavapipe; 'node dist/runtime/cli/moec.js doctor' shows why."
fi

# 4. tmux, which the terminal-UI test drives as a real terminal. Optional: without it that one test
# is skipped, so an unprivileged setup says how to get it and goes on.
if ! command -v tmux >/dev/null; then
  if command -v apt-get >/dev/null && can_be_root; then
    say "installing tmux (for the terminal UI test)"
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" apt-get install -y -qq tmux >/dev/null
  else
    say "note: no tmux, and installing it needs root and apt-get; the terminal UI test will be skipped (install tmux by hand to run it)"
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
