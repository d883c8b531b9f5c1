"""Retraining from review: a candidate classifier, compared with the one in service, promoted only if not worse.

``retrain(runtime)`` trains a candidate on

* the base data when ``settings.training_data_dir`` holds it: the FNC-1 training split (by body id), SICK train
  and FactCC-style synthetic pairs from training-split bodies (``models.synthetic``), optionally subsampled
  (``retrain_base_max_pairs``);
* the reviewers' feedback (``monitor.pipeline.feedback.training_rows``: latest decision per match wins), minus
  the newest 20 % which are held out (split by time, never by random rows), weighted ``retrain_feedback_weight``;
* synthetic pairs from the statements of the current (not retired) releases: figure/year/negation/denial
  perturbations (contradicts), faithful clauses (supports), other statements of the same release (discusses) and
  statements of other releases (unrelated).

Both models are then scored on the held-out feedback slice and, when the data is present, on (a fixed sample of)
the FNC-1 hold-out split. **Not worse** means every available comparison passes:

* feedback slice (used when it has at least ``retrain_min_feedback_eval`` rows): the candidate's F1 of the
  *flag* (label ``contradicts`` with score >= ``flag_threshold``) >= current - 0.005;
* FNC-1 hold-out: candidate macro-F1 over the four labels >= current - 0.01.

With neither comparison available the candidate is registered but not promoted (no promotion blind). Every
candidate is saved as ``<data_dir>/models/<version>.skops`` (+ card) and registered with its metrics and the
decision text. After a promotion the open matches are re-scored (:func:`rescore_open_matches`).
"""

from __future__ import annotations

import datetime as _dt
import logging
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.errors import ModelError
from monitor.pipeline.feedback import FeedbackRow, split_by_time, training_rows
from monitor.pipeline.process import decide_label, uncertainty
from monitor.pipeline.registry import active_version, ensure_registered, promote, register
from monitor.storage.db import transaction
from monitor.storage.tables import Claim, Match, ModelVersion, Release, ReviewEvent, Statement, utcnow

log = logging.getLogger(__name__)

LABELS = ("contradicts", "supports", "discusses", "unrelated")
FEEDBACK_TOLERANCE = 0.005
FNC_TOLERANCE = 0.01
HOLDOUT_SHARE = 0.2
Pair = tuple[str, str]
Fit = Callable[[list[Pair], list[str], np.ndarray, int], Any]


@dataclass(frozen=True)
class RescoreResult:
    rescored: int = 0
    withdrawn: int = 0
    newly_flagged: int = 0


@dataclass(frozen=True)
class RetrainResult:
    version: str
    promoted: bool
    decision: str
    current_version: str
    metrics: dict[str, Any]
    path: Path
    seconds: float
    rescore: RescoreResult | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "promoted": self.promoted, "decision": self.decision,
                "current_version": self.current_version, "metrics": self.metrics, "path": str(self.path),
                "seconds": round(self.seconds, 1), "counts": self.counts,
                "rescore": None if self.rescore is None else vars(self.rescore)}


# -- data -----------------------------------------------------------------------------------------------


def has_base_data(data_dir: Path | None) -> bool:
    return data_dir is not None and (Path(data_dir) / "fnc1" / "train_stances.csv.gz").is_file()


