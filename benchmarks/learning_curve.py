"""Learning curve: contradiction F1 on a held-out slice as simulated reviewer labels grow from 0 to 2,000.

Simulated reviewer labels come from the **FNC-1 hold-out split** (bodies never used for the base model's
training); the test split of the FNC-1 competition and the SICK test split are never touched. The hold-out bodies
are divided by body id into a *label pool* (what reviewers would label) and an *evaluation slice*, so no article
body is on both sides. Reviewers see flagged matches, so the pool is enriched for contradictions (about one third
``disagree``), like a review queue; the evaluation slice keeps every ``disagree`` pair of its bodies plus a sample of
the others.

For each size n the classifier (the models package's pipeline: ``PairFeaturizer`` -> gradient boosting) is trained
on a fixed base set (a subsample of the FNC-1 training split + SICK train) plus the first n pool labels weighted
like reviewer feedback (``retrain_feedback_weight``, 3), and scored on the evaluation slice: F1 of the
``contradicts`` label, plus macro-F1. Features are computed once with an IDF fitted on the base texts (the same
for every n), so the curve isolates the effect of the labels.

Usage: ``python benchmarks/learning_curve.py [--data ../shared/data] [--base 3000] [--eval 1200]``; prints a
table and writes ``benchmarks/results/learning_curve.json``. Exits 0 with a clear message when the data is absent.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = (0, 100, 250, 500, 1000, 2000)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--base", type=int, default=3000, help="base training pairs (FNC-1 train split + SICK train)")
    ap.add_argument("--eval", type=int, default=1200, help="evaluation pairs (all disagree pairs kept)")
    ap.add_argument("--sizes", type=str, default=",".join(map(str, SIZES)))
    ap.add_argument("--weight", type=float, default=3.0, help="sample weight of one reviewer label")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "learning_curve.json")
    a = ap.parse_args(argv)
    if not (a.data / "fnc1" / "train_stances.csv.gz").is_file():
        print(f"SKIPPED: FNC-1 data not found under {a.data} (needs fnc1/ and sick/); nothing written.")
        return 0

    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import f1_score
    from threadpoolctl import threadpool_limits

    from models import LABELS
    from models.features import PairFeaturizer
    from models.text import normalize
    from models.training import load_fnc, load_sick

    t0 = time.time()
    sizes = [int(x) for x in a.sizes.split(",")]
    rng = random.Random(a.seed)
    fnc = load_fnc(a.data)
    bodies = fnc["bodies"]
    base = [(h, bodies[b], lbl) for h, b, lbl in fnc["train"]]
    sick_path = a.data / "sick" / "SICK_train.txt"
    if sick_path.is_file():
        base += load_sick(sick_path)
    base = rng.sample(base, min(a.base, len(base)))

    ho_ids = sorted(fnc["hold_out_ids"])
    random.Random(a.seed + 1).shuffle(ho_ids)
    pool_ids = set(ho_ids[: len(ho_ids) // 2])
    pool_rows = [(h, bodies[b], lbl) for h, b, lbl in fnc["hold_out"] if b in pool_ids]
    eval_rows = [(h, bodies[b], lbl) for h, b, lbl in fnc["hold_out"] if b not in pool_ids]
    # the pool: a review queue is enriched for contradictions (about one third)
    pos = [r for r in pool_rows if r[2] == "contradicts"]
    neg = [r for r in pool_rows if r[2] != "contradicts"]
    rng.shuffle(pos)
    rng.shuffle(neg)
    n_max = max(sizes)
    n_pos = min(len(pos), n_max // 3)
    pool = pos[:n_pos] + neg[: n_max - n_pos]
    rng.shuffle(pool)
    e_pos = [r for r in eval_rows if r[2] == "contradicts"]
    e_neg = [r for r in eval_rows if r[2] != "contradicts"]
    evaluation = e_pos + random.Random(a.seed + 2).sample(e_neg, max(0, min(len(e_neg), a.eval - len(e_pos))))
    print(f"base {len(base)} pairs, label pool {len(pool)} ({n_pos} contradicts), evaluation {len(evaluation)} "
          f"({len(e_pos)} contradicts)", file=sys.stderr)

    with threadpool_limits(limits=1, user_api="openmp"):
        featurizer = PairFeaturizer().fit([(normalize(c), normalize(s)) for c, s, _ in base])

        def feats(rows: list[tuple[str, str, str]]) -> np.ndarray:
            return featurizer.transform([(normalize(c), normalize(s)) for c, s, _ in rows])

        X_base, X_pool, X_eval = feats(base), feats(pool), feats(evaluation)
        print(f"features in {time.time() - t0:.0f}s", file=sys.stderr)
        y_base = [r[2] for r in base]
        y_pool = [r[2] for r in pool]
        y_eval = [r[2] for r in evaluation]
        results = []
        for n in sizes:
            X = np.vstack([X_base, X_pool[:n]]) if n else X_base
            y = y_base + y_pool[:n]
            values, counts = np.unique(y, return_counts=True)
            cw = {v: (len(y) / (len(values) * c)) ** 0.5 for v, c in zip(values, counts)}
            w = np.array([cw[v] for v in y]) * np.r_[np.ones(len(y_base)), np.full(n, a.weight)]
            clf = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.1, l2_regularization=1.0,
                                                 early_stopping=False, random_state=a.seed)
            clf.fit(X, y, sample_weight=w)
            pred = clf.predict(X_eval)
            per = f1_score(y_eval, pred, labels=list(LABELS), average=None, zero_division=0)
            row = {"labels": n, "contradicts_f1": round(float(per[0]), 4),
                   "macro_f1": round(float(np.mean(per)), 4)}
            results.append(row)
            print(f"{n:>6} labels: contradicts F1 {row['contradicts_f1']:.3f}   macro-F1 {row['macro_f1']:.3f}",
                  file=sys.stderr)

    print("\n| reviewer labels | contradicts F1 | macro-F1 |\n|---:|---:|---:|")
    for row in results:
        print(f"| {row['labels']} | {row['contradicts_f1']:.3f} | {row['macro_f1']:.3f} |")
    report = {
        "description": "contradiction F1 on an FNC-1 hold-out evaluation slice (bodies disjoint from the label "
                       "pool) as simulated reviewer labels from the FNC-1 hold-out split grow",
        "base_pairs": len(base), "evaluation_pairs": len(evaluation), "evaluation_contradicts": len(e_pos),
        "pool_contradicts_share": round(n_pos / max(1, len(pool)), 3), "feedback_weight": a.weight,
        "seed": a.seed, "seconds": round(time.time() - t0, 1), "results": results,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
