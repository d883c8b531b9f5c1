"""Behaviour of the committed stance artifact (models/artifacts/stance.skops)."""
from pathlib import Path

import numpy as np
import pytest

from models import LABELS, load_model, save_model
from models.model import DEFAULT_MODEL_PATH

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(),
                                reason="committed artifact models/artifacts/stance.skops is missing")

RELEASE = [
    "In 2019, the Department of Cyber Security and Hi-tech Crime Prevention investigated 27 specialized "
    "criminal cases and arrested 121 suspects.",
    "The department also extradited 555 foreign criminals to their home countries.",
    "The department cooperated with police forces of 20 countries to exchange information on cybercrime.",
    "It also warned the public about online fraud schemes targeting bank customers.",
]
VI_STATEMENT = ("Năm 2019, Cục An ninh mạng và phòng, chống tội phạm sử dụng công nghệ cao đã điều tra 27 vụ án "
                "chuyên đề, bắt giữ 121 đối tượng.")


@pytest.fixture(scope="module")
def model():
    return load_model()


def _sub(text, span):
    return text[span[0]:span[1]]


def test_card(model):
    assert model.card["labels"] == list(LABELS)
    assert "fnc1_hold_out" in model.card["metrics"]
    assert model.version
    assert model.card["artifact"]["bytes"] == DEFAULT_MODEL_PATH.stat().st_size < 20 * 2**20
    assert model.card["training_time_seconds"]["total"] > 0
    assert model.card["calibration"]["flag_threshold"] == 0.5
    assert "contradicts_at_0.5" in model.card["metrics"]["fnc1_hold_out"]


def test_changed_figure_contradicts(model):
    claim = "Cyber police investigated 72 specialized criminal cases in 2019"
    top = model.check([claim], RELEASE, top_k=3)[0][0]
    assert top.statement_index == 0
    assert top.label == "contradicts"
    figs = [r for r in top.reasons if r.kind == "figure"]
    assert figs and "27" in figs[0].text and "72" in figs[0].text
    assert _sub(claim, figs[0].claim_span) == "72"
    assert _sub(RELEASE[0], figs[0].statement_span) == "27"
    assert figs[0].text == "release says 27 specialized criminal cases, claim says 72 specialized criminal cases"


def test_faithful_claim_supports(model):
    claim = ("The ministry's cyber security department investigated 27 specialized criminal cases last year, "
             "arresting 121 suspects")
    top = model.check([claim], RELEASE)[0][0]
    assert top.label != "contradicts"
    assert top.label == "supports"


def test_denial_contradicts(model):
    claim = "Police deny extraditing 555 foreign criminals"
    top = model.check([claim], RELEASE)[0][0]
    assert top.statement_index == 1
    assert top.label == "contradicts"
    den = [r for r in top.reasons if r.kind in ("denial", "negation")]
    assert den and _sub(claim, den[0].claim_span) == "deny"
    assert not den[0].text.startswith(den[0].kind)


@pytest.mark.parametrize("claim", [
    "Police deny extraditing 555 foreign criminals last year",
    "Police did not extradite 555 foreign criminals last year",
    "Ministry denies it extradited 555 foreign criminals in 2019",
])
def test_denial_or_negation_with_a_time_phrase_still_contradicts(model, claim):
    """A time phrase ("last year") must not tip a denial towards 'supports' (it once did: the synthetic
    supporting claims carried it and the contradicting ones did not)."""
    stmt = ("Working with foreign police forces, the department extradited 555 foreign criminals to their home "
            "countries.")
    p = dict(zip(LABELS, model.predict_proba_pairs([(claim, stmt)])[0]))
    assert p["contradicts"] >= 0.5, p
    faithful = dict(zip(LABELS, model.predict_proba_pairs([(
        "Police extradited 555 foreign criminals last year", stmt)])[0]))
    assert faithful["supports"] > 0.5, faithful


