"""IBus key events (X keysyms and modifier masks) → the key names ``engine.ime.session.Session.press`` takes.

The numbers are X11's keysyms and IBus's ``ModifierType`` bits, fixed by the X protocol, so this module needs
no IBus import and the mapping is tested on any machine.
"""

from __future__ import annotations

SHIFT, LOCK, CONTROL, MOD1 = 1 << 0, 1 << 1, 1 << 2, 1 << 3  # MOD1 is Alt
SUPER, HYPER, META, RELEASE = 1 << 26, 1 << 27, 1 << 28, 1 << 30
SHORTCUT_MASK = CONTROL | MOD1 | SUPER | HYPER | META  # with any of these held, the key is the program's

SHIFT_L, SHIFT_R = 0xFFE1, 0xFFE2
SPECIAL = {
    0xFF08: "backspace", 0xFFFF: "delete", 0xFF0D: "enter", 0xFF8D: "enter", 0xFF1B: "escape",
    0xFF50: "home", 0xFF51: "left", 0xFF52: "up", 0xFF53: "right", 0xFF54: "down",
    0xFF55: "pageup", 0xFF56: "pagedown", 0xFF57: "end", 0x20: "space", 0xFF80: "space",
    0xFF09: "tab",
}
# the keypad's digits pick candidates like the main row's
KEYPAD = {0xFFB0 + d: str(d) for d in range(10)}


def key_name(keyval: int, state: int) -> str | None:
    """The session's name for a key press, or None for a key the session never takes (releases, shortcuts,
    function keys, letters outside ASCII). Upper-case letters come back as themselves: the session treats
    them as not its own, so Shift+letter types a Latin capital."""
    if state & RELEASE or state & SHORTCUT_MASK:
        return None
    if keyval in SPECIAL:
        return SPECIAL[keyval]
    if keyval in KEYPAD:
        return KEYPAD[keyval]
    if 0x21 <= keyval <= 0x7E:  # printable ASCII: the keysym is the character
        return chr(keyval)
    return None


class ShiftToggle:
    """Shift pressed and released with no other key in between switches 中/En, as in the major IMEs."""

    def __init__(self) -> None:
        self._armed = False

    def feed(self, keyval: int, state: int) -> bool:
        """Feed every key event; True when this one completes a lone Shift tap."""
        if keyval in (SHIFT_L, SHIFT_R):
            if state & RELEASE:
                fired, self._armed = self._armed, False
                return fired
            self._armed = not state & SHORTCUT_MASK
            return False
        self._armed = False
        return False
