"""StatementIndex: the persistent retrieval index behind StanceModel.check and process_new_items."""
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from models import load_model, split_statements
from models.index import StatementIndex
from models.model import DEFAULT_MODEL_PATH
from models.text import normalize

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(),
                                reason="committed artifact models/artifacts/stance.skops is missing")

DEMO = Path(__file__).resolve().parents[1] / "monitor" / "demo"
FNC_LIKE = [
    "Police in Hanoi arrested 121 suspects in a cybercrime crackdown, officials said.",
    "Apple denies reports that it will release a new iPhone next month.",
    "ISIS militants reportedly beheaded a hostage in a video posted online.",
    "A meteorite fell in Nicaragua, creating a crater 12 metres wide, scientists confirmed.",
    "The tech giant said the rumour about the merger is false and there are no plans to buy the company.",
    "Officials said the rumours were unfounded and that no such agreement had been signed.",
    "The department cooperated with police forces of 20 countries to exchange information on cybercrime.",
    "It also warned the public about online fraud schemes targeting bank customers.",
]
CLAIMS = [
    "Cyber police investigated 72 specialized criminal cases in 2019",
    "Police deny extraditing 555 foreign criminals",
    "Apple will release a new iPhone next month, reports say",
    "A crater 12 metres wide was created by a meteorite in Nicaragua",
    "Năm 2019, Cục An ninh mạng đã điều tra 72 vụ án chuyên đề",
    "The football team won the league on Sunday",
    "Police arrested 9,999 suspects in drug cases during 2023.",
]


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def statements():
    out = [s.text for name in ("release_en.md", "release_vi.md")
           for s in split_statements((DEMO / name).read_text(encoding="utf-8"))]
    return out + FNC_LIKE + out[:5]  # duplicated texts too


def exact_top(model, claims, statements, k):
    sims = model.retrieve([normalize(c) for c in claims], [normalize(s) for s in statements])
    return np.argsort(-sims, axis=1, kind="stable")[:, :k], sims


@pytest.mark.parametrize("shortlist", [None, 3, 8])
def test_top_k_equals_the_exact_ranking(model, statements, shortlist):
    assert len(statements) > 20  # more than the shortlists below: the shortlist path is used
    index = model.index(statements)
    cw, cc = model.featurizer.vectorize(CLAIMS)
    top, rel = index.search(cw, cc, 3, shortlist=shortlist)
    exact, sims = exact_top(model, CLAIMS, statements, 3)
    np.testing.assert_array_equal(top, exact)
    np.testing.assert_allclose(rel, np.take_along_axis(sims, exact, axis=1), atol=1e-5)


def test_check_with_an_index_equals_check_with_texts(model, statements):
    index = model.index(statements)
    with_index = model.check(CLAIMS, index, top_k=3)
    with_texts = model.check(CLAIMS, statements, top_k=3)
    exact, _ = exact_top(model, CLAIMS, statements, 3)
    for row_i, row_t, ex in zip(with_index, with_texts, exact):
        assert [j.statement_index for j in row_i] == [j.statement_index for j in row_t] == list(ex)
        for a, b in zip(row_i, row_t):
            assert a.label == b.label and a.reasons == b.reasons
            assert a.score == pytest.approx(b.score)


def test_chunking_gives_the_same_result(model, statements):
    index = model.index(statements)
    cw, cc = model.featurizer.vectorize(CLAIMS)
    one = index.search(cw, cc, 4)
    for chunk in (1, 2, 5):
        top, rel = index.search(cw, cc, 4, chunk=chunk)
        np.testing.assert_array_equal(top, one[0])
        np.testing.assert_allclose(rel, one[1])


def test_empty_inputs(model, statements):
    index = model.index(statements)
    assert model.check([], index) == []
    empty = model.index([])
    assert len(empty) == 0 and model.check(CLAIMS[:2], empty) == [[], []]
    assert model.check(CLAIMS[:2], []) == [[], []]
    top, rel = index.search(sp.csr_matrix((0, index.word.shape[1])), sp.csr_matrix((0, index.char.shape[1])), 3)
    assert top.shape == rel.shape == (0, 3)
    # a claim sharing nothing with any statement still gets its k (exactly ranked) statements
    res = model.check(["zzzz qqqq"], index, top_k=2)
    assert len(res[0]) == 2


def test_vietnamese_claim_finds_the_vietnamese_statement(model, statements):
    index = model.index(statements)
    top = model.check([CLAIMS[4]], index, top_k=1)[0][0]
    assert "2019" in index.texts[top.statement_index]
    assert any(ch in index.texts[top.statement_index] for ch in "ăđơư")


def test_answers_in_positions_of_the_statement_list(model):
    texts = ["The department extradited 555 foreign criminals.", "Unrelated: the weather was fine.",
             "The department extradited 555 foreign criminals.", "Police arrested 121 suspects in 2019."]
    index = model.index(texts)
    assert len(index) == 4 and index.distinct == 3 and index.texts == [normalize(t) for t in texts]
    judged = model.check(["Police deny extraditing 555 foreign criminals"], index, top_k=4)[0]
    positions = [j.statement_index for j in judged]
    assert sorted(positions) == [0, 1, 2, 3]
    assert positions[:2] == [0, 2]  # duplicates score the same: the lower position first
    assert judged[0].relevance == pytest.approx(judged[1].relevance)


def test_index_is_sparse_float32(model, statements):
    index = model.index(statements)
    for m in (index.word, index.char, index.rare_char):
        assert sp.issparse(m) and m.dtype == np.float32
    dense = len(index.texts) * (index.word.shape[1] + index.char.shape[1]) * 4
    assert index.nbytes < dense / 10  # rows of a few hundred non-zeros, not 2 x 2**18 columns


def test_rare_columns_by_slices_equal_the_dense_definition() -> None:
    """The memory-saving slice-wise selection of rare char n-grams (empty rows first, last and between)."""
    import numpy as np
    import scipy.sparse as sp

    from models.index import _rare_columns

    for seed in range(12):
        body = sp.random(120, 40, density=0.2, format="csr", random_state=seed, dtype=np.float32)
        rows = sp.vstack([sp.csr_matrix((2, 40), dtype=np.float32), body[:60], sp.csr_matrix((1, 40), dtype=np.float32),
                          body[60:], sp.csr_matrix((seed % 4, 40), dtype=np.float32)]).tocsr()
        dense = rows.toarray()
        want = dense * ((dense != 0).sum(axis=0) <= 25)
        for step in (7, 64, 1 << 22):
            got = _rare_columns(rows, 25, step=step)
            assert got.format == "csc" and got.dtype == np.float32
            np.testing.assert_array_equal(got.toarray(), want)
    assert _rare_columns(sp.csr_matrix((0, 5), dtype=np.float32), 2).shape == (0, 5)
