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


def test_reweighted_classifier_shifts_minority_class_and_round_trips(tmp_path):
    import numpy as np
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from models.decision import ReweightedClassifier, fit_class_weights
    from models.model import TRUSTED_TYPES

    rng = np.random.RandomState(0)
    X = np.r_[rng.normal(0, 1, (400, 2)), rng.normal(1.0, 1, (40, 2))]
    y = np.array(["major"] * 400 + ["minor"] * 40)
    base = LogisticRegression().fit(X, y)
    proba = base.predict_proba(X)
    gold = (y == "minor").astype(int)
    w, best = fit_class_weights(gold, proba, fixed=0)
    assert w[0] == 1.0 and w[1] > 1.0
    clf = ReweightedClassifier.from_fitted(base, w)
    p = clf.predict_proba(X)
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert (clf.predict(X) == "minor").sum() > (base.predict(X) == "minor").sum()
    path = tmp_path / "rw.skops"
    sio.dump(clf, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert set(untrusted) <= set(TRUSTED_TYPES)
    again = sio.load(path, trusted=untrusted)
    np.testing.assert_array_equal(again.predict_proba(X), p)


def test_reweighted_classifier_rejects_bad_weights():
    import numpy as np
    import pytest
    from sklearn.dummy import DummyClassifier

    from models.decision import ReweightedClassifier

    base = DummyClassifier().fit(np.zeros((4, 1)), ["a", "b", "a", "b"])
    with pytest.raises(ValueError):
        ReweightedClassifier.from_fitted(base, [1.0, 0.0])
    with pytest.raises(ValueError):
        ReweightedClassifier.from_fitted(base, [1.0, 1.0, 1.0])
