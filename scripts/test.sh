#!/usr/bin/env bash
# Install everything the tests need (scripts/setup.sh --test: LibreOffice for Word 97/WPS files,
# Chromium for the browser tests, a virtualenv with the test extras pinned to requirements.lock)
# and run the whole test suite. Used by .ci/run and the README.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check audits tests benchmarks jobs
exec .venv/bin/python -m pytest -q "$@"
