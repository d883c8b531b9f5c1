"""Language of a text when its source does not say: a small heuristic, English and Vietnamese.

Vietnamese is written with letters no other common Latin-script language uses together (ă, đ, ơ, ư and the
stacked tone marks); when enough of a text's letters are among them the text is Vietnamese, otherwise it is
taken as English. Shared by the feed parser (items) and the release pipeline (releases).
"""

from __future__ import annotations

import unicodedata

VI_LETTERS = frozenset("ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ")
#: Fewer letters than this and :func:`guess_language` does not guess.
MIN_LETTERS = 12


def detect_language(text: str) -> str:
    """``vi`` when Vietnamese-only letters are frequent enough, else ``en``."""
    return guess_language(text, min_letters=1) or "en"


_ASCII_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def guess_language(text: str, *, min_letters: int = MIN_LETTERS) -> str | None:
    """``vi`` or ``en`` for a text with at least ``min_letters`` letters; None when there is too little."""
    text = text or ""
    if text.isascii():  # no Vietnamese letter possible: count the letters in C, not one by one
        raw = text.encode("ascii")
        return "en" if len(raw) - len(raw.translate(None, _ASCII_LETTERS)) >= min_letters else None
    letters = [c for c in unicodedata.normalize("NFC", text).lower() if c.isalpha()]
    if len(letters) < min_letters:
        return None
    share = sum(c in VI_LETTERS for c in letters) / len(letters)
    return "vi" if share > 0.02 else "en"
