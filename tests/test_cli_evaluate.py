"""`monitor evaluate fnc|pairs` with the bundled model on tiny files, and `monitor models show`."""

from __future__ import annotations

import csv
import functools
import gzip
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import models
from models.evaluation import evaluate_fnc, evaluate_pairs
from models.model import DEFAULT_MODEL_PATH, card_path
from monitor.cli import main

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="the bundled model file is missing")

OFFICIAL = "In 2019, the department investigated 27 specialized criminal cases and arrested 121 suspects."
RAIN = "Heavy rain flooded several streets of the capital on Sunday, the weather office said."
# obvious pairs; the metrics asserted are those of the predictions written, so a retrained model passes too
PAIRS = [
    {"id": "a", "official": OFFICIAL, "label": "contradicts",
     "claim": "In 2019, the department investigated 72 specialized criminal cases and arrested 121 suspects."},
    {"id": "b", "official": OFFICIAL, "label": "supports",
     "claim": "The department investigated 27 specialized criminal cases in 2019 and arrested 121 suspects."},
    {"id": "c", "official": OFFICIAL, "label": "unrelated", "claim": "Apple unveils a new phone with three cameras."},
]
BODIES = [["Body ID", "articleBody"], ["1", OFFICIAL], ["2", RAIN]]
STANCES = [["Headline", "Body ID", "Stance"],
           ["Police investigated 27 specialized criminal cases in 2019", "1", "agree"],
           ["Apple unveils a new phone with three cameras", "1", "unrelated"],
           ["Football club wins the league title after a penalty shootout", "2", "unrelated"],
           ["Smartphone sales fell in the third quarter", "2", "unrelated"]]


