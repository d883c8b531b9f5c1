"""Rule-based fact extraction (figures, dates, negations, entities) for EN and VI.

All offsets are character offsets into the string passed to :func:`extract_facts`.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from .text import is_vietnamese

__all__ = ["Fact", "extract_facts", "parse_number", "unit_key", "cue_regex", "DENIAL_CUES", "NEGATION_CUES"]


@dataclass(frozen=True)
class Fact:
    """One extracted fact.

    ``kind`` is one of "quantity", "percent", "money", "date", "year", "entity", "negation".
    ``value`` is a float for numeric kinds, an ISO-like string for dates, the cue/entity text otherwise.
    ``unit`` is the counted noun (lower-case surface form, e.g. "cases", "vụ", "đối tượng") or currency.
    ``text``/``start``/``end`` cover the whole mention (approximation marker and unit included);
    ``value_span`` covers just the number; ``approx`` is the approximation marker ("hơn", "nearly"...).
    """

    kind: str
    value: float | str | None
    unit: str | None
    text: str
    start: int
    end: int
    approx: str | None = None
    value_span: tuple[int, int] | None = None


# --------------------------------------------------------------------------- lexicons
_EN_STOP = {
    "the", "a", "an", "of", "in", "on", "at", "to", "for", "from", "by", "with", "and", "or", "but",
    "than", "that", "which", "who", "whom", "whose", "was", "were", "is", "are", "be", "been", "has",
    "have", "had", "will", "would", "as", "per", "into", "over", "under", "after", "before", "since",
    "during", "this", "these", "those", "its", "their", "his", "her", "it", "they", "he", "she", "we",
    "across", "about", "around", "between", "among", "more", "less", "last", "next", "each", "every",
    "so", "if", "while", "when", "where", "not", "no", "also", "all", "out", "up", "down", "off",
}
_VI_STOP = {
    "và", "của", "các", "những", "là", "có", "được", "bị", "đã", "đang", "sẽ", "trong", "trên", "với",
    "cho", "từ", "đến", "tại", "theo", "này", "đó", "khi", "thì", "mà", "nhưng", "hay", "hoặc", "người",
    "năm", "tháng", "ngày", "so", "về", "ra", "vào", "lên",
}
# Multi-syllable Vietnamese counted nouns/classifiers (longest first at match time).
_VI_UNITS = [
    "đối tượng", "trường hợp", "quốc gia", "tổ chức", "cơ sở", "bị can", "tài khoản", "trang web",
    "doanh nghiệp", "vụ việc", "vụ án", "tội phạm", "công dân", "người", "vụ", "ca", "lượt", "nước",
    "chiếc", "đơn vị", "hộ", "tỉnh", "thành phố", "tấn", "km", "học sinh", "sinh viên", "bệnh nhân",
]
_VI_UNIT_HEADS = {"vụ án": "vụ", "vụ việc": "vụ"}

_CURRENCY_PREFIX = {"$": "usd", "us$": "usd", "usd": "usd", "€": "eur", "£": "gbp", "vnd": "vnd", "vnđ": "vnd"}
_CURRENCY_WORDS = {
    "dollars": "usd", "dollar": "usd", "usd": "usd", "euros": "eur", "euro": "eur", "eur": "eur",
    "pounds": "gbp", "đồng": "vnd", "vnd": "vnd", "vnđ": "vnd", "dong": "vnd", "yuan": "cny", "yen": "jpy",
}
_SCALES = {
    "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "bn": 1e9, "m": 1e6, "k": 1e3,
    "nghìn": 1e3, "ngàn": 1e3, "triệu": 1e6, "tỷ": 1e9, "tỉ": 1e9, "mn": 1e6,
}
_APPROX = [
    "more than", "less than", "fewer than", "at least", "up to", "as many as", "nearly", "almost",
    "about", "around", "approximately", "roughly", "over", "some", "under", "close to", "estimated",
    "hơn", "trên", "gần", "khoảng", "chừng", "ít nhất", "tới", "dưới", "gần như", "xấp xỉ", "hàng",
]
_APPROX.sort(key=len, reverse=True)

DENIAL_CUES = (
    "deny", "denies", "denied", "denying", "denial", "refute", "refutes", "refuted", "reject",
    "rejects", "rejected", "debunk", "debunked", "false", "fake", "hoax", "untrue", "fabricated",
    "bác bỏ", "phủ nhận", "sai sự thật", "tin giả", "không đúng sự thật", "bịa đặt", "xuyên tạc",
)
NEGATION_CUES = (
    "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "n't", "cannot",
    "không", "chưa", "chẳng", "chả", "đâu có", "không hề", "chưa từng",
)
# "không" is also the Sino-Vietnamese "air/empty" morpheme: "không gian" (space), "không khí" (air), "không quân"
# (air force), "hàng không" (aviation), "phòng không" (air defence)... none of these negate anything.
_VI_KHONG_COMPOUND_NEXT = (
    "gian", "khí", "quân", "phận", "lưu", "trung", "kích", "vận", "tặc", "ảnh", "đoàn", "cảng",
)
_VI_KHONG_COMPOUND_PREV = ("hàng", "phòng", "chân", "hư", "tay", "số")
_KHONG_GUARD_NEXT = r"(?!\s+(?:" + "|".join(_VI_KHONG_COMPOUND_NEXT) + r")(?!\w))"
_KHONG_GUARD_PREV = "".join(r"(?<!" + w + r"\s)" for w in _VI_KHONG_COMPOUND_PREV)
# English "no" as an abbreviation of "number": "No. 5", "no 12", "No.5".
_NO_GUARD_NEXT = r"(?!\.|\s*\d)"


def _cue_alternative(cue: str) -> str:
    pat = re.escape(cue)
    if cue.startswith("không"):
        pat = _KHONG_GUARD_PREV + pat
        if cue == "không":
            pat += _KHONG_GUARD_NEXT
    if cue == "no":
        pat += _NO_GUARD_NEXT
    return pat


def cue_regex(cues: "tuple[str, ...] | list[str]") -> re.Pattern[str]:
    """Case-insensitive regex for whole-word ``cues`` (longest first), with guards against
    non-negating look-alikes: Vietnamese compounds of "không" ("không gian", "hàng không") and
    English "No." / "no 5" (number). ``n't`` matches inside a word ("didn't")."""
    words = sorted({c for c in cues if c != "n't"}, key=len, reverse=True)
    pat = r"(?<!\w)(?:" + "|".join(_cue_alternative(c) for c in words) + r")(?!\w)"
    if "n't" in cues:
        pat += r"|n't(?!\w)"
    return re.compile(pat, re.IGNORECASE | re.UNICODE)


