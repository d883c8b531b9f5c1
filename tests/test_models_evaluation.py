"""models.evaluation: FNC-1 scoring and per-class metrics on hand-computed cases, readers and writers."""
from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from models import LABELS
from models.evaluation import (
    FNC_LABELS, MODEL_TO_FNC, EvaluationError, binary_metrics, confusion, evaluate_fnc, evaluate_pairs,
    fnc_score, format_card, format_report, read_fnc, read_pairs, write_fnc_predictions, write_pairs_predictions,
)

# six rows whose metrics are worked out by hand below
GOLD = ["agree", "disagree", "discuss", "unrelated", "unrelated", "agree"]
PRED = ["agree", "discuss", "discuss", "unrelated", "agree", "unrelated"]


def test_fnc_score_by_hand() -> None:
    # agree/agree 1.0, disagree/discuss 0.25, discuss/discuss 1.0, unrelated/unrelated 0.25,
    # unrelated/agree 0, agree/unrelated 0; max 1 + 1 + 1 + 0.25 + 0.25 + 1
    assert fnc_score(GOLD, PRED) == (2.5, 4.5)
    assert fnc_score(["unrelated"], ["unrelated"]) == (0.25, 0.25)
    assert fnc_score(["disagree"], ["agree"]) == (0.25, 1.0)
    assert fnc_score([], []) == (0.0, 0.0)
    with pytest.raises(ValueError, match="unknown labels"):
        fnc_score(["supports"], ["agree"])
    with pytest.raises(ValueError, match="predictions"):
        fnc_score(["agree"], [])


def test_evaluate_fnc_by_hand() -> None:
    m = evaluate_fnc(GOLD, PRED)
    assert m["relative_score"] == round(100 * 2.5 / 4.5, 2) == 55.56
    assert (m["fnc_score"], m["max_score"], m["n"]) == (2.5, 4.5, 6)
    assert m["accuracy"] == 0.5  # rows 1, 3 and 4
    assert m["precision"] == {"agree": 0.5, "disagree": 0.0, "discuss": 0.5, "unrelated": 0.5}
    assert m["recall"] == {"agree": 0.5, "disagree": 0.0, "discuss": 1.0, "unrelated": 0.5}
    assert m["f1"] == {"agree": 0.5, "disagree": 0.0, "discuss": 0.6667, "unrelated": 0.5}
    assert m["macro_f1"] == round((0.5 + 0 + 2 / 3 + 0.5) / 4, 4)
    assert m["confusion"] == {"labels": list(FNC_LABELS),
                              "matrix": [[1, 0, 0, 1], [0, 0, 1, 0], [0, 0, 1, 0], [1, 0, 0, 1]]}
    report = format_report(m)
    assert "2.5 of 4.5 (55.56%)" in report and "rows: gold, columns: predicted" in report


def test_evaluate_pairs_maps_to_fnc_and_scores_contradicts() -> None:
    to_model = {v: k for k, v in MODEL_TO_FNC.items()}
    gold, pred = [to_model[g] for g in GOLD], [to_model[p] for p in PRED]
    m = evaluate_pairs(gold, pred)
    assert (m["fnc_score"], m["max_score"], m["relative_score"]) == (2.5, 4.5, 55.56)
    assert list(m["f1"]) == list(LABELS) and m["f1"]["discusses"] == 0.6667
    assert m["confusion"]["labels"] == list(LABELS)
    # the one gold 'contradicts' is predicted 'discusses' and nothing is predicted 'contradicts'
    assert (m["contradicts_precision"], m["contradicts_recall"], m["contradicts_f1"]) == (0.0, 0.0, 0.0)
    assert "contradicts vs the rest" in format_report(m)


def test_binary_metrics_and_confusion() -> None:
    gold = ["contradicts", "contradicts", "supports", "unrelated"]
    pred = ["contradicts", "supports", "contradicts", "unrelated"]
    assert binary_metrics(gold, pred, "contradicts") == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert confusion(gold, pred, LABELS)["matrix"][0] == [1, 1, 0, 0]


def test_label_mapping_is_the_training_one() -> None:
    from models.training import FNC_MAP

    assert MODEL_TO_FNC == {model: fnc for fnc, model in FNC_MAP.items()}


def _write_csv(path: Path, rows: list[list[str]], gz: bool = False) -> Path:
    opener = gzip.open if gz else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
        csv.writer(fh).writerows(rows)
    return path


def test_read_fnc_plain_and_gzip(tmp_path: Path) -> None:
    bodies = _write_csv(tmp_path / "b.csv.gz", [["Body ID", "articleBody"], ["7", "first, body"], ["8", "two\nlines"]],
                        gz=True)
    stances = _write_csv(tmp_path / "s.csv", [["Headline", "Body ID", "Stance"], ["h1", "8", "agree"],
                                              ["h2", "7", "Unrelated"]])
    data = read_fnc(bodies, stances)
    assert data.labelled
    assert [(r.headline, r.body_id, r.body, r.stance) for r in data.rows] == [
        ("h1", "8", "two\nlines", "agree"), ("h2", "7", "first, body", "unrelated")]
    out = tmp_path / "pred.csv"
    write_fnc_predictions(out, data.rows, ["contradicts", "discusses"])
    assert out.read_text(encoding="utf-8").splitlines() == ["Headline,Body ID,Stance", "h1,8,disagree", "h2,7,discuss"]


