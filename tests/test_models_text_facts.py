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


def _neg(text):
    return [(f.value, f.start, f.end) for f in extract_facts(text) if f.kind == "negation"]


def test_vietnamese_khong_compounds_are_not_negation():
    for t in ["Bắt giữ 121 đối tượng phạm tội trên không gian mạng.", "Chất lượng không khí ở Hà Nội kém.",
              "Lực lượng Phòng không - Không quân diễn tập.", "Tổng công ty Hàng không Việt Nam tăng chuyến bay.",
              "Máy bay xâm phạm không phận, trạm không lưu báo động.", "Pháo hoa nổ trên không trung."]:
        assert _neg(t) == [], t
    from models.features import cue_hits
    assert cue_hits("phạm tội trên không gian mạng", "refute") == []
    assert cue_hits("phạm tội trên không gian mạng", "negation") == []
    t = "Cục không điều tra vụ án nào trên không gian mạng."
    assert _neg(t) == [("không", 4, 9)] and t[4:9] == "không"
    assert [v for v, *_ in _neg("Họ không hề biết, hàng không đúng giờ")] == ["không hề"]


def test_english_no_as_number_is_not_negation():
    assert _neg("Decree No. 15 and resolution no 7 took effect.") == []
    assert [v for v, *_ in _neg("There were no arrests and No suspects.")] == ["no", "no"]


def test_reason_spans_in_vietnamese_text():
    from models.model import explain
    stmt = "Năm 2019, Cục đã điều tra 27 vụ án chuyên đề, bắt giữ 121 đối tượng phạm tội trên không gian mạng."
    claim = "Bộ Công an bác bỏ thông tin Cục điều tra 72 vụ án trong năm 2018"
    reasons = {r.kind: r for r in explain(claim, stmt, "contradicts")}
    fig, date, den = reasons["figure"], reasons["date"], reasons["denial"]
    assert claim[slice(*fig.claim_span)] == "72" and stmt[slice(*fig.statement_span)] == "27"
    assert fig.text == "release says 27 vụ án, claim says 72 vụ án"
    assert claim[slice(*date.claim_span)] == "2018" and stmt[slice(*date.statement_span)] == "2019"
    assert date.text == "release says 2019, claim says 2018"
    assert claim[slice(*den.claim_span)] == "bác bỏ" and den.statement_span is None
    assert "negation" not in reasons  # "không gian" is not a negation
    for r in reasons.values():
        assert not r.text.startswith(r.kind + ":")
