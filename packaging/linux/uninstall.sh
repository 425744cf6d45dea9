#!/bin/sh
# Remove Pinyin IME installed by install.sh: run $PREFIX/opt/pinyin-ime/uninstall.sh (it finds its PREFIX), or
# this copy from the archive with the PREFIX you installed with (default ~/.local). Your data in
# ~/.local/share/pinyin-ime (history, learned phrases, your models) stays; delete that folder to remove it too.
set -eu
SELF=$(cd "$(dirname "$0")" && pwd)
case "$SELF" in
    */opt/pinyin-ime) PREFIX=${PREFIX:-${SELF%/opt/pinyin-ime}} ;;
    *) PREFIX=${PREFIX:-$HOME/.local} ;;
esac
OPT=$PREFIX/opt/pinyin-ime
for exe in pinyin-ime-app pinyin-ime; do
    link=$PREFIX/bin/$exe
    # only our own symlinks
    if [ -L "$link" ] && [ "$(readlink "$link")" = "$OPT/$exe" ]; then rm -f "$link"; fi
done
rm -f "$PREFIX/share/applications/pinyin-ime.desktop" "$PREFIX/share/icons/hicolor/256x256/apps/pinyin-ime.png"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$PREFIX/share/applications" 2>/dev/null || true
rm -rf "$OPT"
echo "removed Pinyin IME from $PREFIX (your data in ~/.local/share/pinyin-ime is kept)"
