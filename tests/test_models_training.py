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