_NEG_RE = cue_regex(DENIAL_CUES + NEGATION_CUES)

_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
    "oct": 10, "nov": 11, "dec": 12,
}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))

_EN_NUMW = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_EN_MULT = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
_VI_DIGIT = {
    "một": 1, "mốt": 1, "hai": 2, "ba": 3, "bốn": 4, "tư": 4, "năm": 5, "lăm": 5, "sáu": 6,
    "bảy": 7, "bẩy": 7, "tám": 8, "chín": 9,
}
_VI_NUMW = set(_VI_DIGIT) | {"mười", "mươi", "trăm", "nghìn", "ngàn", "linh", "lẻ", "triệu", "tỷ"}

_ENTITY_SKIP = {
    "the", "in", "on", "at", "a", "an", "it", "this", "that", "these", "those", "he", "she", "they",
    "we", "i", "but", "and", "or", "if", "when", "after", "before", "as", "according", "however",
    "meanwhile", "also", "there", "his", "her", "their", "our", "its", "for", "by", "from", "with",
    "năm", "theo", "trong", "ngày", "tháng", "sau", "trước", "các", "những", "ông", "bà", "đây",
}
_ENTITY_JOIN = {"of", "and", "for", "the", "de", "và", "&"}

# --------------------------------------------------------------------------- numbers
_NUM = r"\d{1,3}(?:[.,]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?"
_NUM_RE = re.compile(
    r"(?<![\w.,/-])(?P<cur>US\$|\$|€|£|(?:USD|VND|VNĐ)\s?)?(?P<num>" + _NUM + r")(?![\w]|[.,]\d|/\d)"
    r"(?P<pct>\s?%|\s(?:percent|per cent|phần trăm)(?!\w))?"
    r"(?P<scale>\s?(?:thousand|million|billion|trillion|bn|mn|nghìn|ngàn|triệu|tỷ|tỉ)(?!\w)|(?:m|k|bn)(?!\w))?",
    re.UNICODE | re.IGNORECASE,
)
_YEAR_OK = re.compile(r"^(19\d\d|20\d\d|2100)$")


