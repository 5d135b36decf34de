#!/usr/bin/env bash
# The README's test command, and what .ci/run runs: installs what the tests need beyond a Rust
# toolchain, then runs the whole suite.
#
# Installs, through apt and only when missing (saying so):
#   - chromium (Debian's package): the playground's browser test drives it headless;
#   - git: tests of `diff --base` and of applying the playground's patch use it.
# Then runs `cargo test` with any arguments given to this script.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
if [ -z "${JOBPOINTS_CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ] && ! command -v chromium >/dev/null 2>&1; then
  missing+=(chromium)
fi
if ! command -v git >/dev/null 2>&1; then
  missing+=(git)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "scripts/test.sh: installing ${missing[*]} with apt-get (needed by the tests)" >&2
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${missing[@]}"
fi

exec cargo test "$@"
