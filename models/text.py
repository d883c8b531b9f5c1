"""Unicode-correct text utilities for English and Vietnamese.

Everything here is pure stdlib. Offsets returned by :func:`split_sentences`
are offsets into the string passed in (no normalisation is applied to it), so
callers that need offsets should normalise first with :func:`normalize`.
"""
from __future__ import annotations

import re
import unicodedata

__all__ = [
    "normalize",
    "split_sentences",
    "tokenize",
    "is_vietnamese",
    "sentence_texts",
]

_WS_RE = re.compile(r"\s+", re.UNICODE)
_TOKEN_RE = re.compile(r"\w+", re.UNICODE)

# Letters that only occur in Vietnamese (besides tone-marked vowels).
_VI_CHARS = set("ăâđêôơưĂÂĐÊÔƠƯ")
_VI_TONE_MARKS = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}

# Abbreviations whose trailing period does not end a sentence.
_ABBREV = {
    "dr", "mr", "mrs", "ms", "prof", "sr", "jr", "st", "gen", "col", "lt", "sgt", "capt",
    "gov", "sen", "rep", "rev", "hon", "pres", "inc", "ltd", "co", "corp", "no", "vs", "etc",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "e.g", "i.e", "approx", "dept", "est", "fig", "mt", "ft", "op", "vol", "p", "pp",
    "tp", "ths", "ts", "pgs", "gs", "th.s", "ths", "ông", "bà",
}

_SENT_END_RE = re.compile(r"[.!?…]+[\"'”’)\]]*|[。！？]", re.UNICODE)


def normalize(text: str) -> str:
    """NFC-normalise ``text`` and collapse runs of whitespace to one space (stripped)."""
    if not text:
        return ""
    return _WS_RE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def tokenize(text: str) -> list[str]:
    """Lower-cased ``\\w+`` tokens of the NFC form of ``text`` (diacritics kept)."""
    return _TOKEN_RE.findall(unicodedata.normalize("NFC", text).lower())


def is_vietnamese(text: str) -> bool:
    """Heuristic: does ``text`` look Vietnamese (Vietnamese-only letters or tone marks)?"""
    if not text:
        return False
    hits = 0
    for ch in text:
        if ch in _VI_CHARS:
            hits += 1
            continue
        if ord(ch) > 127 and ch.isalpha():
            decomp = unicodedata.normalize("NFD", ch)
            if any(m in _VI_TONE_MARKS for m in decomp[1:]) or "\u031b" in decomp or "\u0306" in decomp:
                hits += 1
        if hits >= 2:
            return True
    return hits >= 1 and len(text) < 40


def _is_break(text: str, m: re.Match[str]) -> bool:
    end_punct = m.group(0)
    start, end = m.start(), m.end()
    if end_punct[0] in "。！？":
        return True
    # Must be followed by whitespace (or end of text).
    if end < len(text) and not text[end].isspace():
        return False
    if end_punct[0] != ".":
        return True
    if len(end_punct) > 1 and end_punct.startswith(".."):
        return True  # ellipsis
    # Word before the period.
    j = start
    while j > 0 and (text[j - 1].isalnum() or text[j - 1] == "."):
        j -= 1
    word = text[j:start]
    low = word.lower()
    if low in _ABBREV or low.rstrip(".") in _ABBREV:
        return False
    # Initials / dotted acronyms: "U.S", "J", "T.P".
    if re.fullmatch(r"(?:\w\.)*\w", word, re.UNICODE) and "." in word:
        # "U.S." at the end of a sentence followed by a capitalised word is ambiguous;
        # keep it joined unless the next token starts a typical sentence opener.
        nxt = text[end:].lstrip()[:12]
        return bool(re.match(r"(The|In|On|At|A|An|It|He|She|They|We|This|That|But|And)\b", nxt))
    if len(word) == 1 and word.isalpha() and word.isupper():
        return False  # middle initial "John F. Kennedy"
    # Next visible char: lower-case start means no break (e.g. "approx. five").
    rest = text[end:].lstrip()
    if rest and rest[0].islower():
        return False
    return True


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the sentences in ``text``.

    Works for English and Vietnamese. Does not split inside numbers
    ("1.234", "2,5"), after common abbreviations ("Dr.", "Mr.") or inside
    dotted acronyms ("U.S."). Paragraph breaks (blank lines / newlines) also
    end a sentence. Spans exclude surrounding whitespace.
    """
    spans: list[tuple[int, int]] = []
    if not text:
        return spans
    # First split on line breaks (headlines, paragraphs), then on punctuation.
    for para in re.finditer(r"[^\n\r]+", text):
        p_start = para.start()
        ptext = para.group(0)
        last = 0
        for m in _SENT_END_RE.finditer(ptext):
            if _is_break(ptext, m):
                _add_span(spans, text, p_start + last, p_start + m.end())
                last = m.end()
        _add_span(spans, text, p_start + last, p_start + len(ptext))
    return spans


def _add_span(spans: list[tuple[int, int]], text: str, s: int, e: int) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if e > s and any(ch.isalnum() for ch in text[s:e]):
        spans.append((s, e))


def sentence_texts(text: str) -> list[str]:
    """The sentences of ``text`` as strings (convenience wrapper)."""
    return [text[s:e] for s, e in split_sentences(text)]
