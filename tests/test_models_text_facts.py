"""Unit tests for models.text / models.facts / models.claims (no data, no artifact needed)."""
from models.claims import extract_claims, split_statements
from models.facts import extract_facts, parse_number
from models.text import normalize, split_sentences

DEMO = ("In 2019, the Department of Cyber Security and Hi-tech Crime Prevention investigated 27 specialized "
        "criminal cases and arrested 121 suspects. The department also extradited 555 foreign criminals to "
        "their home countries.")


def _q(text):
    return [f for f in extract_facts(text) if f.kind in ("quantity", "money", "percent")]


def test_normalize_nfc_and_whitespace():
    assert normalize("Vie\u0302\u0323t  Nam\n") == "Việt Nam"


def test_split_sentences_keeps_numbers_and_abbreviations():
    t = "Dr. Smith met U.S. officials on 1.234 issues. Another sentence follows. Câu thứ ba có 2,5 triệu người."
    spans = split_sentences(t)
    assert [t[s:e] for s, e in spans] == [
        "Dr. Smith met U.S. officials on 1.234 issues.", "Another sentence follows.", "Câu thứ ba có 2,5 triệu người."]


def test_quantities_with_units():
    qs = _q(DEMO)
    assert [(f.value, f.unit) for f in qs] == [(27.0, "cases"), (121.0, "suspects"), (555.0, "criminals")]
    f = qs[0]
    assert DEMO[f.value_span[0]:f.value_span[1]] == "27"
    assert f.text == "27 specialized criminal cases"


def test_vietnamese_quantities():
    t = "Năm 2019, Cục đã điều tra 27 vụ án chuyên đề, bắt giữ 121 đối tượng."
    assert [(f.value, f.unit) for f in _q(t)] == [(27.0, "vụ"), (121.0, "đối tượng")]
    assert [f.value for f in extract_facts(t) if f.kind == "year"] == [2019.0]


def test_number_formats():
    assert parse_number("1.234,5", vietnamese=True) == 1234.5
    assert parse_number("1,234.5") == 1234.5
    assert parse_number("2,5", vietnamese=True) == 2.5
    assert _q("Có 1.234,5 tấn hàng hóa bị thu giữ")[0].value == 1234.5
    assert _q("about 2.5 million people")[0].value == 2_500_000
    assert _q("khoảng 2,5 triệu người dân")[0].value == 2_500_000


def test_approximate_markers_and_number_words():
    f = _q("Công an bắt hơn 500 đối tượng")[0]
    assert (f.value, f.unit, f.approx) == (500.0, "đối tượng", "hơn")
    f = _q("Police arrested nearly 600 people")[0]
    assert (f.value, f.approx) == (600.0, "nearly")
    f = _q("They opened twenty-seven cases")[0]
    assert (f.value, f.unit) == (27.0, "cases")
    assert _q("đã điều tra hai mươi bảy vụ án")[0].value == 27.0


def test_percent_dates_negation_entities():
    facts = extract_facts("Prices rose 15% on March 12, 2019, but the Ministry of Finance did not comment.")
    kinds = {f.kind for f in facts}
    assert {"percent", "date", "negation", "entity"} <= kinds
    assert [f.value for f in facts if f.kind == "date"] == ["2019-03-12"]
    assert any(f.value == "Ministry of Finance" for f in facts if f.kind == "entity")
    neg = [f.value for f in extract_facts("Bộ Công an bác bỏ thông tin, chưa có kết luận") if f.kind == "negation"]
    assert neg == ["bác bỏ", "chưa"]


def test_extract_claims_offsets():
    title = "Police arrest 121 suspects"
    body = "Officers were busy. " + DEMO
    spans = extract_claims(title, body)
    assert spans[0].source == "title" and spans[0].text == title
    for s in spans[1:]:
        assert s.source == "body" and body[s.start:s.end] == s.text
    assert any("27 specialized" in s.text for s in spans)
    assert all("Officers were busy" not in s.text for s in spans)
    st = split_statements(DEMO)
    assert len(st) == 2 and DEMO[st[1].start:st[1].end] == st[1].text
