#!/usr/bin/env bash
# Install every dependency at the lowest version pyproject.toml allows (its `>=` bounds; what they
# pull in at the newest version that fits) in a fresh virtualenv, and run the whole test suite
# there. A failure means a lower bound in pyproject.toml is a promise the code does not keep.
# Slow (old wheels to fetch, the whole suite to run): not part of scripts/test.sh; run it after
# changing dependencies or their bounds. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${LOWEST_VENV:-.venv-lowest}"
python3 -m venv --clear "$venv"
"$venv/bin/pip" install -q --upgrade pip >/dev/null
python3 - > "$venv/lowest.txt" <<'PY'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
specs = project["dependencies"] + extras["test"]
for spec in specs:
    own = re.fullmatch(re.escape(project["name"]) + r"\[([^\]]*)\]", spec)  # the test extra naming another
    if own:
        specs += [s for extra in own.group(1).split(",") for s in extras[extra.strip()]]
        continue
    name, lowest = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(?:>=|==)\s*([^,;\s]+).*", spec).groups()
    print(f"{name}=={lowest}")
PY
echo "lowest versions: $(tr '\n' ' ' < "$venv/lowest.txt")"
"$venv/bin/pip" install -q -c "$venv/lowest.txt" -e '.[test]'
"$venv/bin/pip" freeze --exclude-editable > "$venv/installed.txt"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
