#!/bin/sh
# Install Pinyin IME for this user, without root:
#   the app         $PREFIX/opt/pinyin-ime/            (PREFIX defaults to ~/.local)
#   commands        $PREFIX/bin/pinyin-ime-app, $PREFIX/bin/pinyin-ime   (symlinks)
#   menu entry      $PREFIX/share/applications/pinyin-ime.desktop
#   icon            $PREFIX/share/icons/hicolor/256x256/apps/pinyin-ime.png
# Run it again to upgrade; $PREFIX/opt/pinyin-ime/uninstall.sh removes it all. Your data (typing history,
# learned phrases, models you trained) lives elsewhere (~/.local/share/pinyin-ime) and is never touched.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=${PREFIX:-$HOME/.local}
OPT=$PREFIX/opt/pinyin-ime
BIN=$PREFIX/bin
APPS=$PREFIX/share/applications
ICONS=$PREFIX/share/icons/hicolor/256x256/apps

[ -x "$HERE/pinyin-ime/pinyin-ime-app" ] || { echo "install.sh: $HERE/pinyin-ime/ is missing: unpack the whole archive first" >&2; exit 1; }

echo "installing into $OPT"
mkdir -p "$PREFIX/opt" "$BIN" "$APPS" "$ICONS"
rm -rf "$OPT.new"
cp -R "$HERE/pinyin-ime" "$OPT.new"
cp "$HERE/uninstall.sh" "$OPT.new/uninstall.sh"
chmod +x "$OPT.new/uninstall.sh"
rm -rf "$OPT.old"
[ -e "$OPT" ] && mv "$OPT" "$OPT.old"
mv "$OPT.new" "$OPT"
rm -rf "$OPT.old"

for exe in pinyin-ime-app pinyin-ime; do
    ln -sf "$OPT/$exe" "$BIN/$exe"
done
sed "s|@OPT@|$OPT|g" "$HERE/pinyin-ime.desktop.in" > "$APPS/pinyin-ime.desktop"
cp "$HERE/pinyin-ime.png" "$ICONS/pinyin-ime.png"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$APPS" 2>/dev/null || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$PREFIX/share/icons/hicolor" 2>/dev/null || true

echo "installed: $BIN/pinyin-ime-app (the app), $BIN/pinyin-ime (command line), menu entry \"Pinyin IME\""
case ":$PATH:" in
    *":$BIN:"*) ;;
    *) echo "note: $BIN is not on your PATH; add it, or start the app from the menu or as $OPT/pinyin-ime-app" ;;
esac

# What the app needs from the system and does not bundle: an X11 (xcb) or Wayland display's libraries, and
# a Chinese font. Say what is missing, with the Debian/Ubuntu package names.
missing=""
if command -v ldd >/dev/null 2>&1; then
    for plugin in "$OPT"/_internal/PySide6/Qt/plugins/platforms/libqxcb.so "$OPT"/_internal/PySide6/Qt/lib/libQt6XcbQpa.so.6; do
        [ -f "$plugin" ] || continue
        missing="$missing $(ldd "$plugin" 2>/dev/null | awk '/not found/ {print $1}')"
    done
fi
missing=$(echo $missing | tr ' ' '\n' | sort -u | tr '\n' ' ')
if [ -n "${missing% }" ]; then
    echo "note: the X11 display plugin needs libraries this system lacks: $missing"
    echo "      Debian/Ubuntu: sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 \\"
    echo "                     libxcb-render-util0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-randr0 libxcb-shape0"
    echo "      (Fedora: xcb-util-cursor xcb-util-wm xcb-util-keysyms xcb-util-image xcb-util-renderutil libxkbcommon-x11)"
fi
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then
    echo "note: no Chinese font found, 汉字 would show as boxes: sudo apt-get install fonts-wqy-microhei (or any CJK font)"
fi
