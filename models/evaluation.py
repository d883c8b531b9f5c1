"""Evaluation of the stance model on labelled pairs (``monitor evaluate``).

FNC-1 scoring in FNC-1's own label names, per-class precision/recall/F1 and confusion matrices (scikit-learn),
readers for the FNC-1 CSV pair of files (plain or gzip) and for pairs JSONL, writers for predictions, and the
plain-text reports of the metrics and of a model card. Input problems raise :class:`EvaluationError` with a
one-line message naming the file (and line).
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator, Mapping, Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from .model import LABELS

__all__ = [
    "FNC_LABELS", "MODEL_TO_FNC", "EvaluationError", "FncRow", "FncInput", "PairRow", "PairsInput",
    "fnc_score", "class_metrics", "confusion", "binary_metrics", "evaluate_fnc", "evaluate_pairs",
    "read_fnc", "read_pairs", "predict", "write_fnc_predictions", "write_pairs_predictions",
    "format_report", "format_card",
]

#: FNC-1's labels, in the order of its scorer's confusion matrix.
FNC_LABELS: tuple[str, ...] = ("agree", "disagree", "discuss", "unrelated")
#: The model's labels in FNC-1's names (``models.training.FNC_MAP`` is its inverse).
MODEL_TO_FNC: dict[str, str] = {"contradicts": "disagree", "supports": "agree", "discusses": "discuss",
                                "unrelated": "unrelated"}
PathLike = str | Path


class EvaluationError(ValueError):
    """Unusable evaluation input or output; ``str(err)`` is one line meant for people."""


# -- metrics ---------------------------------------------------------------------------------------------


def _check(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    unknown = sorted((set(gold) | set(pred)) - set(labels))
    if unknown:
        raise ValueError(f"unknown labels {unknown}; expected {list(labels)}")


def fnc_score(gold: Sequence[str], pred: Sequence[str]) -> tuple[float, float]:
    """FNC-1 score and its maximum, in FNC-1 label names.

    +0.25 when related/unrelated is right, +0.75 more when a related gold label is predicted exactly; the
    maximum is 0.25 per unrelated and 1.0 per related gold label.
    """
    _check(gold, pred, FNC_LABELS)
    score = best = 0.0
    for g, p in zip(gold, pred):
        g_rel, p_rel = g != "unrelated", p != "unrelated"
        best += 1.0 if g_rel else 0.25
        if g_rel == p_rel:
            score += 0.25
        if g_rel and g == p:
            score += 0.75
    return score, best


def class_metrics(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class precision, recall, F1 and support (0 where undefined)."""
    _check(gold, pred, labels)
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=list(labels), average=None, zero_division=0)
    n = len(gold)
    return {
        "accuracy": round(sum(g == q for g, q in zip(gold, pred)) / n, 4) if n else 0.0,
        "macro_f1": round(float(np.mean(f)), 4),
        "precision": {lbl: round(float(v), 4) for lbl, v in zip(labels, p)},
        "recall": {lbl: round(float(v), 4) for lbl, v in zip(labels, r)},
        "f1": {lbl: round(float(v), 4) for lbl, v in zip(labels, f)},
        "support": {lbl: int(v) for lbl, v in zip(labels, s)},
    }


def confusion(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """``{"labels": [...], "matrix": [[...]]}``: rows are gold labels, columns predicted ones."""
    _check(gold, pred, labels)
    matrix = confusion_matrix(gold, pred, labels=list(labels)) if gold else np.zeros((len(labels),) * 2, int)
    return {"labels": list(labels), "matrix": [[int(v) for v in row] for row in matrix]}


def binary_metrics(gold: Sequence[str], pred: Sequence[str], positive: str) -> dict[str, float]:
    """Precision, recall and F1 of ``positive`` against every other label."""
    tp = sum(g == positive and p == positive for g, p in zip(gold, pred))
    n_pred = sum(p == positive for p in pred)
    n_gold = sum(g == positive for g in gold)
    prec = tp / n_pred if n_pred else 0.0
    rec = tp / n_gold if n_gold else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4)}


