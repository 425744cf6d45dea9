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
        # (grep drops pip's harmless warnings about local index folders some machines configure)
        "$VENV/bin/python" -m pip install --quiet -e ".[$extras]" 2>&1 | grep -v "is ignored: it is neither" >&2 || true
        "$VENV/bin/python" -c "import engine, trainer, ime_app, torch, PySide6" \
            || { echo "installation failed: see the pip output above" >&2; exit 1; }
        touch "$stamp"
    fi
}

ensure_cjk_font() {
    # Qt draws 汉字 as boxes without a CJK font. On Debian/Ubuntu install one when we can.
    [ "$(uname)" = Linux ] || return 0
    command -v fc-list >/dev/null && [ -n "$(fc-list :lang=zh 2>/dev/null)" ] && return 0
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "==> installing fonts-wqy-microhei (no Chinese font found)" >&2
        { apt-get install -y -qq fonts-wqy-microhei || { apt-get update -qq && apt-get install -y -qq fonts-wqy-microhei; }; } >/dev/null 2>&1 \
            || echo "warning: could not install fonts-wqy-microhei; 汉字 may show as boxes" >&2
    else
        echo "note: no Chinese font found; install one (e.g. sudo apt-get install fonts-wqy-microhei)" >&2
    fi
}

ensure_qt_libs() {
    # PySide6 bundles Qt but not the X11/xcb/EGL libraries its window plugin loads (a bare Debian 12 has
    # none of them). ime_app.qt_deps asks ldd what is missing; as root with apt it installs it, else it
    # prints the exact command.
    [ "$(uname)" = Linux ] || return 0
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        "$VENV/bin/python" -m ime_app.qt_deps --install || true
    else
        "$VENV/bin/python" -m ime_app.qt_deps || true
    fi
}

ensure_ibus_tools() {
    # The IBus end-to-end tests need ibus-daemon, its GObject binding, an X server and xdotool; without them
    # they are skipped (saying why). As root with apt they are installed, as the font is.
    [ "$(uname)" = Linux ] || return 0
    local need=()
    command -v ibus-daemon >/dev/null || need+=(ibus)
    command -v Xvfb >/dev/null || need+=(xvfb)
    command -v xdotool >/dev/null || need+=(xdotool)
    command -v dbus-daemon >/dev/null || need+=(dbus)
    ls /usr/lib/*/girepository-1.0/IBus-1.0.typelib >/dev/null 2>&1 || need+=(gir1.2-ibus-1.0)
    [ -d /usr/lib/python3/dist-packages/gi ] || need+=(python3-gi)
    [ ${#need[@]} = 0 ] && return 0
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "==> installing ${need[*]} (for the IBus end-to-end tests)" >&2
        { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; }; } >/dev/null 2>&1 \
            || echo "warning: could not install ${need[*]}; the IBus end-to-end tests will be skipped" >&2
    else
        echo "note: the IBus end-to-end tests will be skipped; to run them: sudo apt-get install ${need[*]}" >&2
    fi
}

cmd=${1:-help}
shift || true
case "$cmd" in
    app)
        setup test
        ensure_cjk_font
        ensure_qt_libs
        exec "$VENV/bin/pinyin-ime-app" "$@"
        ;;
    test)
        setup test
        ensure_cjk_font
        ensure_qt_libs
        ensure_ibus_tools
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    *)
        echo "usage: ./dev.sh app [ARGS...] | ./dev.sh test [PYTEST ARGS...]" >&2
        exit 2
        ;;
esac
