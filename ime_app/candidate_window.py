"""The floating candidate window: a frameless popup under the text cursor with the current page of candidates.

It never takes focus (keys stay in the editor), shows the pinyin being composed on its first line and the
candidates numbered 1–9 on the second with the highlighted one marked, plus ‹ page › arrows. A click on a
candidate picks it, a click on an arrow pages (``picked``/``paged`` signals). ``place`` keeps it on screen:
below the cursor, or above it when there is no room below, and shifted left at the right edge. It is never
wider than the screen's available area: candidates that do not fit on one row go on to the next (a long
sentence candidate can fill a row of its own), a candidate or preedit wider than the screen by itself is
elided in the middle (its full text in the tooltip), so every candidate on the page is visible.
``set_vertical(True)`` lays the page out one candidate per row (the pager after the last one);
``set_font_size`` changes the text's size. Both re-lay the page out at once (the user's settings, live).
Predictions after a commit (``predicting``) have no pinyin to show: the first line says 联想 (what Chinese
IMEs call prediction) in a lighter grey, so the list is not mistaken for the candidates of typed keys.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

MAX_WIDTH = 1 << 16  # no screen known yet: no limit

FONT = "WenQuanYi Micro Hei"
GAP = 4  # pixels between the cursor and the window
_CURRENT = "background: #2f6fd6; color: white; border-radius: 3px;"
PREDICTION_LABEL = "联想"  # the first line while the candidates are predictions


class _Clickable(QLabel):
    clicked = Signal()

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if event.button() == Qt.LeftButton:
            self.clicked.emit()
            event.accept()


class CandidateWindow(QFrame):
    picked = Signal(int)  # index on the page
    paged = Signal(int)  # -1 previous page, +1 next page

    def __init__(self, parent: QWidget | None = None, font_size: int = 14, vertical: bool = False) -> None:
        super().__init__(parent, Qt.ToolTip | Qt.FramelessWindowHint | Qt.WindowDoesNotAcceptFocus)
        self.setAttribute(Qt.WA_ShowWithoutActivating)
        self.setFrameShape(QFrame.Box)
        self.setObjectName("candidates")
        self.setStyleSheet("#candidates { background: #fdfdfd; border: 1px solid #9a9a9a; }"
                           "QLabel { padding: 1px 5px; color: #202020; }"
                           "QLabel#preedit { color: #505050; }"
                           "QLabel#preedit[predicting=\"true\"] { color: #9a9a9a; }"
                           "QLabel#pager { color: #2f6fd6; }")
        self.vertical = vertical
        self.preedit = QLabel()
        self.preedit.setObjectName("preedit")
        self.preedit.setTextFormat(Qt.PlainText)
        self.labels: list[_Clickable] = []
        for i in range(9):
            label = _Clickable(self)
            label.setTextFormat(Qt.PlainText)
            label.clicked.connect(lambda i=i: self.picked.emit(i))
            label.hide()
            self.labels.append(label)
        self.prev, self.next, self.pager = _Clickable("‹", self), _Clickable("›", self), QLabel(self)
        for w in (self.prev, self.next, self.pager):
            w.setObjectName("pager")
        self._apply_font(font_size)
        self.prev.clicked.connect(lambda: self.paged.emit(-1))
        self.next.clicked.connect(lambda: self.paged.emit(1))
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 3, 4, 3)
        box.setSpacing(1)
        box.addWidget(self.preedit)
        self.rows_box = QVBoxLayout()
        self.rows_box.setContentsMargins(0, 0, 0, 0)
        self.rows_box.setSpacing(1)
        box.addLayout(self.rows_box)
        self.rows: list[QHBoxLayout] = []
        self._rebuild([], False)
        self._arrangement: tuple | None = ((), False)
        screen = QGuiApplication.primaryScreen()
        self.max_width = screen.availableGeometry().width() if screen is not None else MAX_WIDTH
        self.texts: tuple[str, ...] = ()
        self.preedit_text = ""
        self.highlight = -1
        self.predicting = False

    def _apply_font(self, font_size: int) -> None:
        self.font_size = font_size
        self._font = QFont(FONT, font_size)
        self.preedit.setFont(QFont(FONT, max(9, font_size - 3)))
        for w in (*self.labels, self.prev, self.next, self.pager):
            w.setFont(self._font)

    def set_font_size(self, font_size: int) -> None:
        """The candidates' point size (the pinyin line above them 3 pt smaller, 9 at least)."""
        if font_size != self.font_size:
            self._apply_font(font_size)
            self._arrange()

    def set_vertical(self, vertical: bool) -> None:
        """One candidate per row (True) or as many as fit on a row (False)."""
        if bool(vertical) != self.vertical:
            self.vertical = bool(vertical)
            self._arrange()

    @property
    def row(self) -> QHBoxLayout:
        """The first row of candidates."""
        return self.rows[0]

    # -- content -------------------------------------------------------------------------------------------
    def set_candidates(self, preedit: str, texts: tuple[str, ...], highlight: int, page: int, page_count: int,
                       predicting: bool = False) -> None:
        """Show one page (``predicting``: predictions after a commit, labelled as such). The labels are made
        once and reused: redrawing costs a few setText calls per key (and moving labels between rows only when
        the page's row breaks change)."""
        if bool(predicting) != bool(self.preedit.property("predicting")):
            self.preedit.setProperty("predicting", bool(predicting))
            self.preedit.style().unpolish(self.preedit)
            self.preedit.style().polish(self.preedit)
        self.predicting = bool(predicting)
        preedit = PREDICTION_LABEL if predicting and not preedit else preedit
        self.texts, self.highlight, self.preedit_text = tuple(texts[:len(self.labels)]), highlight, preedit
        for i, label in enumerate(self.labels):
            shown = i < len(self.texts)
            if shown:
                current = i == highlight
                if label.property("current") != current:
                    label.setProperty("current", current)
                    label.setStyleSheet(_CURRENT if current else "")
            label.setVisible(shown)
        self.prev.setVisible(page > 0)
        self.next.setVisible(page < page_count - 1)
        self.pager.setText(f"{page + 1}/{page_count}" if page_count > 1 else "")
        self.pager.setVisible(page_count > 1)  # empty, its padding would still take room
        self._arrange()

    @property
    def shown_labels(self) -> list[QLabel]:
        return [label for label in self.labels if label.isVisibleTo(self)]

    def set_max_width(self, width: int) -> None:
        """The widest the window may be (the screen's available width); re-lays the page out when it changes."""
        width = max(120, int(width))
        if width != self.max_width:
            self.max_width = width
            self._arrange()

    def _arrange(self) -> None:
        """Set the texts, eliding only what cannot fit even on a row of its own, and break the candidates into
        rows no wider than ``max_width`` (the ‹ n/m › pager at the end of the last row)."""
        self.ensurePolished()  # the style sheet's padding counts in the labels' widths
        margins = self.layout().contentsMargins()
        room = max(40, self.max_width - margins.left() - margins.right() - 2 * self.frameWidth())
        self._set_elided(self.preedit, self.preedit_text, self.preedit_text, room, Qt.ElideLeft)
        spacing = 2
        breaks: list[int] = []  # how many candidates on each row
        used = -1
        for i, text in enumerate(self.texts):
            label = self.labels[i]
            width = self._set_elided(label, f"{i + 1}.{text}", text, room, Qt.ElideMiddle)
            if breaks and not self.vertical and used + spacing + width <= room:
                breaks[-1] += 1
                used += spacing + width
            else:
                breaks.append(1)
                used = width
        pager = [w for w in (self.prev, self.pager, self.next) if w.isVisibleTo(self)]
        pager_width = sum(w.sizeHint().width() for w in pager) + spacing * max(0, len(pager) - 1)
        own_row = bool(breaks) and bool(pager) and used + spacing + pager_width > room
        arrangement = (tuple(breaks), own_row)
        if arrangement != self._arrangement:
            self._rebuild(breaks, own_row)
            self._arrangement = arrangement
        self.layout().activate()
        self.resize(self.sizeHint())

    def _set_elided(self, label: QLabel, full: str, tip: str, room: int, mode) -> int:
        """Show ``full`` on ``label``, elided to ``room`` pixels when wider (the whole text in its tooltip);
        returns the label's width."""
        label.setText(full)
        width = label.sizeHint().width()
        if width > room:
            metrics = label.fontMetrics()
            extra = width - metrics.horizontalAdvance(full)
            label.setText(metrics.elidedText(full, mode, max(10, room - extra)))
            width = label.sizeHint().width()
            label.setToolTip(tip)
        elif label.toolTip():
            label.setToolTip("")
        return width

    def _rebuild(self, breaks: list[int], own_row: bool) -> None:
        for row in self.rows:
            while row.count():
                row.takeAt(0)
            self.rows_box.removeItem(row)
            row.deleteLater()
        self.rows = []
        counts = list(breaks or [0]) + ([0] if own_row else [])
        start = 0
        for n in counts:
            row = QHBoxLayout()
            row.setContentsMargins(0, 0, 0, 0)
            row.setSpacing(2)
            for label in self.labels[start:start + n]:
                row.addWidget(label)
            start += n
            self.rows_box.addLayout(row)
            self.rows.append(row)
        last = self.rows[-1]
        for label in self.labels[start:]:  # hidden: they take no room
            last.addWidget(label)
        for row in self.rows:  # the candidates keep their own widths, to the left
            row.addStretch(1)
        for w in (self.prev, self.pager, self.next):
            last.addWidget(w)

    # -- position ------------------------------------------------------------------------------------------
    def place(self, cursor: QRect) -> None:
        """Move next to ``cursor`` (global coordinates), staying inside that screen's available area."""
        screen = QGuiApplication.screenAt(cursor.center()) or QGuiApplication.primaryScreen()
        area = screen.availableGeometry() if screen is not None else QRect(0, 0, MAX_WIDTH, MAX_WIDTH)
        if area.width() != self.max_width:
            self.set_max_width(area.width())
        else:
            self.resize(self.sizeHint())
        size = self.size()
        x = min(cursor.left(), area.right() - size.width() + 1)
        x = max(area.left(), x)
        y = cursor.bottom() + 1 + GAP
        if y + size.height() > area.bottom() + 1:  # no room below: above the cursor
            y = max(area.top(), cursor.top() - GAP - size.height())
        self.move(QPoint(x, y))
