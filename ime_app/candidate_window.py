"""The floating candidate window: a frameless popup under the text cursor with the current page of candidates.

It never takes focus (keys stay in the editor), shows the pinyin being composed on its first line and the
candidates numbered 1–9 on the second with the highlighted one marked, plus ‹ page › arrows. A click on a
candidate picks it, a click on an arrow pages (``picked``/``paged`` signals). ``place`` keeps it on screen:
below the cursor, or above it when there is no room below, and shifted left at the right edge.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

FONT = "WenQuanYi Micro Hei"
GAP = 4  # pixels between the cursor and the window
_CURRENT = "background: #2f6fd6; color: white; border-radius: 3px;"


class _Clickable(QLabel):
    clicked = Signal()

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if event.button() == Qt.LeftButton:
            self.clicked.emit()
            event.accept()


class CandidateWindow(QFrame):
    picked = Signal(int)  # index on the page
    paged = Signal(int)  # -1 previous page, +1 next page

    def __init__(self, parent: QWidget | None = None, font_size: int = 14) -> None:
        super().__init__(parent, Qt.ToolTip | Qt.FramelessWindowHint | Qt.WindowDoesNotAcceptFocus)
        self.setAttribute(Qt.WA_ShowWithoutActivating)
        self.setFrameShape(QFrame.Box)
        self.setObjectName("candidates")
        self.setStyleSheet("#candidates { background: #fdfdfd; border: 1px solid #9a9a9a; }"
                           "QLabel { padding: 1px 5px; color: #202020; }"
                           "QLabel#preedit { color: #505050; }"
                           "QLabel#pager { color: #2f6fd6; }")
        self._font = QFont(FONT, font_size)
        self.preedit = QLabel()
        self.preedit.setObjectName("preedit")
        self.preedit.setFont(QFont(FONT, max(9, font_size - 3)))
        self.row = QHBoxLayout()
        self.row.setContentsMargins(0, 0, 0, 0)
        self.row.setSpacing(2)
        self.labels: list[_Clickable] = []
        self.prev, self.next, self.pager = _Clickable("‹"), _Clickable("›"), QLabel()
        for w in (self.prev, self.next, self.pager):
            w.setObjectName("pager")
            w.setFont(self._font)
        self.prev.clicked.connect(lambda: self.paged.emit(-1))
        self.next.clicked.connect(lambda: self.paged.emit(1))
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 3, 4, 3)
        box.setSpacing(1)
        box.addWidget(self.preedit)
        box.addLayout(self.row)
        self.texts: tuple[str, ...] = ()
        self.highlight = -1

    # -- content -------------------------------------------------------------------------------------------
    def set_candidates(self, preedit: str, texts: tuple[str, ...], highlight: int, page: int, page_count: int) -> None:
        """Show one page. The labels are made once and reused: redrawing costs a few setText calls per key."""
        if self.row.count() == 0:
            for i in range(9):
                label = _Clickable()
                label.setFont(self._font)
                label.setTextFormat(Qt.PlainText)
                label.clicked.connect(lambda i=i: self.picked.emit(i))
                self.row.addWidget(label)
                self.labels.append(label)
            self.row.addStretch(1)
            for w in (self.prev, self.pager, self.next):
                self.row.addWidget(w)
        self.texts, self.highlight = tuple(texts), highlight
        self.preedit.setText(preedit)
        for i, label in enumerate(self.labels):
            shown = i < len(texts)
            if shown:
                label.setText(f"{i + 1}.{texts[i]}")
                current = i == highlight
                if label.property("current") != current:
                    label.setProperty("current", current)
                    label.setStyleSheet(_CURRENT if current else "")
            label.setVisible(shown)
        self.prev.setVisible(page > 0)
        self.next.setVisible(page < page_count - 1)
        self.pager.setText(f"{page + 1}/{page_count}" if page_count > 1 else "")
        self.adjustSize()

    @property
    def shown_labels(self) -> list[QLabel]:
        return [label for label in self.labels if label.isVisibleTo(self)]

    # -- position ------------------------------------------------------------------------------------------
    def place(self, cursor: QRect) -> None:
        """Move next to ``cursor`` (global coordinates), staying inside that screen's available area."""
        self.adjustSize()
        screen = QGuiApplication.screenAt(cursor.center()) or QGuiApplication.primaryScreen()
        area = screen.availableGeometry() if screen is not None else QRect(0, 0, 1 << 16, 1 << 16)
        size = self.sizeHint().expandedTo(self.size())
        x = min(cursor.left(), area.right() - size.width() + 1)
        x = max(area.left(), x)
        y = cursor.bottom() + 1 + GAP
        if y + size.height() > area.bottom() + 1:  # no room below: above the cursor
            y = max(area.top(), cursor.top() - GAP - size.height())
        self.move(QPoint(x, y))
