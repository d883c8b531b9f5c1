"""Benchmark the stance model on the FNC-1 hold-out split against a baseline trained in the same run.

Baseline: fnc-1-baseline-like gradient boosting on simple features (TF-IDF cosine, word overlap,
refuting-word and polarity counts, n-gram hits), trained on the FNC-1 training-split bodies only.

Usage: python benchmarks/stance.py [--data ../shared/data] [--model models/artifacts/stance.skops]
Writes benchmarks/results/stance.json. Exits 0 with a SKIP message when the data is absent.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402

from models import LABELS, load_model  # noqa: E402
from models.training import evaluate, load_fnc  # noqa: E402

_REFUTE = ["fake", "fraud", "hoax", "false", "deny", "denies", "not", "despite", "nope", "doubt", "doubts",
           "bogus", "debunk", "pranks", "retract"]
_TOK = re.compile(r"\w+", re.UNICODE)


def _toks(t: str) -> list[str]:
    return _TOK.findall(t.lower())


def baseline_features(pairs, vec) -> np.ndarray:
    H = vec.transform([h for h, _ in pairs])
    B = vec.transform([b for _, b in pairs])
    cos = np.asarray(H.multiply(B).sum(axis=1)).ravel()
    rows = []
    for (h, b), c in zip(pairs, cos):
        ht, bt = _toks(h), _toks(b)
        hs, bs = set(ht), set(bt)
        bgram = set(zip(bt, bt[1:]))
        hgram = list(zip(ht, ht[1:]))
        rows.append([c, len(hs & bs) / max(1, len(hs | bs)), sum(w in hs for w in _REFUTE),
                     sum(w in bs for w in _REFUTE) / max(1, len(bt)) * 100,
                     sum(w in ("not", "no", "never") for w in ht) % 2, sum(w in ("not", "no", "never") for w in bt) % 2,
                     sum(g in bgram for g in hgram) / max(1, len(hgram)),
                     sum(w in set(bt[:100]) for w in hs) / max(1, len(hs))])
    return np.asarray(rows)


def table(results: dict) -> str:
    names = list(results)
    lines = [f"{'metric':<22}" + "".join(f"{n:>14}" for n in names) + f"{'ratio':>10}"]
    keys = [("fnc_relative_score", None), ("macro_f1", None)] + [(f"f1[{lbl}]", lbl) for lbl in LABELS]
    for k, lbl in keys:
        vals = [results[n]["f1"][lbl] if lbl else results[n][k] for n in names]
        ratio = vals[0] / vals[-1] if vals[-1] else float("inf")
        lines.append(f"{k:<22}" + "".join(f"{v:>14.4f}" for v in vals) + f"{ratio:>10.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "stance.json")
    a = ap.parse_args(argv)
    if not (a.data / "fnc1" / "train_stances.csv.gz").is_file():
        print(f"SKIP: FNC-1 data not found under {a.data}")
        return 0
    fnc = load_fnc(a.data)
    bodies = fnc["bodies"]
    tr = [(h, bodies[b]) for h, b, _ in fnc["train"]]
    ytr = [lbl for *_, lbl in fnc["train"]]
    ho = [(h, bodies[b]) for h, b, _ in fnc["hold_out"]]
    gold = [lbl for *_, lbl in fnc["hold_out"]]

    t0 = time.time()
    model = load_model(a.model)
    t_load = time.time() - t0
    t0 = time.time()
    pred = [LABELS[i] for i in model.predict_proba_pairs(ho).argmax(1)]
    t_pred = time.time() - t0
    res_model = evaluate(gold, pred)

    t0 = time.time()
    vec = TfidfVectorizer(max_features=5000, stop_words="english", sublinear_tf=True).fit(
        sorted({t for p in tr for t in p}))
    base = HistGradientBoostingClassifier(max_iter=200, random_state=0).fit(baseline_features(tr, vec), ytr)
    bpred = list(base.predict(baseline_features(ho, vec)))
    res_base = evaluate(gold, bpred)
    t_base = time.time() - t0

    results = {"stance_model": res_model, "baseline_gbdt": res_base}
    print(f"FNC-1 hold-out split ({len(gold)} pairs); model {model.version}")
    print(table(results))
    out = {
        "split": "fnc1 hold_out_ids", "model_version": model.version, "model_path": str(a.model or "default"),
        "results": results, "timing_s": {"load_model": round(t_load, 2), "predict_hold_out": round(t_pred, 1),
                                         "baseline_train_eval": round(t_base, 1)},
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
