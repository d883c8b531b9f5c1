"""Split a text into plain and marked segments from the character spans of a match's reasons.

Spans are ``[start, end)`` offsets (Python ``str`` indices, i.e. code points) into the claim or statement
text. Anything malformed is skipped, spans are clamped to the text, overlaps are merged, and a span is
widened so it never cuts a base letter from its combining marks (Vietnamese in NFD form). The result is
plain text pieces: the template renders each with autoescaping and nothing is ever marked safe.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple


class Segment(NamedTuple):
    text: str
    marked: bool
    kind: str | None  # reason kind(s) of a marked segment, e.g. "figure" or "figure, date"

    @property
    def css_kind(self) -> str:
        """A class-name-safe version of the first kind (``other`` when it has none or odd characters)."""
        first = (self.kind or "").split(",")[0].strip().lower()
        return first if re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", first) else "other"


def _span(value: Any, length: int) -> tuple[int, int] | None:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    start, end = value
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        return None
    start, end = max(0, min(start, length)), max(0, min(end, length))
    return (start, end) if start < end else None


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    while start > 0 and unicodedata.combining(text[start]):
        start -= 1
    while end < len(text) and unicodedata.combining(text[end]):
        end += 1
    return start, end


def segments(text: str, reasons: Iterable[Mapping[str, Any]] | None, span_key: str) -> list[Segment]:
    """``text`` cut into segments; ``span_key`` is ``"claim_span"`` or ``"statement_span"``."""
    text = text or ""
    kinds_at: list[list[str]] = [[] for _ in text]
    for reason in reasons or ():
        if not isinstance(reason, Mapping):
            continue
        span = _span(reason.get(span_key), len(text))
        if span is None:
            continue
        start, end = _widen(text, *span)
        kind = str(reason.get("kind") or "reason")
        for i in range(start, end):
            if kind not in kinds_at[i]:
                kinds_at[i].append(kind)

    result: list[Segment] = []
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or kinds_at[i] != kinds_at[start]:
            kinds = kinds_at[start]
            result.append(Segment(text[start:i], bool(kinds), ", ".join(kinds) or None))
            start = i
    return result
