"""Benchmark the stance model on the FNC-1 hold-out split against a baseline trained in the same run.

Baseline: fnc-1-baseline-like gradient boosting on simple features (TF-IDF cosine, word overlap,
refuting-word and polarity counts, n-gram hits), trained on the FNC-1 training-split bodies only.

Usage: python benchmarks/stance.py [--data ../shared/data] [--model models/artifacts/stance.skops]
                                  [--reference OTHER.skops]
``--reference`` adds a second stance artifact (e.g. the previous model) to the same run. The table shows
every system's FNC relative score, macro-F1, per-class F1 and the precision/recall/F1 of 'contradicts'
flagged at the product's threshold (p >= 0.5), plus the ratio of the model to the baseline (and to the
reference). Writes benchmarks/results/stance.json. Exits 0 with a SKIP message when the data is absent.
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
from models.training import evaluate, flag_metrics, load_fnc  # noqa: E402

FLAG = 0.5

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


def _rows(results: dict) -> list[tuple[str, list[float]]]:
    names = list(results)
    keys = [("fnc_relative_score", lambda r: r["fnc_relative_score"]), ("macro_f1", lambda r: r["macro_f1"])]
    keys += [(f"f1[{lbl}]", lambda r, lbl=lbl: r["f1"][lbl]) for lbl in LABELS]
    flag = f"contradicts_at_{FLAG}"
    keys += [(f"contra@{FLAG} {k}", lambda r, k=k: r.get(flag, {}).get(k, float("nan")))
             for k in ("precision", "recall", "f1")]
    return [(k, [get(results[n]) for n in names]) for k, get in keys]


def table(results: dict, baseline: str = "baseline_gbdt", reference: str | None = None) -> str:
    """Rows of metrics, one column per system, then model/baseline (and model/reference) ratios."""
    names = list(results)
    ratio_cols = [("ratio/base", baseline)] + ([("ratio/ref", reference)] if reference else [])
    lines = [f"{'metric':<26}" + "".join(f"{n:>16}" for n in names) + "".join(f"{c:>12}" for c, _ in ratio_cols)]
    for k, vals in _rows(results):
        line = f"{k:<26}" + "".join(f"{v:>16.4f}" for v in vals)
        for _, other in ratio_cols:
            d = vals[names.index(other)]
            line += f"{(vals[0] / d if d else float('inf')):>12.3f}"
        lines.append(line)
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--reference", type=Path, default=None, help="another stance artifact to compare in the same run")
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
    proba = model.predict_proba_pairs(ho)
    t_pred = time.time() - t0
    res_model = {**evaluate(gold, [LABELS[i] for i in proba.argmax(1)]), **flag_metrics(gold, proba, FLAG)}
    res_ref = None
    if a.reference is not None:
        ref = load_model(a.reference)
        rp = ref.predict_proba_pairs(ho)
        res_ref = {**evaluate(gold, [LABELS[i] for i in rp.argmax(1)]), **flag_metrics(gold, rp, FLAG),
                   "version": ref.version}

    t0 = time.time()
    vec = TfidfVectorizer(max_features=5000, stop_words="english", sublinear_tf=True).fit(
        sorted({t for p in tr for t in p}))
    base = HistGradientBoostingClassifier(max_iter=200, random_state=0).fit(baseline_features(tr, vec), ytr)
    bp = base.predict_proba(baseline_features(ho, vec))[:, [list(base.classes_).index(lbl) for lbl in LABELS]]
    res_base = {**evaluate(gold, [LABELS[i] for i in bp.argmax(1)]), **flag_metrics(gold, bp, FLAG)}
    t_base = time.time() - t0

    results = {"stance_model": res_model}
    if res_ref is not None:
        results["reference_model"] = res_ref
    results["baseline_gbdt"] = res_base
    print(f"FNC-1 hold-out split ({len(gold)} pairs); model {model.version}"
          + (f"; reference {res_ref['version']} ({a.reference})" if res_ref else ""))
    print(table(results, reference="reference_model" if res_ref else None))
    out = {
        "split": "fnc1 hold_out_ids", "model_version": model.version, "model_path": str(a.model or "default"),
        "reference_path": str(a.reference) if a.reference else None, "flag_threshold": FLAG,
        "ratio_to_baseline": {k: (v[0] / v[-1] if v[-1] else None) for k, v in _rows(results)},
        "ratio_to_reference": ({k: (v[0] / v[1] if v[1] else None) for k, v in _rows(results)} if res_ref else None),
        "results": results, "timing_s": {"load_model": round(t_load, 2), "predict_hold_out": round(t_pred, 1),
                                         "baseline_train_eval": round(t_base, 1)},
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
