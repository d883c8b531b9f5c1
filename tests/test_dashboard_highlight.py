"""The span -> segments helper behind the highlighted claim and statement."""

from __future__ import annotations

import unicodedata

from dashboard.highlight import Segment, segments

VI = "Tỷ lệ lạm phát năm 2023 là 5,2%, cao hơn mục tiêu 4,5%."


def _marked(parts: list[Segment]) -> list[str]:
    return [p.text for p in parts if p.marked]


def _span(text: str, part: str) -> list[int]:
    start = text.index(part)
    return [start, start + len(part)]


def test_vietnamese_spans_split_exactly():
    reasons = [{"kind": "figure", "claim_span": _span(VI, "5,2%")},
               {"kind": "date", "claim_span": _span(VI, "năm 2023")}]
    parts = segments(VI, reasons, "claim_span")
    assert "".join(p.text for p in parts) == VI
    assert _marked(parts) == ["năm 2023", "5,2%"]
    assert parts == [
        Segment("Tỷ lệ lạm phát ", False, None),
        Segment("năm 2023", True, "date"),
        Segment(" là ", False, None),
        Segment("5,2%", True, "figure"),
        Segment(", cao hơn mục tiêu 4,5%.", False, None),
    ]


def test_other_span_key_is_used():
    reasons = [{"kind": "figure", "claim_span": [0, 2], "statement_span": _span(VI, "4,5%")}]
    assert _marked(segments(VI, reasons, "statement_span")) == ["4,5%"]


def test_overlapping_spans_are_merged_with_both_kinds():
    text = "abcdefghij"
    parts = segments(text, [{"kind": "figure", "claim_span": [2, 6]},
                            {"kind": "date", "claim_span": [4, 8]},
                            {"kind": "figure", "claim_span": [3, 5]}], "claim_span")
    assert "".join(p.text for p in parts) == text
    assert [(p.text, p.kind) for p in parts] == [
        ("ab", None), ("cd", "figure"), ("ef", "figure, date"), ("gh", "date"), ("ij", None)]
    assert parts[2].css_kind == "figure"


def test_out_of_range_and_malformed_spans_are_safe():
    text = "Giá xăng tăng 3%"
    reasons = [
        {"kind": "figure", "claim_span": [10, 999]},      # clamped to the end
        {"kind": "figure", "claim_span": [-5, 3]},        # clamped to the start
        {"kind": "x", "claim_span": [8, 2]},              # reversed: ignored
        {"kind": "x", "claim_span": [500, 600]},          # wholly outside: ignored
        {"kind": "x", "claim_span": None},
        {"kind": "x", "claim_span": ["1", "3"]},
        {"kind": "x", "claim_span": [True, 4]},
        {"kind": "x", "claim_span": [1, 2, 3]},
        {"kind": "x"},
        "not a dict",
        None,
    ]
    parts = segments(text, reasons, "claim_span")
    assert "".join(p.text for p in parts) == text
    assert _marked(parts) == ["Giá", "ăng 3%"]


def test_empty_inputs():
    assert segments("", [{"kind": "figure", "claim_span": [0, 3]}], "claim_span") == []
    assert segments("abc", None, "claim_span") == [Segment("abc", False, None)]
    assert segments("abc", [], "statement_span") == [Segment("abc", False, None)]


def test_span_never_cuts_combining_marks():
    text = unicodedata.normalize("NFD", "Lạm phát")  # base letters and combining accents
    parts = segments(text, [{"kind": "figure", "claim_span": [1, 2]}], "claim_span")
    assert "".join(p.text for p in parts) == text
    marked = _marked(parts)[0]
    assert unicodedata.normalize("NFC", marked) == "ạ"
    assert not unicodedata.combining(parts[-1].text[0])


def test_markup_stays_plain_text():
    text = "<b>5%</b>"
    parts = segments(text, [{"kind": "<i>", "claim_span": [3, 5]}], "claim_span")
    assert [p.text for p in parts] == ["<b>", "5%", "</b>"]
    assert all(type(p.text) is str for p in parts)  # never Markup
    assert parts[1].css_kind == "other"