@pytest.fixture(scope="module")
def bundled() -> models.StanceModel:
    return models.load_model()


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bundled: models.StanceModel):
    """``monitor ARGS`` in-process, in a fresh data dir; the bundled model is loaded once per module."""
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("MONITOR_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("MONITOR_DATA_DIR", str(tmp_path / "var"))
    real = models.load_model

    @functools.wraps(real)
    def load(path=None):  # type: ignore[no-untyped-def]
        return bundled if path is None else real(path)

    monkeypatch.setattr(models, "load_model", load)

    def invoke(*args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(main, list(args))
        assert result.exit_code == code, (args, result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    return invoke


def _csv(path: Path, rows: list[list[str]]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
        csv.writer(fh).writerows(rows)
    return path


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


METRIC_KEYS = {"relative_score", "fnc_score", "max_score", "accuracy", "macro_f1", "f1", "precision", "recall",
               "confusion", "n", "pairs_per_second"}


def test_pairs_json_metrics_and_predictions(run, tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "pairs.jsonl", PAIRS)
    out = tmp_path / "pred.jsonl"
    result = run("evaluate", "pairs", str(src), "--json", "--predictions", str(out))
    data = json.loads(result.stdout)  # one JSON object on stdout
    assert METRIC_KEYS | {"contradicts_precision", "contradicts_recall", "contradicts_f1"} <= set(data)
    assert set(data["f1"]) == set(data["precision"]) == set(data["recall"]) == set(models.LABELS)
    assert data["n"] == 3 and data["pairs_per_second"] > 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in lines] == ["a", "b", "c"]  # input order, input fields kept
    for row, original in zip(lines, PAIRS):
        assert set(row) == set(original) | {"score"}
        assert (row["official"], row["claim"]) == (original["official"], original["claim"])
        assert row["label"] in models.LABELS and 0.25 < row["score"] <= 1
    # the reported metrics are those of the written predictions against the gold labels
    expected = evaluate_pairs([p["label"] for p in PAIRS], [row["label"] for row in lines])
    assert {k: v for k, v in data.items() if k not in ("pairs_per_second", "predictions")} == expected
    assert data["predictions"] == str(out) and data["max_score"] == 2.25 and data["confusion"]["labels"] == list(models.LABELS)
    assert lines[0]["label"] == "contradicts"  # the changed figure, the product's core case


def test_pairs_table(run, tmp_path: Path) -> None:
    result = run("evaluate", "pairs", str(_jsonl(tmp_path / "pairs.jsonl", PAIRS)))
    assert "FNC-1 score: " in result.stdout and " of 2.25 (" in result.stdout
    assert "contradicts vs the rest: precision " in result.stdout
    assert "confusion matrix (rows: gold, columns: predicted)" in result.stdout
    assert "pairs/s" in result.stderr


def test_pairs_without_labels_write_predictions_only(run, tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "pairs.jsonl", [{k: v for k, v in p.items() if k != "label"} for p in PAIRS])
    refused = run("evaluate", "pairs", str(src), code=1)
    assert "has no labels" in refused.output and "--predictions" in refused.output
    out = tmp_path / "pred.jsonl"
    result = run("evaluate", "pairs", str(src), "--predictions", str(out))
    assert "no labels: wrote 3 predictions to" in result.stdout and "FNC-1 score" not in result.stdout
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["id"] for row in written] == ["a", "b", "c"] and all(row["label"] in models.LABELS for row in written)
    data = json.loads(run("evaluate", "pairs", str(src), "--predictions", str(out), "--json").stdout)
    assert data["labelled"] is False and data["n"] == 3 and "relative_score" not in data


def test_fnc_gzip_json_and_predictions(run, tmp_path: Path) -> None:
    bodies = _csv(tmp_path / "bodies.csv.gz", BODIES)
    stances = _csv(tmp_path / "stances.csv.gz", STANCES)
    out = tmp_path / "pred.csv"
    data = json.loads(run("evaluate", "fnc", "--bodies", str(bodies), "--stances", str(stances), "--json",
                          "--predictions", str(out)).stdout)
    assert METRIC_KEYS <= set(data) and data["n"] == 4
    assert set(data["f1"]) == {"agree", "disagree", "discuss", "unrelated"}
    assert data["confusion"]["labels"] == ["agree", "disagree", "discuss", "unrelated"]
    assert data["max_score"] == 1.0 + 3 * 0.25
    with open(out, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Headline", "Body ID", "Stance"]
    assert [r[:2] for r in rows[1:]] == [r[:2] for r in STANCES[1:]]  # input order, unchanged
    expected = evaluate_fnc([r[2] for r in STANCES[1:]], [r[2] for r in rows[1:]])
    assert {k: v for k, v in data.items() if k not in ("pairs_per_second", "predictions")} == expected


def test_fnc_table_and_unlabelled(run, tmp_path: Path) -> None:
    bodies = _csv(tmp_path / "bodies.csv", BODIES)
    stances = _csv(tmp_path / "stances.csv", STANCES)
    table = run("evaluate", "fnc", "--bodies", str(bodies), "--stances", str(stances)).stdout
    assert " of 1.75 (" in table and "macro-F1" in table and "unrelated" in table
    plain = _csv(tmp_path / "test_stances.csv", [row[:2] for row in STANCES])
    refused = run("evaluate", "fnc", "--bodies", str(bodies), "--stances", str(plain), code=1)
    assert "has no labels" in refused.output
    out = tmp_path / "pred.csv"
    done = run("evaluate", "fnc", "--bodies", str(bodies), "--stances", str(plain), "--predictions", str(out))
    assert "wrote 4 predictions" in done.stdout
    assert out.read_text().splitlines()[0] == "Headline,Body ID,Stance"


def test_bad_input_gives_one_line_errors(run, tmp_path: Path) -> None:
    bodies = _csv(tmp_path / "bodies.csv", BODIES)
    stances = _csv(tmp_path / "stances.csv", STANCES)
    cases = [
        (["fnc", "--bodies", str(tmp_path / "nope.csv"), "--stances", str(stances)], "cannot read"),
        (["fnc", "--bodies", str(bodies), "--stances", str(_csv(tmp_path / "s1.csv", [["Headline", "Stance"],
                                                                                   ["h", "agree"]]))],
         "missing column 'Body ID'"),
        (["fnc", "--bodies", str(bodies), "--stances", str(_csv(tmp_path / "s2.csv", [["Headline", "Body ID"],
                                                                                   ["h", "99"]]))],
         "line 2: Body ID '99' is not in"),
        (["fnc", "--bodies", str(bodies), "--stances", str(_csv(tmp_path / "s3.csv", [
            ["Headline", "Body ID", "Stance"], ["h", "1", "refutes"]]))], "unknown Stance 'refutes'"),
        (["fnc", "--bodies", str(_csv(tmp_path / "empty.csv", [])), "--stances", str(stances)], "is empty"),
        (["pairs", str(tmp_path / "nope.jsonl")], "cannot read"),
        (["pairs", str(_jsonl(tmp_path / "p1.jsonl", [PAIRS[0], {**PAIRS[1], "label": "agree"}]))],
         "line 2: unknown label 'agree'"),
        (["pairs", str(_jsonl(tmp_path / "p2.jsonl", PAIRS[:1])), "--model", str(tmp_path / "missing.skops")],
         "cannot load the classifier"),
    ]
    (tmp_path / "p3.jsonl").write_text(json.dumps(PAIRS[0]) + "\n{oops\n", encoding="utf-8")
    cases.append((["pairs", str(tmp_path / "p3.jsonl")], "line 2: not valid JSON"))
    (tmp_path / "p4.jsonl").write_text("", encoding="utf-8")
    cases.append((["pairs", str(tmp_path / "p4.jsonl")], "is empty"))
    for args, message in cases:
        result = run("evaluate", *args, code=1)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], (args, result.output)
        assert "Traceback" not in result.output


def test_model_option_loads_that_file(run, tmp_path: Path) -> None:
    result = run("evaluate", "pairs", str(_jsonl(tmp_path / "pairs.jsonl", PAIRS[:1])), "--json",
                 "--model", str(DEFAULT_MODEL_PATH))
    assert json.loads(result.stdout)["n"] == 1


def test_models_show_bundled_card(run) -> None:
    card = json.loads(card_path(DEFAULT_MODEL_PATH).read_text(encoding="utf-8"))
    text = run("models", "show").stdout
    assert f"version: {card['version']}" in text and "FNC-1 hold-out" in text and "macro-F1" in text
    assert f"{100 * card['metrics']['fnc1_hold_out']['fnc_relative_score']:.2f}%" in text
    assert "SICK trial" in text and "artifact:" in text and "bundled" in text
    assert json.loads(run("models", "show", "--json").stdout) == card  # the card as is
    assert not Path("var/monitor.sqlite3").exists()  # no database created just to look


def test_models_show_registry_version(run, tmp_path: Path) -> None:
    from monitor.config import load_settings
    from monitor.pipeline.registry import register
    from monitor.runtime import open_runtime
    from monitor.storage.db import migrate, transaction

    settings = load_settings()
    migrate(settings.resolved_database_url)
    model_file = tmp_path / "v2.skops"
    model_file.write_bytes(b"not really a model")
    card = {"name": "stance", "version": "v2", "date": "2026-02-03",
            "metrics": {"fnc1_hold_out": {"fnc_relative_score": 0.7, "macro_f1": 0.5, "n": 10,
                                          "f1": {"contradicts": 0.2}}}}
    runtime = open_runtime(settings)
    with transaction(runtime.factory) as session:
        register(session, version="v2", path=model_file, card=card, metrics={}, status="active", decision="test")
    runtime.close()
    text = run("models", "show", "v2").stdout
    assert "version: v2" in text and "FNC-1 relative score 70.00%" in text and "registry: active" in text
    assert json.loads(run("models", "show", "v2", "--json").stdout) == card
    assert "version: v2" in run("models", "show").stdout  # the registry's active version is the one in service
    missing = run("models", "show", "nope", code=1)
    assert "no model version 'nope'" in missing.output