@pytest.mark.parametrize("bodies, stances, message", [
    ([["Body ID", "text"], ["1", "x"]], [["Headline", "Body ID"], ["h", "1"]], "missing column 'articleBody'"),
    ([["Body ID", "articleBody"], ["1", "x"]], [["Headline", "Stance"], ["h", "agree"]], "missing column 'Body ID'"),
    ([["Body ID", "articleBody"], ["1", "x"]], [["Headline", "Body ID"], ["h", "1"], ["h", "2"]],
     "line 3: Body ID '2' is not in"),
    ([["Body ID", "articleBody"], ["1", "x"]], [["Headline", "Body ID", "Stance"], ["h", "1", "maybe"]],
     "line 2: unknown Stance 'maybe'"),
    ([["Body ID", "articleBody"], ["1", "x"], ["1", "y"]], [["Headline", "Body ID"], ["h", "1"]], "appears twice"),
    ([["Body ID", "articleBody"], ["1", "x"]], [["Headline", "Body ID"]], "has no rows"),
    ([], [["Headline", "Body ID"], ["h", "1"]], "is empty"),
])
def test_read_fnc_errors(tmp_path: Path, bodies: list, stances: list, message: str) -> None:
    b, s = _write_csv(tmp_path / "b.csv", bodies), _write_csv(tmp_path / "s.csv", stances)
    with pytest.raises(EvaluationError, match=message):
        read_fnc(b, s)


def test_read_fnc_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="cannot read .*nope.csv: No such file"):
        read_fnc(tmp_path / "nope.csv", tmp_path / "s.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("Body ID,articleBody\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(EvaluationError, match="not UTF-8"):
        read_fnc(bad, bad)


def test_read_and_write_pairs(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"official": "o1", "claim": "c1", "label": "supports", "id": 1}\n\n'
                    '{"official": "o2", "claim": "c2", "label": "contradicts", "id": 2}\n', encoding="utf-8")
    data = read_pairs(path)
    assert data.labelled and [(r.line, r.claim, r.label) for r in data.rows] == [(1, "c1", "supports"),
                                                                                 (3, "c2", "contradicts")]
    out = tmp_path / "out.jsonl"
    write_pairs_predictions(out, data.rows, ["unrelated", "contradicts"], [0.5, 0.98765])
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines == [{"official": "o1", "claim": "c1", "label": "unrelated", "score": 0.5, "id": 1},
                     {"official": "o2", "claim": "c2", "label": "contradicts", "score": 0.9877, "id": 2}]
    unlabelled = tmp_path / "u.jsonl.gz"
    with gzip.open(unlabelled, "wt", encoding="utf-8") as fh:
        fh.write('{"official": "o", "claim": "c"}\n')
    assert not read_pairs(unlabelled).labelled


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("\n\n", "has no pairs"),
    ('{"official": "o", "claim": "c"}\n{"official": "o", "claim": \n', "line 2: not valid JSON"),
    ('[1, 2]\n', "line 1: expected a JSON object"),
    ('{"official": "o"}\n', "line 1: 'claim' is missing"),
    ('{"official": 3, "claim": "c"}\n', "line 1: 'official' is not a string"),
    ('{"official": "o", "claim": "c", "label": "agree"}\n', "line 1: unknown label 'agree'"),
    ('{"official": "o", "claim": "c", "label": "supports"}\n{"official": "o", "claim": "c"}\n',
     "line 2 has no label but line 1 has one"),
])
def test_read_pairs_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(EvaluationError, match=message):
        read_pairs(path)


def test_format_card_shows_identity_data_metrics_and_size(tmp_path: Path) -> None:
    card = {"name": "stance", "version": "v-1", "date": "2026-01-02", "seed": 3, "sklearn_version": "1.9.1",
            "python": "3.11.7",
            "data": {"fnc1": {"description": "FNC-1 training split", "sha256": "ab" * 32}, "sick": "SICK train"},
            "metrics": {"fnc1_hold_out": {"fnc_relative_score": 0.8486, "macro_f1": 0.6185, "n": 10,
                                          "f1": {"contradicts": 0.18, "supports": 0.51}},
                        "sick_trial": {"fnc_relative_score": 0.825, "macro_f1": 0.58}},
            "training_time_seconds": {"total": 12.5, "fit": 10.0}}
    model = tmp_path / "m.skops"
    model.write_bytes(b"x" * 2048)
    text = format_card(card, model)
    for expected in ("version: v-1", "date: 2026-01-02", "sha256 " + "ab" * 32, "seed 3",
                     "FNC-1 hold-out: n 10, FNC-1 relative score 84.86%, macro-F1 0.6185",
                     "per-class F1: contradicts 0.18, supports 0.51", "SICK trial", "sklearn 1.9.1", "python 3.11.7",
                     "artifact: m.skops, 0.00 MiB (2048 bytes)", "training time: total 12.5 s, fit 10 s"):
        assert expected in text, (expected, text)
