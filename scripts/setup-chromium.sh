#!/usr/bin/env bash
# Make Debian's chromium available for the browser tests of the pages (Playwright drives it
# through executable_path; Playwright's own browser download is not used).
#
# Idempotent: nothing to do when /usr/bin/chromium (or FIRSTLIGHT_CHROMIUM) is there.
# Otherwise install the Debian package `chromium` when apt-get and root (or sudo) are there.
# Still missing: CI=true -> exit 1; otherwise a note and exit 0 (the browser tests then skip,
# saying why).
set -euo pipefail

say() { echo "setup-chromium: $*"; }
ci() { [[ "${CI:-}" =~ ^([Tt]rue|TRUE|1|yes)$ ]]; }
as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"; else sudo -n "$@"; fi
}
browser="${FIRSTLIGHT_CHROMIUM:-/usr/bin/chromium}"

if [[ -x "$browser" ]]; then
    exit 0
fi
if command -v apt-get >/dev/null && { [[ $EUID -eq 0 ]] || sudo -n true 2>/dev/null; }; then
    say "installing the Debian package chromium"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [[ -x "$browser" ]]; then
    exit 0
fi
if ci; then
    say "ERROR: chromium is not installed and could not be (CI=true: the browser tests need it)" >&2
    exit 1
fi
say "NOTE: chromium is not installed; the browser tests of the pages will be skipped"