def evaluate_fnc(gold: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    """Every metric of ``monitor evaluate fnc`` for labels in FNC-1 names."""
    raw, best = fnc_score(gold, pred)
    return {
        "relative_score": round(100 * raw / best, 2) if best else 0.0,
        "fnc_score": raw, "max_score": best,
        **class_metrics(gold, pred, FNC_LABELS),
        "confusion": confusion(gold, pred, FNC_LABELS),
        "n": len(gold),
    }


def evaluate_pairs(gold: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    """Metrics for labels in the model's names: the FNC-1 score through :data:`MODEL_TO_FNC`, per-class metrics
    and confusion in :data:`models.LABELS`, and ``contradicts`` against everything else."""
    _check(gold, pred, LABELS)
    raw, best = fnc_score([MODEL_TO_FNC[g] for g in gold], [MODEL_TO_FNC[p] for p in pred])
    flag = binary_metrics(gold, pred, "contradicts")
    return {
        "relative_score": round(100 * raw / best, 2) if best else 0.0,
        "fnc_score": raw, "max_score": best,
        **class_metrics(gold, pred, LABELS),
        "confusion": confusion(gold, pred, LABELS),
        "contradicts_precision": flag["precision"], "contradicts_recall": flag["recall"],
        "contradicts_f1": flag["f1"],
        "n": len(gold),
    }


# -- input -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FncRow:
    """One row of an FNC-1 stances file, with its body resolved."""

    line: int
    headline: str
    body_id: str
    body: str
    stance: str | None


@dataclass(frozen=True)
class FncInput:
    rows: list[FncRow]
    labelled: bool


@dataclass(frozen=True)
class PairRow:
    """One line of a pairs JSONL file: the object as read, plus its fields."""

    line: int
    record: dict[str, Any]
    official: str
    claim: str
    label: str | None


@dataclass(frozen=True)
class PairsInput:
    rows: list[PairRow]
    labelled: bool


def _open_text(path: Path) -> IO[str]:
    """``path`` as UTF-8 text (a BOM is dropped), gunzipped when it starts with the gzip magic bytes."""
    try:
        with path.open("rb") as fh:
            zipped = fh.read(2) == b"\x1f\x8b"
        stream: IO[bytes] = gzip.open(path, "rb") if zipped else path.open("rb")
    except OSError as exc:
        raise EvaluationError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")


def _lines_or_fail(path: Path, action: Iterator[Any]) -> list[Any]:
    """Drain ``action`` (which reads ``path``), turning decoding errors into :class:`EvaluationError`."""
    try:
        return list(action)
    except UnicodeDecodeError as exc:
        raise EvaluationError(f"{path} is not UTF-8 text (byte {exc.start}); convert it to UTF-8 first") from exc
    except (gzip.BadGzipFile, EOFError, OSError, ValueError) as exc:  # truncated/corrupt gzip, unreadable file
        if isinstance(exc, EvaluationError):
            raise
        raise EvaluationError(f"cannot read {path}: {exc}") from exc
    except csv.Error as exc:
        raise EvaluationError(f"{path} is not a readable CSV file: {exc}") from exc


def _csv_records(path: Path, required: Sequence[str]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    def rows() -> Iterator[tuple[int, dict[str, str]] | list[str]]:
        with _open_text(path) as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or not any(h.strip() for h in header):
                raise EvaluationError(f"{path} is empty")
            names = [h.strip() for h in header]
            missing = [c for c in required if c not in names]
            if missing:
                raise EvaluationError(f"{path}: missing column {missing[0]!r} (columns: {', '.join(names)})")
            yield names
            for values in reader:
                if not any(v.strip() for v in values):
                    continue  # blank line
                if len(values) < len(names):
                    needed = [c for c in required if names.index(c) >= len(values)]
                    if needed:
                        raise EvaluationError(f"{path} line {reader.line_num}: no value for {needed[0]!r}")
                yield reader.line_num, dict(zip(names, values))

    items = _lines_or_fail(path, rows())
    return items[0], items[1:]


def _body_key(value: str) -> str:
    value = value.strip()
    return str(int(value)) if value.isdigit() else value


def read_fnc(bodies_path: PathLike, stances_path: PathLike) -> FncInput:
    """Read FNC-1 bodies (``Body ID``, ``articleBody``) and stances (``Headline``, ``Body ID`` and, when
    labelled, ``Stance``), plain or gzip. Every stance row must name a known body."""
    bodies_path, stances_path = Path(bodies_path), Path(stances_path)
    _, body_rows = _csv_records(bodies_path, ("Body ID", "articleBody"))
    bodies: dict[str, str] = {}
    for line, rec in body_rows:
        key = _body_key(rec["Body ID"])
        if key in bodies:
            raise EvaluationError(f"{bodies_path} line {line}: Body ID {rec['Body ID'].strip()} appears twice")
        bodies[key] = rec["articleBody"]
    names, stance_rows = _csv_records(stances_path, ("Headline", "Body ID"))
    labelled = "Stance" in names
    if not stance_rows:
        raise EvaluationError(f"{stances_path} has no rows")
    out: list[FncRow] = []
    for line, rec in stance_rows:
        body = bodies.get(_body_key(rec["Body ID"]))
        if body is None:
            raise EvaluationError(f"{stances_path} line {line}: Body ID {rec['Body ID'].strip()!r} is not in "
                                  f"{bodies_path}")
        stance = None
        if labelled:
            stance = (rec.get("Stance") or "").strip().lower()
            if stance not in FNC_LABELS:
                raise EvaluationError(f"{stances_path} line {line}: unknown Stance {rec.get('Stance', '')!r} "
                                      f"(expected one of {', '.join(FNC_LABELS)})")
        out.append(FncRow(line, rec["Headline"], rec["Body ID"], body, stance))
    return FncInput(out, labelled)


def read_pairs(path: PathLike) -> PairsInput:
    """Read JSONL lines ``{"official": ..., "claim": ..., "label": ...}`` (plain or gzip; blank lines skipped).

    ``label`` is one of :data:`models.LABELS` on every line, or on none (then the input is unlabelled).
    """
    path = Path(path)

    def lines() -> Iterator[tuple[int, str]]:
        with _open_text(path) as fh:
            for number, text in enumerate(fh, 1):
                if text.strip():
                    yield number, text

    out: list[PairRow] = []
    for number, text in _lines_or_fail(path, lines()):
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"{path} line {number}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(record, dict):
            raise EvaluationError(f"{path} line {number}: expected a JSON object, got {type(record).__name__}")
        for key in ("official", "claim"):
            if not isinstance(record.get(key), str):
                problem = "missing" if key not in record else "not a string"
                raise EvaluationError(f"{path} line {number}: {key!r} is {problem}")
        label = record.get("label")
        if label is not None and label not in LABELS:
            raise EvaluationError(f"{path} line {number}: unknown label {label!r} (expected one of "
                                  f"{', '.join(LABELS)})")
        if out and (label is None) != (out[0].label is None):
            first = out[0]
            raise EvaluationError(f"{path} line {number} {'has no' if label is None else 'has a'} label but line "
                                  f"{first.line} {'has one' if label is None else 'has none'}: label every line "
                                  "or none")
        out.append(PairRow(number, record, record["official"], record["claim"], label))
    if not out:
        raise EvaluationError(f"{path} is empty" if path.stat().st_size == 0 else f"{path} has no pairs")
    return PairsInput(out, out[0].label is not None)


# -- prediction and output -------------------------------------------------------------------------------


def predict(model: Any, pairs: Sequence[tuple[str, str]]) -> tuple[list[str], list[float], float]:
    """Labels (model names), the probability of each predicted label, and pairs classified per second.

    ``pairs`` are ``(claim, statement)``, the order of :meth:`StanceModel.predict_proba_pairs`.
    """
    t0 = time.perf_counter()
    proba = np.asarray(model.predict_proba_pairs(list(pairs)))
    seconds = time.perf_counter() - t0
    best = proba.argmax(axis=1) if len(proba) else np.zeros(0, int)
    labels = [LABELS[int(i)] for i in best]
    scores = [float(proba[n, i]) for n, i in enumerate(best)]
    return labels, scores, round(len(pairs) / seconds, 1) if seconds > 0 else float(len(pairs))


def _open_output(path: Path) -> IO[str]:
    try:
        if path.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(path, "wb"), encoding="utf-8", newline="")
        return path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise EvaluationError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_fnc_predictions(path: PathLike, rows: Sequence[FncRow], labels: Sequence[str]) -> None:
    """CSV ``Headline``, ``Body ID``, ``Stance`` (FNC-1 names), one row per input row, in input order."""
    path = Path(path)
    try:
        with _open_output(path) as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["Headline", "Body ID", "Stance"])
            for row, label in zip(rows, labels, strict=True):
                writer.writerow([row.headline, row.body_id, MODEL_TO_FNC.get(label, label)])
    except OSError as exc:
        raise EvaluationError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_pairs_predictions(path: PathLike, rows: Sequence[PairRow], labels: Sequence[str],
                            scores: Sequence[float]) -> None:
    """JSONL: each input object with ``label`` set to the prediction and ``score`` to its probability."""
    path = Path(path)
    try:
        with _open_output(path) as fh:
            for row, label, score in zip(rows, labels, scores, strict=True):
                fh.write(json.dumps({**row.record, "label": label, "score": round(score, 4)},
                                    ensure_ascii=False) + "\n")
    except OSError as exc:
        raise EvaluationError(f"cannot write {path}: {exc.strerror or exc}") from exc


# -- text reports ----------------------------------------------------------------------------------------


def format_report(metrics: Mapping[str, Any]) -> str:
    """The metrics of :func:`evaluate_fnc` / :func:`evaluate_pairs` as a plain-text table."""
    labels = metrics["confusion"]["labels"]
    width = max(11, *(len(lbl) for lbl in labels)) + 1
    lines = [
        f"FNC-1 score: {metrics['fnc_score']:g} of {metrics['max_score']:g} ({metrics['relative_score']:.2f}%)",
        f"accuracy: {metrics['accuracy']:.4f}   macro-F1: {metrics['macro_f1']:.4f}   pairs: {metrics['n']}",
        "",
        f"{'class':<{width}}{'precision':>10}{'recall':>10}{'F1':>10}{'support':>10}",
    ]
    for lbl in labels:
        lines.append(f"{lbl:<{width}}{metrics['precision'][lbl]:>10.4f}{metrics['recall'][lbl]:>10.4f}"
                     f"{metrics['f1'][lbl]:>10.4f}{metrics['support'][lbl]:>10}")
    if "contradicts_f1" in metrics:
        lines += ["", f"contradicts vs the rest: precision {metrics['contradicts_precision']:.4f}, "
                      f"recall {metrics['contradicts_recall']:.4f}, F1 {metrics['contradicts_f1']:.4f}"]
    col = max(9, *(len(lbl) for lbl in labels)) + 2
    corner = "gold \\ predicted"
    lines += ["", "confusion matrix (rows: gold, columns: predicted)",
              f"{corner:<{width + 5}}" + "".join(f"{lbl:>{col}}" for lbl in labels)]
    for lbl, row in zip(labels, metrics["confusion"]["matrix"]):
        lines.append(f"{lbl:<{width + 5}}" + "".join(f"{v:>{col}}" for v in row))
    return "\n".join(lines)


_SECTION_TITLES = {"fnc1_hold_out": "FNC-1 hold-out", "sick_trial": "SICK trial", "synthetic_dev": "synthetic dev",
                   "feedback_slice": "feedback slice"}
_CARD_SHOWN = {"name", "version", "date", "data", "metrics", "artifact", "training_time_seconds", "python",
               "labels", "label_mapping", "input", "pipeline", "calibration", "evaluation", "decision_rule",
               "decision", "libraries"}


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _metric_block(name: str, values: Mapping[str, Any]) -> list[str]:
    title = _SECTION_TITLES.get(name, name.replace("_", " "))
    head = [f"n {values['n']}"] if "n" in values else []
    if "fnc_relative_score" in values:  # training.evaluate stores a fraction
        head.append(f"FNC-1 relative score {100 * values['fnc_relative_score']:.2f}%")
    elif "relative_score" in values:  # this module stores a percentage
        head.append(f"FNC-1 relative score {values['relative_score']:.2f}%")
    if "macro_f1" in values:
        head.append(f"macro-F1 {values['macro_f1']:.4f}")
    out = [f"  {title}: " + ", ".join(head) if head else f"  {title}:"]
    done = {"n", "fnc_relative_score", "relative_score", "macro_f1"}
    for key, value in values.items():
        if key in done:
            continue
        if isinstance(value, Mapping) and all(not isinstance(v, (Mapping, list)) for v in value.values()):
            label = "per-class F1" if key == "f1" else key.replace("_", " ")
            out.append(f"    {label}: " + ", ".join(f"{k} {_scalar(v)}" for k, v in value.items()))
        else:
            out.append(f"    {key.replace('_', ' ')}: {_scalar(value)}")
    return out


def format_card(card: Mapping[str, Any], artifact: Path | None = None) -> str:
    """A model card as readable text: identity, data (with hashes when present), parameters, metrics,
    library versions, artifact size and training time. ``artifact`` is the model file (for its size when the
    card does not record it)."""
    lines = [f"name: {card.get('name', '?')}", f"version: {card.get('version', '?')}",
             f"date: {card.get('date', '?')}"]
    data = card.get("data")
    if data:
        lines.append("data sources:")
        for key, value in (data.items() if isinstance(data, Mapping) else enumerate(data)):
            if isinstance(value, Mapping):  # e.g. {"description": ..., "sha256": ...}
                text = ", ".join(f"{k} {_scalar(v)}" for k, v in value.items())
            else:
                text = _scalar(value)
            lines.append(f"  {key}: {text}")
    hashes = {k: v for k, v in card.items() if ("hash" in k or "sha" in k) and k not in _CARD_SHOWN}
    for key, value in hashes.items():
        lines.append(f"  {key}: {_scalar(value)}")
    params = {k: v for k, v in card.items() if k not in _CARD_SHOWN and k not in hashes and v is not None
              and not k.endswith("_version")}
    rule = card.get("decision_rule")
    if isinstance(rule, Mapping):
        params["decision_rule"] = rule.get("kind")
        if rule.get("weights"):
            params["class_weights"] = rule["weights"]
    calibration = card.get("calibration")
    if isinstance(calibration, Mapping) and "flag_threshold" in calibration:
        params["flag_threshold"] = calibration["flag_threshold"]
    if params:
        lines.append("parameters: " + ", ".join(f"{k} {_scalar(v)}" for k, v in params.items()))
    if card.get("pipeline"):
        lines.append(f"pipeline: {card['pipeline']}")
    metrics = card.get("metrics") or {}
    if metrics:
        lines.append("metrics:")
        for key, value in metrics.items():
            if isinstance(value, Mapping):
                lines += _metric_block(key, value)
            else:
                lines.append(f"  {key.replace('_', ' ')}: {_scalar(value)}")
    libs = {k.removesuffix("_version"): v for k, v in card.items() if k.endswith("_version")}
    if card.get("python"):
        libs["python"] = card["python"]
    if isinstance(card.get("libraries"), Mapping):
        libs.update(card["libraries"])
    if libs:
        lines.append("library versions: " + ", ".join(f"{k} {v}" for k, v in libs.items()))
    size = (card.get("artifact") or {}).get("bytes") if isinstance(card.get("artifact"), Mapping) else None
    if size is None and artifact is not None and artifact.is_file():
        size = artifact.stat().st_size
    name = (card.get("artifact") or {}).get("file") if isinstance(card.get("artifact"), Mapping) else None
    name = name or (artifact.name if artifact is not None else None)
    if size is not None:
        lines.append(f"artifact: {name or 'model file'}, {size / 2**20:.2f} MiB ({size} bytes)")
    timing = card.get("training_time_seconds")
    if isinstance(timing, Mapping):
        parts = [f"{k} {_scalar(v)} s" for k, v in timing.items() if k in ("total", "fit")]
        if timing.get("cpu_count"):
            parts.append(f"on {timing['cpu_count']} CPUs")
        text = ", ".join(parts) + (f" ({timing['note']})" if timing.get("note") else "")
        lines.append(f"training time: {text}")
    elif isinstance(metrics.get("train_seconds"), (int, float)):
        lines.append(f"training time: {metrics['train_seconds']:g} s")
    if card.get("decision"):
        lines.append(f"decision: {card['decision']}")
    return "\n".join(lines)