def parse_number(s: str, vietnamese: bool = False) -> float | None:
    """Parse "1,234.5" (EN) / "1.234,5" (VI) / "2,5" / "27" to a float; ``None`` if not a number."""
    s = s.strip()
    if not s or not re.fullmatch(r"[\d.,]+", s) or not s[0].isdigit():
        return None
    has_dot, has_comma = "." in s, "," in s
    try:
        if has_dot and has_comma:
            if s.rfind(",") > s.rfind("."):  # 1.234,5
                return float(s.replace(".", "").replace(",", "."))
            return float(s.replace(",", ""))  # 1,234.5
        if has_comma:
            groups = s.split(",")
            if vietnamese and len(groups) == 2 and not (len(groups[1]) == 3 and len(groups[0]) <= 3 and False):
                return float(s.replace(",", "."))  # VI decimal comma: 2,5
            if all(len(g) == 3 for g in groups[1:]):
                return float(s.replace(",", ""))  # EN thousands
            return float(s.replace(",", "."))
        if has_dot:
            groups = s.split(".")
            if len(groups) > 2 or (vietnamese and len(groups[1]) == 3):
                if all(len(g) == 3 for g in groups[1:]):
                    return float(s.replace(".", ""))  # 1.234.567 / VI 1.234
            return float(s) if len(groups) == 2 else None
        return float(s)
    except ValueError:
        return None


def _approx_before(text: str, pos: int) -> tuple[str | None, int]:
    before = text[max(0, pos - 20):pos]
    low = before.lower()
    for marker in _APPROX:
        if re.search(r"(?<!\w)" + re.escape(marker) + r"\s+$", low):
            idx = low.rfind(marker)
            return marker, pos - (len(before) - idx)
    return None, pos


_WORD_AFTER_RE = re.compile(r"[\s-]*([^\W\d_]+(?:[-'][^\W\d_]+)*)", re.UNICODE)


def _unit_after(text: str, pos: int, vietnamese: bool) -> tuple[str | None, int]:
    """Counted noun following ``pos`` (lower-case) and the end offset of the noun phrase."""
    rest = text[pos:pos + 80]
    low = rest.lower()
    if vietnamese:
        m = re.match(r"\s+", low)
        off = m.end() if m else 0
        for u in sorted(_VI_UNITS, key=len, reverse=True):
            if low.startswith(u, off) and (off + len(u) == len(low) or not low[off + len(u)].isalnum()):
                return _VI_UNIT_HEADS.get(u, u), pos + off + len(u)
        m = re.match(r"\s+([^\W\d_]+)", rest, re.UNICODE)
        if m and m.group(1).lower() not in _VI_STOP and m.group(1)[0].islower():
            return m.group(1).lower(), pos + m.end()
        return None, pos
    words: list[tuple[str, int]] = []
    cur = 0
    while len(words) < 4:
        m = _WORD_AFTER_RE.match(rest, cur)
        if not m or m.start(1) - cur > 2:
            break
        w = m.group(1)
        if w.lower() in _EN_STOP or (w[0].isupper() and words):
            break
        words.append((w.lower(), m.end(1)))
        cur = m.end(1)
    if not words:
        return None, pos
    for w, e in words:
        if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "ous", "is", "us")):
            return w, pos + e
    # Otherwise the head is the last word unless it looks like a verb/participle.
    while len(words) > 1 and words[-1][0].endswith(("ed", "ing", "ly")):
        words.pop()
    return words[-1][0], pos + words[-1][1]


