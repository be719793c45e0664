#!/usr/bin/env bash
# Make STILTS (for `stilts taplint`, the IVOA TAP validator the tests run) available.
#
# Idempotent: nothing to do when `stilts` is on PATH. Otherwise install the Debian package
# `stilts` (apt-get update once, then a quiet noninteractive install) when apt-get and root
# (or sudo) are there. Still missing: CI=true -> exit 1; otherwise a note and exit 0 (the
# taplint tests then skip, saying why).
set -euo pipefail

say() { echo "setup-stilts: $*"; }
ci() { [[ "${CI:-}" =~ ^([Tt]rue|TRUE|1|yes)$ ]]; }
as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"; else sudo -n "$@"; fi
}

if command -v stilts >/dev/null; then
    exit 0
fi
if command -v apt-get >/dev/null && { [[ $EUID -eq 0 ]] || sudo -n true 2>/dev/null; }; then
    say "installing the Debian package stilts"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stilts >/dev/null
fi
if command -v stilts >/dev/null; then
    exit 0
fi
if ci; then
    say "ERROR: stilts is not installed and could not be (CI=true: taplint is required)" >&2
    exit 1
fi
say "NOTE: stilts is not installed; the taplint tests will be skipped"