def base_training_pairs(data_dir: Path, *, max_pairs: int | None, n_synthetic: int,
                        seed: int = 0) -> list[tuple[str, str, str]]:
    """(claim, statement, label) from FNC-1 training split + SICK train + synthetic pairs from training bodies."""
    from models.synthetic import english_template_pairs, numeric_sentences, perturb_sentences, vietnamese_pairs
    from models.training import load_fnc, load_sick

    rng = random.Random(seed)
    fnc = load_fnc(data_dir)
    bodies: dict[int, str] = fnc["bodies"]  # type: ignore[assignment]
    rows = [(h, bodies[b], lbl) for h, b, lbl in fnc["train"]]  # type: ignore[attr-defined]
    sick_path = Path(data_dir) / "sick" / "SICK_train.txt"
    if sick_path.is_file():
        rows += load_sick(sick_path)
    if max_pairs is not None and len(rows) > max_pairs:
        rows = rng.sample(rows, max_pairs)
    if n_synthetic:
        train_bodies = [bodies[i] for i in sorted(fnc["train_ids"])]  # type: ignore[attr-defined]
        sentences = numeric_sentences(train_bodies, n_synthetic, rng)
        others = numeric_sentences(train_bodies, max(200, n_synthetic), random.Random(seed + 7))
        rows += perturb_sentences(sentences, others, rng)
        n_templates = max(1, n_synthetic // 2)
        rows += vietnamese_pairs(n_templates, rng) + english_template_pairs(n_templates // 2, rng)
    return rows


def fnc_holdout_pairs(data_dir: Path, *, max_pairs: int, seed: int = 0) -> tuple[list[Pair], list[str]]:
    """A fixed sample of the FNC-1 hold-out split (by body id), the same for both models."""
    from models.training import load_fnc

    fnc = load_fnc(data_dir)
    bodies: dict[int, str] = fnc["bodies"]  # type: ignore[assignment]
    rows = list(fnc["hold_out"])  # type: ignore[call-overload]
    if len(rows) > max_pairs:
        rows = random.Random(seed + 101).sample(rows, max_pairs)
    return [(h, bodies[b]) for h, b, _ in rows], [lbl for *_, lbl in rows]


def release_synthetic_pairs(session: Session, n_sentences: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """Synthetic pairs built from the statements of the current releases (see the module docstring)."""
    from models.synthetic import perturb_sentences

    rng = random.Random(seed + 13)
    by_release: dict[int, list[str]] = {}
    for release_id, text in session.execute(
            select(Statement.release_id, Statement.text).join(Statement.release)
            .where(Release.retired.is_(False)).order_by(Statement.release_id, Statement.position)):
        if len(text) >= 20:
            by_release.setdefault(release_id, []).append(text)
    statements = [s for texts in by_release.values() for s in texts]
    if not statements:
        return []
    numeric = [s for s in statements if any(ch.isdigit() for ch in s)]
    rng.shuffle(numeric)
    numeric = numeric[: max(n_sentences, 1)]
    rows = perturb_sentences(numeric, statements, rng) if numeric else []
    rows = [r for r in rows if r[2] != "unrelated" or r[0] != r[1]]
    release_ids = sorted(by_release)
    for release_id in release_ids:  # same release, another sentence: same topic, no stance
        texts = by_release[release_id]
        for i, text in enumerate(texts[:50]):
            if len(texts) > 1:
                rows.append((texts[(i + 1) % len(texts)], text, "discusses"))
            others = [s for r in release_ids if r != release_id for s in by_release[r]]
            if others:
                rows.append((rng.choice(others), text, "unrelated"))
    return rows


# -- training -------------------------------------------------------------------------------------------


def class_weights(labels: Sequence[str], power: float = 0.5) -> np.ndarray:
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    weight = {v: (len(labels) / (len(values) * c)) ** power for v, c in zip(values, counts, strict=True)}
    return np.array([weight[v] for v in labels], dtype=float)


def default_fit(pairs: list[Pair], labels: list[str], weights: np.ndarray, seed: int) -> Any:
    """The models package's training pipeline (``models.training.build_pipeline``), fitted with weights."""
    from models import training

    pipeline = None
    build = getattr(training, "build_pipeline", None)
    if build is not None:
        try:
            pipeline = build(seed)
        except TypeError:
            pipeline = None
    if pipeline is None:  # the models package changed its builder: the documented default pipeline
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.pipeline import Pipeline

        from models.features import PairFeaturizer

        pipeline = Pipeline([("features", PairFeaturizer()), ("clf", HistGradientBoostingClassifier(
            max_iter=300, learning_rate=0.1, l2_regularization=1.0, early_stopping=False, random_state=seed))])
    last = pipeline.steps[-1][0]
    with _threads(len(pairs)):
        pipeline.fit(pairs, labels, **{f"{last}__sample_weight": weights})
    return pipeline


def _threads(n_rows: int) -> Any:
    """One OpenMP thread for small data: thread start-up dominates there (seconds instead of milliseconds)."""
    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp") if n_rows < 20000 else nullcontext()


def flag_predictions(model: Any, pairs: list[Pair], threshold: float) -> tuple[list[str], list[bool]]:
    """(4-class argmax labels, flag decisions) of ``model`` for ``pairs``."""
    if not pairs:
        return [], []
    with _threads(len(pairs)):
        proba = np.asarray(model.predict_proba_pairs(pairs))
    labels = [LABELS[i] for i in proba.argmax(1)]
    flags = [lbl == "contradicts" and float(p[0]) >= threshold for lbl, p in zip(labels, proba, strict=True)]
    return labels, flags


def flag_f1(gold: Sequence[bool], pred: Sequence[bool]) -> float:
    tp = sum(g and p for g, p in zip(gold, pred, strict=True))
    fp = sum(p and not g for g, p in zip(gold, pred, strict=True))
    fn = sum(g and not p for g, p in zip(gold, pred, strict=True))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def evaluate_on_feedback(model: Any, rows: list[FeedbackRow], threshold: float) -> dict[str, Any]:
    gold = [r.contradicts for r in rows]
    _, flags = flag_predictions(model, [(r.claim, r.statement) for r in rows], threshold)
    tp = sum(g and p for g, p in zip(gold, flags, strict=True))
    return {"contradicts_f1": round(flag_f1(gold, flags), 4), "n": len(rows), "positives": sum(gold),
            "flagged": sum(flags), "true_flags": tp}


def evaluate_on_fnc(model: Any, pairs: list[Pair], gold: list[str]) -> dict[str, Any]:
    from models.training import evaluate

    labels, _ = flag_predictions(model, pairs, 0.0)
    return dict(evaluate(gold, labels))


def decide(current: dict[str, Any], candidate: dict[str, Any]) -> tuple[bool, str]:
    """Apply the "not worse" rule (module docstring) to the two metric sets; returns (promote, reason)."""
    checks: list[tuple[bool, str]] = []
    if "feedback_slice" in candidate:
        c, k = current["feedback_slice"]["contradicts_f1"], candidate["feedback_slice"]["contradicts_f1"]
        ok = k >= c - FEEDBACK_TOLERANCE
        checks.append((ok, f"feedback slice contradicts F1 {k:.4f} vs current {c:.4f} "
                           f"({'ok' if ok else 'worse'}: needs >= current - {FEEDBACK_TOLERANCE})"))
    if "fnc1_hold_out" in candidate:
        c, k = current["fnc1_hold_out"]["macro_f1"], candidate["fnc1_hold_out"]["macro_f1"]
        ok = k >= c - FNC_TOLERANCE
        checks.append((ok, f"FNC-1 hold-out macro-F1 {k:.4f} vs current {c:.4f} "
                           f"({'ok' if ok else 'worse'}: needs >= current - {FNC_TOLERANCE})"))
    if not checks:
        return False, ("not promoted: no evaluation data (too little held-out feedback and no FNC-1 hold-out "
                       "split); a model is never promoted blind")
    promoted = all(ok for ok, _ in checks)
    return promoted, ("promoted: " if promoted else "not promoted: ") + "; ".join(text for _, text in checks)


def _version_name(session: Session, now: _dt.datetime, n_feedback: int) -> str:
    base = f"stance-{now:%Y%m%dT%H%M%S}-fb{n_feedback}"
    name, n = base, 1
    while session.scalar(select(ModelVersion.id).where(ModelVersion.version == name)) is not None:
        n += 1
        name = f"{base}-{n}"
    return name


def retrain(runtime: Any, *, with_feedback: bool = True, now: _dt.datetime | None = None, seed: int = 0,
            fit: Fit | None = None, rescore: bool = True) -> RetrainResult:
    """Train, compare, register and (if not worse) promote a candidate; see the module docstring."""
    from models import StanceModel, save_model

    t0 = time.monotonic()
    settings = runtime.settings
    now = now or utcnow()
    current = runtime.model
    threshold = settings.flag_threshold
    data_dir = Path(settings.training_data_dir) if settings.training_data_dir else None
    with transaction(runtime.factory) as session:
        if active_version(session) is None:
            ensure_registered(session, current, runtime.fallback_model_path, now)
        feedback = training_rows(session)
        train_fb, eval_fb = split_by_time(feedback, HOLDOUT_SHARE)
        release_rows = release_synthetic_pairs(session, settings.retrain_synthetic_sentences, seed)
        version = _version_name(session, now, len(train_fb) if with_feedback else 0)
    base_rows = base_training_pairs(data_dir, max_pairs=settings.retrain_base_max_pairs,
                                    n_synthetic=settings.retrain_synthetic_sentences, seed=seed) \
        if has_base_data(data_dir) else []
    fb_rows = [(r.claim, r.statement, r.label) for r in train_fb] if with_feedback else []
    rows = base_rows + release_rows + fb_rows
    missing = set(LABELS) - {lbl for *_, lbl in rows}
    if missing:
        raise ModelError(f"cannot retrain: no training examples labelled {', '.join(sorted(missing))} (add "
                         f"releases with several statements, feedback, or the data in {data_dir})")
    pairs = [(c, s) for c, s, _ in rows]
    labels = [lbl for *_, lbl in rows]
    weights = class_weights(labels)
    weights[len(base_rows) + len(release_rows):] *= settings.retrain_feedback_weight
    log.info("retraining on %d pairs (base %d, releases %d, feedback %d)", len(rows), len(base_rows),
             len(release_rows), len(fb_rows))
    pipeline = (fit or default_fit)(pairs, labels, weights, seed)
    candidate = StanceModel(pipeline, {}, version)

    metrics: dict[str, dict[str, Any]] = {"current": {}, "candidate": {}}
    if len(eval_fb) >= settings.retrain_min_feedback_eval:
        metrics["current"]["feedback_slice"] = evaluate_on_feedback(current, eval_fb, threshold)
        metrics["candidate"]["feedback_slice"] = evaluate_on_feedback(candidate, eval_fb, threshold)
    if has_base_data(data_dir):
        ho_pairs, ho_gold = fnc_holdout_pairs(data_dir, max_pairs=settings.retrain_eval_max_pairs,  # type: ignore[arg-type]
                                              seed=seed)
        metrics["current"]["fnc1_hold_out"] = evaluate_on_fnc(current, ho_pairs, ho_gold)
        metrics["candidate"]["fnc1_hold_out"] = evaluate_on_fnc(candidate, ho_pairs, ho_gold)
    promoted, decision = decide(metrics["current"], metrics["candidate"])
    counts = {"base_pairs": len(base_rows), "release_synthetic_pairs": len(release_rows),
              "feedback_train": len(fb_rows), "feedback_held_out": len(eval_fb), "feedback_total": len(feedback)}
    seconds = time.monotonic() - t0
    card = {
        "name": "stance", "version": version, "date": now.date().isoformat(),
        "python": sys.version.split()[0], "labels": list(LABELS),
        "trained_from": "retraining with reviewer feedback (monitor.pipeline.retrain)",
        "data": {"base": f"{len(base_rows)} pairs from {data_dir} (FNC-1 training split, SICK train, synthetic)"
                 if base_rows else "none (training data absent)",
                 "release_synthetic": f"{len(release_rows)} pairs from the current releases' statements",
                 "feedback": f"{len(fb_rows)} reviewer decisions (latest per match), weight "
                             f"{settings.retrain_feedback_weight}; newest {len(eval_fb)} held out by time"},
        "evaluation": {"feedback_slice": "the newest 20% of feedback rows (time split), flag F1",
                       "fnc1_hold_out": f"up to {settings.retrain_eval_max_pairs} pairs of the FNC-1 hold-out "
                                        "split (fixed sample)"},
        "compared_with": current.version, "metrics": metrics["candidate"], "decision": decision,
        "counts": counts, "seed": seed,
    }
    candidate.card = card
    path = Path(settings.models_dir) / f"{version}.skops"
    save_model(candidate, path)
    all_metrics = {**metrics, "counts": counts, "train_seconds": round(seconds, 1)}
    with transaction(runtime.factory) as session:
        row = register(session, version=version, path=path, card=card, metrics=all_metrics,
                       status="candidate", decision=decision, now=now)
        if promoted:
            promote(session, row, now)
        else:
            row.status = "rejected"
    log.info("retrain %s: %s", version, decision)
    rescored = None
    if promoted:
        model = runtime.reload_model()
        if rescore:
            rescored = rescore_open_matches(runtime.factory, model, threshold=threshold,
                                            top_k=settings.check_top_k, now=now)
    return RetrainResult(version, promoted, decision, current.version, all_metrics, path,
                         time.monotonic() - t0, rescored, counts)


# -- re-scoring after a promotion ----------------------------------------------------------------------


def rescore_open_matches(factory: Any, model: Any, *, threshold: float, top_k: int = 3,
                         now: _dt.datetime | None = None, batch_size: int = 500) -> RescoreResult:
    """Score every open (``new``) match again with ``model``.

    A flag (label ``contradicts``) that the new model no longer flags leaves the queue: status ``withdrawn`` and a
    ``withdraw`` ReviewEvent (no user) saying why. Other open matches get the new label, scores and reasons;
    a match that becomes a flag is queued for alerts like any new flag.
    """
    from models.model import explain

    now = now or utcnow()
    withdrawn = newly = total = 0
    last_id = 0
    while True:
        with transaction(factory) as session:
            matches = list(session.scalars(select(Match).where(Match.status == "new", Match.id > last_id)
                                           .order_by(Match.id).limit(batch_size)))
            if not matches:
                break
            last_id = matches[-1].id
            texts = dict(session.execute(select(Claim.id, Claim.text).where(
                Claim.id.in_({m.claim_id for m in matches}))).all())
            stmts = dict(session.execute(select(Statement.id, Statement.text).where(
                Statement.id.in_({m.statement_id for m in matches}))).all())
            pairs = [(texts[m.claim_id], stmts[m.statement_id]) for m in matches]
            with _threads(len(pairs)):
                proba = np.asarray(model.predict_proba_pairs(pairs))
            new_flags = []
            for match, pair, p in zip(matches, pairs, proba, strict=True):
                probabilities = {lbl: float(p[i]) for i, lbl in enumerate(LABELS)}
                raw = LABELS[int(p.argmax())]
                label, score = decide_label(raw, float(p.max()), probabilities, threshold)
                was_flag = match.label == "contradicts"
                total += 1
                if was_flag and label != "contradicts":
                    why = (f"label {label} ({score:.2f})" if raw != "contradicts" else
                           f"contradiction score {float(p[0]):.2f} below the threshold {threshold:.2f}")
                    session.add(ReviewEvent(match_id=match.id, user_id=None, action="withdraw",
                                            from_status=match.status, to_status="withdrawn",
                                            note=f"no longer flagged by model {model.version}: {why}",
                                            created_at=now))
                    match.status = "withdrawn"
                    match.reviewed_at = now
                    withdrawn += 1
                    continue
                match.label, match.score, match.probabilities = label, score, probabilities
                match.uncertainty = uncertainty(probabilities)
                match.model_version = model.version
                match.reasons = [_reason(r) for r in explain(pair[0], pair[1], label)]
                if label == "contradicts" and not was_flag:
                    new_flags.append(match)
                    newly += 1
            session.flush()
            if new_flags:
                from monitor.alerts.rules import queue_alerts

                queue_alerts(session, new_flags, now=now)
    return RescoreResult(total, withdrawn, newly)


def _reason(reason: Any) -> dict[str, Any]:
    from monitor.pipeline.process import _reason_dict

    return _reason_dict(reason)


def retrain_job(runtime: Any) -> RetrainResult | None:
    """Scheduled job (nightly at ``settings.retrain_hour`` UTC): retrain with feedback; never raises."""
    try:
        result = retrain(runtime, with_feedback=True)
    except Exception:  # a failed night must not stop the scheduler; the log says why
        log.exception("scheduled retraining failed")
        return None
    log.info("scheduled retraining: %s", result.decision)
    return result