def _parse_en_words(tokens: list[str]) -> float | None:
    total = current = 0
    seen = False
    for t in tokens:
        for part in t.split("-"):
            if part in _EN_NUMW:
                current += _EN_NUMW[part]
                seen = True
            elif part == "hundred":
                current = max(current, 1) * 100
            elif part in _EN_MULT:
                total += max(current, 1) * _EN_MULT[part]
                current = 0
            elif part == "and":
                continue
            else:
                return None
    return float(total + current) if seen else None


def _parse_vi_words(tokens: list[str]) -> float | None:
    total = current = 0
    last = 0
    seen = False
    for t in tokens:
        if t in _VI_DIGIT:
            last = _VI_DIGIT[t]
            current += last
            seen = True
        elif t == "mười":
            current += 10
            last = 0
            seen = True
        elif t == "mươi":
            current = current - last + last * 10
            last = 0
        elif t == "trăm":
            current = current - last + max(last, 1) * 100
            last = 0
        elif t in ("nghìn", "ngàn", "triệu", "tỷ"):
            mult = {"nghìn": 1000, "ngàn": 1000, "triệu": 1_000_000, "tỷ": 1_000_000_000}[t]
            total += max(current, 1) * mult
            current = 0
            last = 0
        elif t in ("linh", "lẻ"):
            continue
        else:
            return None
    return float(total + current) if seen else None


_EN_WORD_RUN = re.compile(
    r"(?<!\w)((?:" + "|".join(_EN_NUMW) + r")(?:-(?:one|two|three|four|five|six|seven|eight|nine))?"
    r"(?:[\s-]+(?:and\s+)?(?:" + "|".join(list(_EN_NUMW) + list(_EN_MULT)) + r")(?:-(?:one|two|three|four|five|six|seven|eight|nine))?)*)(?!\w)",
    re.IGNORECASE | re.UNICODE,
)
_VI_WORD_RUN = re.compile(
    r"(?<!\w)((?:" + "|".join(sorted(_VI_NUMW, key=len, reverse=True)) + r")(?:\s+(?:"
    + "|".join(sorted(_VI_NUMW, key=len, reverse=True)) + r"))*)(?!\w)",
    re.IGNORECASE | re.UNICODE,
)

# --------------------------------------------------------------------------- dates
_DATE_PATTERNS = [
    # ngày 12 tháng 3 năm 2019 / ngày 12/3/2019 / tháng 3/2019 / tháng 3 năm 2019
    re.compile(r"(?:ngày\s+)(?P<d>\d{1,2})\s+tháng\s+(?P<m>\d{1,2})(?:\s+năm\s+(?P<y>\d{4}))?", re.I),
    re.compile(r"(?:ngày\s+)?(?<![\d/])(?P<d>\d{1,2})[/-](?P<m>\d{1,2})[/-](?P<y>\d{4})(?![\d/])", re.I),
    re.compile(r"tháng\s+(?P<m>\d{1,2})(?:/|\s+năm\s+)(?P<y>\d{4})", re.I),
    re.compile(r"ngày\s+(?P<d>\d{1,2})/(?P<m>\d{1,2})(?![\d/])", re.I),
    # 12 March 2019 / March 12, 2019 / March 2019 / March 12
    re.compile(r"(?<!\w)(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+(?P<mn>" + _MONTH_RE + r")\.?,?(?:\s+(?P<y>\d{4}))?(?!\w)", re.I),
    re.compile(r"(?<!\w)(?P<mn>" + _MONTH_RE + r")\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(?P<y>\d{4}))?(?!\w)", re.I),
    re.compile(r"(?<!\w)(?P<mn>" + _MONTH_RE + r")\.?,?\s+(?P<y>\d{4})(?!\w)", re.I),
]


