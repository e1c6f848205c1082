#!/usr/bin/env bash
# Install what tests/test_web_browser.py needs: Debian's chromium and Playwright's Python package.
# Playwright's own browser download (`playwright install`) is NOT used; the test launches
# /usr/bin/chromium through executable_path. Prints how long it took.
# Usage: scripts/install_browser.sh            (uses .venv/bin/python, or $PYTHON)
set -euo pipefail
start=$(date +%s)
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
fi
if ! "$PY" -c "import playwright" >/dev/null 2>&1; then
  "$PY" -m pip install -q playwright
fi

echo "chromium:   $(chromium --version 2>/dev/null || echo missing)"
echo "playwright: $("$PY" -c 'import importlib.metadata as m; print(m.version("playwright"))')"
echo "install_browser.sh: took $(( $(date +%s) - start )) s"
