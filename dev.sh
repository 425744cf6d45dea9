#!/usr/bin/env bash
# One entry point for a fresh machine:
#   ./dev.sh app   - create .venv if needed, install, launch the app
#   ./dev.sh test  - create .venv if needed, install with test extras, run the whole suite
set -euo pipefail
cd "$(dirname "$0")"
VENV=${PINYIN_IME_VENV:-.venv}
PY=${PYTHON:-python3}

setup() {
    local extras=$1
    if [ ! -x "$VENV/bin/python" ]; then
        echo "==> creating $VENV" >&2
        "$PY" -m venv "$VENV"
    fi
    local stamp="$VENV/.installed-$extras"
    # Reinstall only when the project definition changed since the last install.
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        echo "==> installing pinyin-ime[$extras] into $VENV (first run takes a few minutes)" >&2
        "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2 || true
        "$VENV/bin/python" -m pip install --quiet -e ".[$extras]" >&2
        touch "$stamp"
    fi
}

cmd=${1:-help}
shift || true
case "$cmd" in
    app)
        setup test
        exec "$VENV/bin/pinyin-ime-app" "$@"
        ;;
    test)
        setup test
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    *)
        echo "usage: ./dev.sh app [ARGS...] | ./dev.sh test [PYTEST ARGS...]" >&2
        exit 2
        ;;
esac