def _date_value(m: re.Match[str], vietnamese: bool) -> str | None:
    g = m.groupdict()
    y = g.get("y")
    if g.get("mn"):
        name = g["mn"].lower().rstrip(".")
        if name == "may" and not (g.get("d") or y):
            return None
        month = _MONTHS.get(name)
        if name in ("mar", "may") and m.group(0)[0].islower() and not y:
            return None
    else:
        month = int(g["m"]) if g.get("m") else None
    d = int(g["d"]) if g.get("d") else None
    if month is not None and d is not None and "/" in m.group(0) and not vietnamese and month <= 12 and d <= 12 and g.get("mn") is None:
        d, month = month, d  # EN numeric m/d/y
    if month is None or not 1 <= month <= 12 or (d is not None and not 1 <= d <= 31):
        return None
    if y and not _YEAR_OK.match(y):
        return None
    return f"{y or '????'}-{month:02d}" + (f"-{d:02d}" if d else "")


# --------------------------------------------------------------------------- main API
def extract_facts(text: str) -> list[Fact]:
    """Extract figures, percentages, money, dates, years, negation cues and entities from ``text``.

    Offsets index into ``text`` as given (pass NFC text for reliable matching).
    """
    return list(_extract_cached(text))


@lru_cache(maxsize=200_000)
def _extract_cached(text: str) -> tuple[Fact, ...]:
    if not text:
        return ()
    vi = is_vietnamese(text)
    facts: list[Fact] = []
    taken = [False] * (len(text) + 1)

    def free(s: int, e: int) -> bool:
        return not any(taken[s:e])

    def take(s: int, e: int) -> None:
        for i in range(s, e):
            taken[i] = True

    # Dates first, so that their numbers are not re-read as quantities.
    for pat in _DATE_PATTERNS:
        for m in pat.finditer(text):
            if not free(m.start(), m.end()):
                continue
            val = _date_value(m, vi)
            if val is None:
                continue
            facts.append(Fact("date", val, None, m.group(0), m.start(), m.end(), None, (m.start(), m.end())))
            take(m.start(), m.end())

    # Numerals.
    for m in _NUM_RE.finditer(text):
        ns, ne = m.span("num")
        if not free(ns, ne):
            continue
        raw = m.group("num")
        val = parse_number(raw, vi)
        if val is None:
            continue
        cur = (m.group("cur") or "").strip().lower()
        scale = (m.group("scale") or "").strip().lower()
        pct = m.group("pct")
        end = m.end()
        unit: str | None = None
        kind = "quantity"
        if scale:
            if scale in ("m", "k") and not cur:
                # "5m" / "5k": only a scale when money; else a unit (metres) -> keep as unit.
                unit = scale
                scale = ""
            else:
                val *= _SCALES.get(scale, 1.0)
        if pct:
            kind, unit = "percent", "%"
        elif cur:
            kind, unit = "money", _CURRENCY_PREFIX.get(cur, cur)
        elif _YEAR_OK.match(raw) and not scale:
            # A bare 4-digit number 1900-2100 is a year unless a counted plural noun follows.
            u, _ = _unit_after(text, end, vi)
            if not u or not (u.endswith("s") and not vi) or re.match(r"\s*[,.;:)]", text[end:end + 2]):
                facts.append(Fact("year", val, None, raw, ns, ne, None, (ns, ne)))
                take(ns, ne)
                continue
        if kind == "quantity" and unit is None:
            unit, uend = _unit_after(text, end, vi)
            if unit in _CURRENCY_WORDS:
                kind, unit = "money", _CURRENCY_WORDS[unit]
                end = uend
            elif unit is not None:
                # "tỷ đồng" style: currency after the scale word
                end = uend
                nxt = re.match(r"\s+(\w+)", text[end:end + 12])
                if vi and nxt and nxt.group(1).lower() in _CURRENCY_WORDS and unit in _SCALES:
                    kind, unit = "money", _CURRENCY_WORDS[nxt.group(1).lower()]
                    end += nxt.end()
        approx, start = _approx_before(text, m.start())
        facts.append(Fact(kind, float(val), unit, text[start:end], start, end, approx, (ns, ne)))
        take(ns, ne)

    # Number words.
    word_re = _VI_WORD_RUN if vi else _EN_WORD_RUN
    for m in word_re.finditer(text):
        if not free(m.start(), m.end()):
            continue
        toks = m.group(1).lower().split()
        if vi:
            if toks[0] in ("lăm", "mốt", "tư", "mươi", "linh", "lẻ"):
                continue
            if len(toks) == 1 and toks[0] in ("một", "năm", "ba", "trăm", "nghìn", "ngàn", "triệu", "tỷ"):
                continue
            if toks[0] == "năm" and re.match(r"\s*\d", text[m.end():m.end() + 3]):
                continue
            val = _parse_vi_words(toks)
        else:
            if len(toks) == 1 and toks[0] in ("one", "zero", "hundred", "thousand", "million", "billion"):
                continue
            if toks[0] in _EN_MULT:
                continue
            val = _parse_en_words(toks)
        if val is None:
            continue
        unit, end = _unit_after(text, m.end(), vi)
        if unit is None:
            end = m.end()
        approx, start = _approx_before(text, m.start())
        facts.append(Fact("quantity", val, unit, text[start:end], start, end, approx, (m.start(), m.end())))
        take(m.start(), m.end())

    # Negation / denial cues.
    for m in _NEG_RE.finditer(text):
        cue = m.group(0).lower()
        facts.append(Fact("negation", cue, None, m.group(0), m.start(), m.end(), None, (m.start(), m.end())))

    date_spans = [(f.start, f.end) for f in facts if f.kind == "date"]
    facts.extend(e for e in _entities(text) if not any(s < e.end and e.start < t for s, t in date_spans))
    facts.sort(key=lambda f: (f.start, f.end))
    return tuple(facts)


