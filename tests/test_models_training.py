"""Training-data plumbing; skipped when /work/shared/data (or $STANCE_DATA) is absent."""
import os
from pathlib import Path

import pytest

DATA = Path(os.environ.get("STANCE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
needs_data = pytest.mark.skipif(not (DATA / "fnc1" / "train_stances.csv.gz").is_file(),
                                reason=f"FNC-1/SICK data not found under {DATA} (set STANCE_DATA)")


def test_fnc_score_definition():
    from models.training import fnc_score
    assert fnc_score(["unrelated", "supports"], ["unrelated", "supports"]) == 1.0
    assert fnc_score(["supports"], ["discusses"]) == 0.25
    assert fnc_score(["unrelated"], ["contradicts"]) == 0.0


@needs_data
def test_fnc_split_counts():
    from models.training import load_fnc, load_sick
    fnc = load_fnc(DATA)
    assert len(fnc["train"]) == 40350 and len(fnc["hold_out"]) == 9622
    assert not fnc["train_ids"] & fnc["hold_out_ids"]
    assert len(load_sick(DATA / "sick" / "SICK_train.txt")) == 4500


def test_synthetic_pairs_change_figures():
    import random
    from models.synthetic import vietnamese_pairs
    pairs = vietnamese_pairs(50, random.Random(0))
    assert {lbl for *_, lbl in pairs} == {"supports", "contradicts", "unrelated"}


def test_synthetic_context_clauses_and_reworded_templates():
    import random
    from models.synthetic import add_context, english_template_pairs, vietnamese_pairs
    rng = random.Random(0)
    pairs = english_template_pairs(300, rng, p_context=0.5)
    text = " ".join(c + " " + s for c, s, _ in pairs).lower()
    assert "extradit" not in text and "foreign criminals" not in text
    labels_with_context = {lbl for c, _, lbl in pairs if "according to" in c.lower() or " said" in c}
    assert {"supports", "contradicts"} <= labels_with_context
    out = add_context("Police arrested 12 suspects in 2019", random.Random(1))
    assert "12 suspects" in out and len(out) > len("Police arrested 12 suspects in 2019")
    vi = vietnamese_pairs(50, random.Random(2), p_context=1.0)
    assert all(c.endswith(".") for c, _, lbl in vi if lbl != "unrelated")


@needs_data
def test_monitor_train_tiny_sample_writes_a_loadable_model_with_its_card(tmp_path):
    """`monitor train --sample` runs the whole training path (progress, stacking, card, skops) in seconds."""
    import json
    import subprocess
    import sys

    from models import LABELS, load_model

    out = tmp_path / "tiny.skops"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MONITOR_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-m", "monitor.cli", "train", "--data", str(DATA), "--out", str(out),
                           "--sample", "60"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for stage in ("data", "features", "word model", "classifier", "evaluate"):
        assert stage in proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["fnc1_hold_out"]["n"] == 60 and 0.0 <= metrics["fnc1_hold_out"]["fnc_relative_score"] <= 1.0
    card = json.loads((tmp_path / "tiny.card.json").read_text(encoding="utf-8"))
    assert card["version"].endswith("-lex-rev-sample60") and card["parameters"]["sample"] == 60
    hashes = card["data"]["files_sha256"]
    assert "fnc1/train_stances.csv.gz" in hashes and all(len(h) == 64 for h in hashes.values())
    assert card["libraries"]["scikit-learn"] and card["artifact"]["bytes"] == out.stat().st_size
    model = load_model(out)
    assert model.version == card["version"]
    p = model.predict_proba_pairs([("Police arrested 72 suspects", "Police arrested 27 suspects."),
                                   ("Cầu thủ ghi bàn", "Bộ Công an bắt 121 đối tượng.")])
    assert p.shape == (2, len(LABELS))
    assert abs(p.sum(axis=1) - 1).max() < 1e-9


@needs_data
def test_monitor_train_without_data_says_where_it_looked(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "monitor.cli", "train", "--data", str(tmp_path), "--out",
                           str(tmp_path / "m.skops")], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "no fnc1/ folder" in proc.stderr and "Traceback" not in proc.stderr
