"""Reversed facts ("rose" where the release says "fell"), in English and Vietnamese, with exact spans."""
from __future__ import annotations

import random

from models.model import explain
from models.reversals import reversals
from models.synthetic import perturb_sentences


def _span(text: str, span: tuple[int, int]) -> str:
    return text[span[0]:span[1]]


def test_direction_reversed_in_english_with_offsets() -> None:
    claim = "Cyber crime in the province rose 5% in 2019"
    release = "In 2019, cyber crime in the province fell by 5 percent."
    [rv] = reversals(claim, release)
    assert (rv.claim_word, rv.statement_word) == ("rose", "fell") and rv.factual
    assert _span(claim, rv.claim_span) == "rose" and _span(release, rv.statement_span) == "fell"


def test_outcome_reversed_in_vietnamese_with_offsets() -> None:
    claim = "Công an đã thả 121 đối tượng"
    release = "Năm 2019, Cục đã bắt giữ 121 đối tượng."
    [rv] = reversals(claim, release)
    assert _span(claim, rv.claim_span) == "thả" and _span(release, rv.statement_span) == "bắt giữ"
    assert rv.factual
    [rv] = reversals("Số vụ án tăng 10%", "Số vụ án giảm 10% so với năm trước")
    assert (rv.claim_word, rv.statement_word) == ("tăng", "giảm")


def test_no_reversal_when_both_sides_use_the_word_or_neither_has_an_opposite() -> None:
    assert reversals("Arrests rose and fell during the year", "Arrests rose in spring and fell in autumn") == []
    assert reversals("The department investigated 27 cases", "The department investigated 27 cases.") == []
    assert reversals("", "Crime fell.") == []


def test_descriptive_opposites_count_but_are_not_fact_reversals() -> None:
    [rv] = reversals("A woman is standing in the room", "A woman is sitting in the room")
    assert not rv.factual


def test_explain_names_a_fact_reversal_as_a_reason_with_spans() -> None:
    claim = "Police released 27 suspects in 2019"
    release = "In 2019, the police arrested 27 suspects."
    reasons = [r for r in explain(claim, release, "contradicts") if r.kind == "reversal"]
    assert len(reasons) == 1
    r = reasons[0]
    assert r.text == 'release says "arrested", claim says "released"'
    assert _span(claim, r.claim_span) == "released" and _span(release, r.statement_span) == "arrested"
    # a descriptive opposite is not offered to staff as evidence
    assert not [r for r in explain("A man is standing", "A man is sitting", "contradicts") if r.kind == "reversal"]


def test_synthetic_pairs_include_fact_reversals_labelled_contradicts() -> None:
    sents = ["Crime in the province rose 5% in 2019, police said.", "The court released 12 suspects in 2020."] * 20
    pairs = perturb_sentences(sents, ["An unrelated sentence about football."], random.Random(0))
    reversed_pairs = [(c, s) for c, s, lbl in pairs if lbl == "contradicts" and reversals(c, s)]
    assert reversed_pairs
    assert all(any(r.factual for r in reversals(c, s)) for c, s in reversed_pairs)