@pytest.mark.parametrize("claim, statement, words", [
    ("Cyber crime in the province rose 5% in 2019", "In 2019, cyber crime in the province fell by 5 percent.",
     ("rose", "fell")),
    ("Police released 121 suspects in 2019", "In 2019, the department arrested 121 suspects.", ("released", "arrested")),
    ("Số vụ lừa đảo qua mạng tăng 10% trong năm 2019", "Năm 2019, số vụ lừa đảo qua mạng giảm 10% so với năm 2018.",
     ("tăng", "giảm")),
])
def test_reversed_fact_contradicts_with_a_reversal_reason(model, claim, statement, words):
    top = model.check([claim], [statement])[0][0]
    assert top.label == "contradicts" and top.score >= 0.5, top
    rev = next(r for r in top.reasons if r.kind == "reversal")
    assert (_sub(claim, rev.claim_span), _sub(statement, rev.statement_span)) == words


def test_claim_with_context_clauses_contradicts(model):
    # the claim adds an attribution and a venue; still the same counted noun with another number
    claim = ("The ministry's cyber security department investigated 72 specialized criminal cases in 2019, "
             "according to figures presented at a year-end conference in Hanoi.")
    stmt = ("In 2019, the department investigated 27 specialized criminal cases and arrested 121 suspects "
            "involved in cyber crime.")
    p = dict(zip(LABELS, model.predict_proba_pairs([(claim, stmt)])[0]))
    assert p["contradicts"] >= 0.5, p
    fig = next(r for r in model.check([claim], [stmt])[0][0].reasons if r.kind == "figure")
    assert _sub(claim, fig.claim_span) == "72" and _sub(stmt, fig.statement_span) == "27"


def test_vietnamese_space_compound_is_no_negation_reason(model):
    stmt = "Năm 2019, Cục đã điều tra 27 vụ án chuyên đề, bắt giữ 121 đối tượng phạm tội trên không gian mạng."
    claim = "Năm 2019, lực lượng an ninh mạng bắt giữ 121 đối tượng"
    top = model.check([claim], [stmt])[0][0]
    assert top.label != "contradicts"
    assert not any(r.kind == "negation" for r in top.reasons)


def test_vietnamese_figure_contradicts(model):
    claim = "Cục An ninh mạng điều tra 72 vụ án trong năm 2019"
    top = model.check([claim], [VI_STATEMENT] + RELEASE)[0][0]
    assert top.statement_index == 0 and top.label == "contradicts"
    fig = next(r for r in top.reasons if r.kind == "figure")
    assert _sub(claim, fig.claim_span) == "72" and _sub(VI_STATEMENT, fig.statement_span) == "27"
    assert "vụ" in fig.text and not fig.text.startswith("figure")


def test_unrelated_claim(model):
    top = model.check(["The football team won the league on Sunday"], RELEASE)[0][0]
    assert top.label == "unrelated" or top.probabilities["contradicts"] < 0.2


def test_check_shapes_and_probabilities(model):
    claims = ["Cyber police investigated 72 cases", "Police deny extraditing 555 foreign criminals"]
    res = model.check(claims, RELEASE[:2], top_k=5)
    assert len(res) == 2 and all(len(r) == 2 for r in res)
    for row in res:
        assert [j.relevance for j in row] == sorted((j.relevance for j in row), reverse=True)
        for j in row:
            assert abs(sum(j.probabilities.values()) - 1) < 1e-6
            assert j.score == pytest.approx(j.probabilities[j.label])
            if j.label == "contradicts":
                assert j.reasons
    p = model.predict_proba_pairs([(claims[0], RELEASE[0])])
    assert p.shape == (1, 4)
    assert model.check([], RELEASE) == [] and model.check(claims, []) == [[], []]


def test_round_trip(model, tmp_path):
    pairs = [("Cyber police investigated 72 cases", RELEASE[0]), ("Trời mưa", VI_STATEMENT)]
    path = tmp_path / "m.skops"
    save_model(model, path)
    again = load_model(path)
    assert (tmp_path / "m.card.json").is_file()
    np.testing.assert_array_equal(model.predict_proba_pairs(pairs), again.predict_proba_pairs(pairs))


def test_untrusted_and_missing(tmp_path):
    import skops.io as sio

    class Evil:  # local type: never in the trusted list
        pass

    bad = tmp_path / "bad.skops"
    sio.dump({"x": Evil()}, bad)
    with pytest.raises(ValueError, match="untrusted"):
        load_model(bad)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.skops")
    junk = tmp_path / "junk.skops"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError):
        load_model(junk)


