"""Reversed facts: a claim that uses the opposite word of the statement ("rose" where the release says "fell").

Official figures are often misreported by reversing a direction (increase/decrease, arrested/released,
approved/rejected) rather than by changing a number. Without WordNet (no downloads at run time), a curated list
of English and Vietnamese opposite pairs is matched as whole words; a reversal is a word the claim uses and the
statement does not, whose opposite the statement uses and the claim does not.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Reversal", "reversals", "OPPOSITES", "FACTUAL_OPPOSITES"]

# Each group lists word forms; every form of one side is the opposite of every form of the other side.
_PAIRS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    # direction of a figure
    (("increase", "increased", "increases", "increasing", "rise", "rises", "rose", "risen", "rising", "grew",
      "grow", "grows", "growth", "up", "higher", "more", "gain", "gained", "surge", "surged", "jump", "jumped"),
     ("decrease", "decreased", "decreases", "decreasing", "fall", "falls", "fell", "fallen", "falling", "drop",
      "dropped", "drops", "decline", "declined", "down", "lower", "fewer", "less", "loss", "lost", "plunged")),
    (("most", "highest", "maximum", "largest", "biggest"), ("least", "lowest", "minimum", "smallest", "fewest")),
    (("above", "over", "exceeded", "exceeds"), ("below", "under")),
    # outcome of an action
    (("arrested", "arrest", "detained", "jailed", "convicted", "charged"),
     ("released", "release", "freed", "acquitted", "cleared")),
    (("approved", "approve", "approves", "accepted", "accept", "granted", "grant", "granting", "allowed",
      "allow", "permitted", "passed"),
     ("rejected", "reject", "rejects", "refused", "refuse", "denied", "deny", "denying", "banned", "ban",
      "forbidden", "prohibited", "vetoed")),
    (("confirmed", "confirm", "confirms", "admitted", "admit", "admits"), ("denied", "deny", "denies", "disputed")),
    (("won", "win", "wins", "winning", "victory"), ("lost", "lose", "loses", "losing", "defeat", "defeated")),
    (("opened", "open", "opens", "opening", "started", "start", "began", "begin", "launched"),
     ("closed", "close", "closes", "closing", "shut", "ended", "end", "stopped", "stop", "halted", "suspended")),
    (("success", "successful", "succeeded"), ("failure", "failed", "fail", "unsuccessful")),
    (("legal", "lawful", "valid", "true", "correct", "safe"), ("illegal", "unlawful", "invalid", "false",
                                                                "incorrect", "unsafe", "dangerous")),
)
#: Opposites that describe a scene rather than a reported fact: they count as features but are not shown
#: to staff as a reason on their own.
_DESCRIPTIVE: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("before", "earlier", "previous"), ("after", "later", "next")),
    (("domestic", "local", "national"), ("foreign", "international", "overseas")),
    (("inside", "indoors", "indoor", "in"), ("outside", "outdoors", "outdoor", "out")),
    (("on",), ("off",)),
    (("putting", "put", "wearing"), ("taking", "removing", "removed")),
    (("entering", "entered", "arriving", "arrived"), ("leaving", "left", "departing", "departed")),
    (("alone",), ("together", "with")),
    (("man", "men", "boy", "boys", "male"), ("woman", "women", "girl", "girls", "female", "lady")),
    (("sitting", "sits", "seated"), ("standing", "stands")),
    (("empty",), ("full",)),
    (("all", "every", "everyone", "everybody"), ("none", "nobody", "no one")),
    (("always",), ("never",)),
    (("young", "younger"), ("old", "older", "elderly")),
    (("big", "large", "huge"), ("small", "little", "tiny")),
    (("fast", "quickly", "quick"), ("slow", "slowly")),
)
_PAIRS += (
    # Vietnamese
    (("tăng", "tăng lên", "gia tăng", "nhiều hơn", "cao hơn"), ("giảm", "giảm xuống", "sụt giảm", "ít hơn",
                                                              "thấp hơn")),
    (("bắt giữ", "bắt", "tạm giam", "khởi tố"), ("thả", "trả tự do", "tha bổng", "đình chỉ điều tra")),
    (("đồng ý", "chấp thuận", "phê duyệt", "cho phép", "thông qua"), ("từ chối", "bác bỏ", "cấm", "phản đối")),
    (("xác nhận", "thừa nhận"), ("phủ nhận", "bác bỏ")),
    (("thắng", "chiến thắng"), ("thua", "thất bại")),
    (("mở", "khai trương", "bắt đầu"), ("đóng", "đóng cửa", "kết thúc", "dừng")),
    (("trong nước",), ("nước ngoài", "quốc tế")),
    (("hợp pháp", "đúng"), ("bất hợp pháp", "trái phép", "sai")),
    (("cao nhất", "nhiều nhất", "lớn nhất"), ("thấp nhất", "ít nhất", "nhỏ nhất")),
)


def _opposites(groups: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for a, b in groups:
        for x in a:
            out[x] = out.get(x, frozenset()) | frozenset(b)
        for y in b:
            out[y] = out.get(y, frozenset()) | frozenset(a)
    return out


#: form -> the forms opposite to it (all groups)
OPPOSITES: dict[str, frozenset[str]] = _opposites(_PAIRS + _DESCRIPTIVE)
#: the same for the opposites that reverse a reported fact (direction of a figure, outcome of an action)
FACTUAL_OPPOSITES: dict[str, frozenset[str]] = _opposites(_PAIRS)

_FORMS_RE = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(f) for f in sorted(OPPOSITES, key=len, reverse=True))
                       + r")(?!\w)", re.IGNORECASE | re.UNICODE)


@dataclass(frozen=True)
class Reversal:
    """A word of the claim whose opposite the statement uses, with character offsets in both texts."""

    claim_word: str
    claim_span: tuple[int, int]
    statement_word: str
    statement_span: tuple[int, int]

    @property
    def factual(self) -> bool:
        """Whether the opposites reverse a reported fact (not only a descriptive detail)."""
        return self.statement_word in FACTUAL_OPPOSITES.get(self.claim_word, frozenset())


@lru_cache(maxsize=100_000)
def _forms(text: str) -> tuple[tuple[str, int, int], ...]:
    return tuple((m.group(0).lower(), m.start(), m.end()) for m in _FORMS_RE.finditer(text))


def reversals(claim: str, statement: str) -> list[Reversal]:
    """Opposite words between ``claim`` and ``statement``: each claim-only form whose opposite is statement-only."""
    cf, sf = _forms(claim), _forms(statement)
    if not cf or not sf:
        return []
    c_words = {w for w, _, _ in cf}
    s_words = {w for w, _, _ in sf}
    out: list[Reversal] = []
    seen: set[str] = set()
    for w, a, b in cf:
        if w in s_words or w in seen:
            continue
        for v, x, y in sf:
            if v in OPPOSITES[w] and v not in c_words:
                out.append(Reversal(w, (a, b), v, (x, y)))
                seen.add(w)
                break
    return out