_TOK_RE = re.compile(r"[^\W_]+(?:[.'’&-][^\W_]+)*\.?", re.UNICODE)


def _entities(text: str) -> list[Fact]:
    out: list[Fact] = []
    run: list[re.Match[str]] = []
    pending: list[re.Match[str]] = []

    def flush() -> None:
        while run and run[0].group(0).lower().rstrip(".") in _ENTITY_SKIP:
            run.pop(0)
        if run:
            s, e = run[0].start(), run[-1].end()
            if text[e - 1] == "." and not re.search(r"\.\w", run[-1].group(0)):
                e -= 1
            span = text[s:e]
            if any(ch.isalpha() for ch in span) and not span.isdigit():
                out.append(Fact("entity", span, None, span, s, e, None, (s, e)))
        run.clear()
        pending.clear()

    prev_end = 0
    for m in _TOK_RE.finditer(text):
        tok = m.group(0)
        gap = text[prev_end:m.start()]
        prev_end = m.end()
        if run and any(c in gap for c in ",;:()\"“”!?") or (run and "." in gap):
            flush()
        first = tok[0]
        if first.isupper():
            if run and pending:
                run.extend(pending)
            pending.clear()
            run.append(m)
        elif run and tok.lower() in _ENTITY_JOIN and not pending:
            pending.append(m)
        else:
            flush()
    flush()
    return out


def unit_key(unit: str | None) -> str | None:
    """Comparable key of a unit: lower-case, NFC, crude English singularisation."""
    if unit is None:
        return None
    u = unicodedata.normalize("NFC", unit.lower())
    if re.fullmatch(r"[a-z]+", u):
        if u.endswith("ies") and len(u) > 4:
            return u[:-3] + "y"
        if u.endswith(("ses", "xes", "ches", "shes")):
            return u[:-2]
        if u.endswith("s") and not u.endswith("ss") and len(u) > 3:
            return u[:-1]
    return u
