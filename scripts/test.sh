#!/usr/bin/env bash
# Install everything the tests need (a virtualenv, the package with its test extras, and Debian's
# Chromium for the browser tests) and run the whole test suite. Used by .ci/run and the README.
# Dependencies are pinned to requirements.lock (used as constraints: platform-only packages such as
# Windows' colorama still resolve), so a new release upstream cannot break a run unannounced.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 || ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
  else
    echo "chromium missing and not root: browser tests will be skipped" >&2
  fi
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -c requirements.lock -e '.[test]'
exec .venv/bin/python -m pytest -q "$@"
