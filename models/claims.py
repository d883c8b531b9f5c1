"""Claim extraction from news items and statement splitting of official releases."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .facts import extract_facts
from .text import split_sentences

__all__ = ["Span", "extract_claims", "split_statements"]


@dataclass(frozen=True)
class Span:
    """A piece of text with offsets into its source (``"title"`` or ``"body"``)."""

    text: str
    start: int
    end: int
    source: str


_ACTION_VERBS = re.compile(
    r"(?<!\w)(said|says|say|told|announced|announces|reported|reports|confirmed|confirms|claimed|claims|"
    r"stated|states|denied|denies|deny|arrested|arrests|investigated|investigates|charged|killed|"
    r"launched|approved|rejected|signed|ordered|banned|found|revealed|warned|admitted|accused|"
    r"extradited|seized|detained|fined|sentenced|ruled|decided|cho biết|cho hay|khẳng định|thông báo|"
    r"công bố|tuyên bố|bác bỏ|phủ nhận|bắt giữ|bắt|điều tra|khởi tố|xử lý|phát hiện|triệt phá|dẫn độ|"
    r"xác nhận|ban hành|phê duyệt|yêu cầu)(?!\w)",
    re.IGNORECASE | re.UNICODE,
)
_CHECKABLE = {"quantity", "percent", "money", "date", "year"}


def _check_worthy(sentence: str) -> bool:
    facts = extract_facts(sentence)
    if any(f.kind in _CHECKABLE for f in facts):
        return True
    has_actor = any(f.kind == "entity" for f in facts)
    return has_actor and bool(_ACTION_VERBS.search(sentence))


def extract_claims(title: str, body: str) -> list[Span]:
    """Headline (if any) plus the check-worthy sentences of ``body``.

    A sentence is check-worthy when it carries a figure or a date, or a named actor with a
    saying/doing verb. Offsets index into ``title`` (source "title") or ``body`` (source "body").
    """
    out: list[Span] = []
    if title and title.strip():
        s = len(title) - len(title.lstrip())
        e = len(title.rstrip())
        out.append(Span(title[s:e], s, e, "title"))
    seen = {out[0].text.casefold()} if out else set()
    for s, e in split_sentences(body or ""):
        sent = body[s:e]
        if sent.casefold() in seen or len(sent) < 15:
            continue
        if _check_worthy(sent):
            seen.add(sent.casefold())
            out.append(Span(sent, s, e, "body"))
    return out


def split_statements(text: str) -> list[Span]:
    """Sentences of an official release as :class:`Span` objects with source ``"body"``."""
    return [Span(text[s:e], s, e, "body") for s, e in split_sentences(text or "")]
