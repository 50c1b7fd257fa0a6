#!/usr/bin/env bash
# Install what the tool needs on a Debian machine and the package itself in .venv:
#   bash scripts/setup.sh          LibreOffice Writer without its GUI (reads Word 97–2003 .doc and
#                                  WPS files), then `pip install .`
#   bash scripts/setup.sh --test   also Chromium and CJK fonts (browser tests), then
#                                  `pip install -e '.[test]'`
# Debian packages are installed when run as root; otherwise the script says which are missing and
# goes on (the tool then reports each .doc/.wps file as unreadable, saying what to install).
set -euo pipefail
cd "$(dirname "$0")/.."
for_tests=false
if [ "${1:-}" = "--test" ]; then for_tests=true; fi

lean=()  # installed without recommended packages (LibreOffice would pull Java and more)
full=()
command -v soffice >/dev/null 2>&1 || lean+=(libreoffice-writer-nogui)
if $for_tests; then
  command -v chromium >/dev/null 2>&1 || full+=(chromium)
  dpkg -s fonts-noto-cjk >/dev/null 2>&1 || full+=(fonts-noto-cjk)
fi
if [ $(( ${#lean[@]} + ${#full[@]} )) -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    export DEBIAN_FRONTEND=noninteractive
    if [ ${#lean[@]} -gt 0 ]; then apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null; fi
    if [ ${#full[@]} -gt 0 ]; then apt-get install -y -qq "${full[@]}" >/dev/null; fi
  else
    if [ ${#lean[@]} -gt 0 ]; then
      echo "LibreOffice missing: .doc and .wps files will be reported as unreadable" \
        "(as root: apt-get install -y --no-install-recommends ${lean[*]})" >&2
    fi
    if [ ${#full[@]} -gt 0 ]; then
      echo "${full[*]} missing: browser tests will be skipped (as root: apt-get install -y ${full[*]})" >&2
    fi
  fi
fi

# Dependencies are pinned to requirements.lock (as constraints: platform-only packages such as
# Windows' colorama still resolve), so a new release upstream cannot break an install unannounced.
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
if $for_tests; then
  .venv/bin/pip install -q -c requirements.lock -e '.[test]'
else
  .venv/bin/pip install -q -c requirements.lock .
fi
