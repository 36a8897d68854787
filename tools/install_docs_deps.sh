#!/usr/bin/env bash
# pandoc (the local docs render) and chromium (tests/test_docs.py opens the site in it), from Debian's
# apt; quiet, and nothing is done when both are already there. Needs root (or sudo) and apt-get.
set -uo pipefail
missing=()
command -v pandoc >/dev/null 2>&1 || missing+=(pandoc)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else echo "install_docs_deps: need root to install ${missing[*]}" >&2; exit 1; fi
fi
command -v apt-get >/dev/null 2>&1 || { echo "install_docs_deps: no apt-get here; install ${missing[*]} yourself" >&2; exit 1; }
echo "installing ${missing[*]} with apt-get (docs render and its test)" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2; rm -f "$log"
    echo "install_docs_deps: apt-get could not install ${missing[*]}" >&2; exit 1
fi
rm -f "$log"
