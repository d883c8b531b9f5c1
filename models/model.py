"""Stance model: retrieval of official statements + calibrated pair classifier + reasons."""
from __future__ import annotations

import json
import zipfile
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from .features import PairFeaturizer, StanceFeatures, cue_hits, fact_mismatches
from .index import StatementIndex
from .reversals import reversals
from .text import normalize

#: Below this many pairs, prediction runs on one OpenMP thread.
SMALL_BATCH = 2000

__all__ = [
    "LABELS", "Reason", "Judgement", "StanceModel", "load_model", "save_model",
    "DEFAULT_MODEL_PATH", "TRUSTED_TYPES", "StatementIndex",
]

LABELS: tuple[str, ...] = ("contradicts", "supports", "discusses", "unrelated")
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "artifacts" / "stance.skops"

# Every non-default type that may appear in a stance artifact. Anything else is refused.
TRUSTED_TYPES: tuple[str, ...] = (
    "models.features.PairFeaturizer",
    "models.features.StanceFeatures",
    "models.lexical.LexicalStanceEncoder",
    "sklearn.feature_extraction.text.CountVectorizer",
    "sklearn.pipeline.Pipeline",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.link.Interval",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.frozen._frozen.FrozenEstimator",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.preprocessing._data.StandardScaler",
    "collections.OrderedDict",
    "numpy.dtype",
    "builtins.tuple",
    "builtins.slice",
    "numpy.float64",
    "numpy.int64",
    "numpy.ndarray",
    "scipy.sparse._csr.csr_matrix",
    "sklearn.utils._bunch.Bunch",
    "sklearn.ensemble._hist_gradient_boosting.common.PREDICTOR_RECORD_DTYPE",
)


@dataclass(frozen=True)
class Reason:
    """Why a judgement was made, in press-officer words, with offsets into claim and statement."""

    kind: str
    text: str
    claim_span: tuple[int, int] | None = None
    statement_span: tuple[int, int] | None = None


@dataclass(frozen=True)
class Judgement:
    """Stance of one official statement towards one claim."""

    statement_index: int
    label: str
    score: float
    probabilities: dict[str, float] = field(default_factory=dict)
    reasons: list[Reason] = field(default_factory=list)
    relevance: float = 0.0


def explain(claim: str, statement: str, label: str) -> list[Reason]:
    """Fact mismatches and cue words between ``claim`` and ``statement``.

    ``Reason.text`` is the sentence without its kind (the UI prints ``kind: text``); ``claim_span`` and
    ``statement_span`` are character offsets into the given strings: the number itself for figures, the
    date/year mention for dates, the cue word for denial/negation/wording.
    """
    reasons: list[Reason] = []
    for m in fact_mismatches(claim, statement):
        cf, sf = m.claim_fact, m.statement_fact
        if m.kind == "figure":
            unit = sf.unit or ""
            c_num = claim[cf.value_span[0]:cf.value_span[1]]
            s_num = statement[sf.value_span[0]:sf.value_span[1]]
            s_phrase = sf.text if sf.text else s_num
            c_phrase = c_num + s_phrase[s_phrase.find(s_num) + len(s_num):] if s_num in s_phrase else cf.text
            text = f"release says {s_phrase}, claim says {c_phrase}"
            if unit and unit not in text:
                text += f" ({unit})"
        else:
            text = f"release says {sf.text}, claim says {cf.text}"
        reasons.append(Reason(m.kind, text, cf.value_span, sf.value_span))
    for rv in reversals(claim, statement):
        if rv.factual:
            reasons.append(Reason("reversal", f'release says "{rv.statement_word}", claim says "{rv.claim_word}"',
                                  rv.claim_span, rv.statement_span))
    c_den = cue_hits(claim, "denial")
    s_den = cue_hits(statement, "denial")
    if c_den and not s_den:
        w, a, b = c_den[0]
        reasons.append(Reason("denial", f'claim says "{w}", the release states it as fact', (a, b), None))
    elif s_den and not c_den:
        w, a, b = s_den[0]
        reasons.append(Reason("denial", f'release says "{w}"', None, (a, b)))
    c_neg = cue_hits(claim, "negation")
    s_neg = cue_hits(statement, "negation")
    if bool(c_neg) != bool(s_neg):
        if c_neg:
            w, a, b = c_neg[0]
            reasons.append(Reason("negation", f'claim says "{w}", the release does not', (a, b), None))
        else:
            w, a, b = s_neg[0]
            reasons.append(Reason("negation", f'release says "{w}", the claim does not', None, (a, b)))
    if label == "contradicts" and not reasons:
        c_hits, s_hits = cue_hits(claim, "refute"), cue_hits(statement, "refute")
        if c_hits:
            w, a, b = c_hits[0]
            reasons.append(Reason("wording", f'claim uses the contradicting cue "{w}"', (a, b), None))
        elif s_hits:
            w, a, b = s_hits[0]
            reasons.append(Reason("wording", f'release uses the contradicting cue "{w}"', None, (a, b)))
        else:
            reasons.append(Reason("similarity", "the claim's wording conflicts with the release", None, None))
    return reasons


class StanceModel:
    """A fitted stance pipeline (``PairFeaturizer`` -> classifier) plus statement retrieval."""

    def __init__(self, pipeline: Any, card: dict | None = None, version: str | None = None) -> None:
        self.pipeline = pipeline
        self.card = dict(card or {})
        self.version = version or str(self.card.get("version", "unversioned"))
        classes = [str(c) for c in pipeline.classes_]
        missing = set(LABELS) - set(classes)
        if missing:
            raise ValueError(f"model classes {classes} lack labels {sorted(missing)}")
        self._order = np.array([classes.index(lbl) for lbl in LABELS])

    @property
    def featurizer(self) -> "PairFeaturizer | StanceFeatures":
        """The features step (``vectorize`` gives the TF-IDF space used for retrieval)."""
        return self.pipeline.steps[0][1]

    def predict_proba_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Probabilities, shape ``(n, 4)`` in :data:`LABELS` order, for ``(claim, statement)`` pairs."""
        if len(pairs) == 0:
            return np.zeros((0, len(LABELS)))
        X = [(normalize(c), normalize(s)) for c, s in pairs]
        # OpenMP threads cost far more than they save on a small batch (seconds instead of milliseconds on a
        # busy 2-core machine): small batches are predicted on one thread.
        limit = threadpool_limits(limits=1, user_api="openmp") if len(X) < SMALL_BATCH else nullcontext()
        with limit:
            return np.asarray(self.pipeline.predict_proba(X))[:, self._order]

    def index(self, statements: Sequence[str], *, key: Any = None) -> StatementIndex:
        """A :class:`~models.index.StatementIndex` of ``statements`` in this model's TF-IDF space, built once and
        passed to :meth:`check` for any number of claim batches (``key``: what the caller caches it under)."""
        return StatementIndex.build(self.featurizer, statements, key=key)

    def retrieve(self, claims: Sequence[str], statements: Sequence[str]) -> np.ndarray:
        """Dense cosine similarity matrix ``(n_claims, n_statements)``: mean of word and char TF-IDF cosines.

        The exact reference of :meth:`check`'s ranking, for small sets only: it re-vectorises the statements and
        holds ``n_claims x n_statements`` float64 values (``check`` uses a :class:`StatementIndex` instead).
        """
        f = self.featurizer
        Cw, Cc = f.vectorize(claims)
        Sw, Sc = f.vectorize(statements)
        return 0.5 * ((Cw @ Sw.T).toarray() + (Cc @ Sc.T).toarray())

    def check(self, claims: Sequence[str], statements: "Sequence[str] | StatementIndex",
              top_k: int = 3) -> list[list[Judgement]]:
        """For each claim, judge its ``top_k`` most similar statements (sorted by relevance).

        ``statements`` is a list of texts (indexed for this call only) or a :class:`StatementIndex` built once
        with :meth:`index`; ``Judgement.statement_index`` is a position in that list / the index's texts, and
        the reasons' statement spans are offsets into the normalised statement (``index.texts``).
        """
        claims = [normalize(c) for c in claims]
        if not claims:
            return []
        index = statements if isinstance(statements, StatementIndex) else self.index(statements)
        if len(index) == 0:
            return [[] for _ in claims]
        k = max(1, min(top_k, len(index)))
        Cw, Cc = self.featurizer.vectorize(claims)
        top, relevance = index.search(Cw, Cc, k)
        texts = index.texts
        pairs = [(claims[i], texts[j]) for i in range(len(claims)) for j in top[i]]
        proba = self.predict_proba_pairs(pairs)
        out: list[list[Judgement]] = []
        r = 0
        for i in range(len(claims)):
            row: list[Judgement] = []
            for n_j, j in enumerate(top[i]):
                p = proba[r]
                r += 1
                lab = LABELS[int(np.argmax(p))]
                probs = {lbl: float(p[n]) for n, lbl in enumerate(LABELS)}
                row.append(Judgement(int(j), lab, float(p.max()), probs,
                                     explain(claims[i], texts[j], lab), float(relevance[i, n_j])))
            out.append(row)
        return out


def save_model(model: StanceModel, path: str | Path) -> None:
    """Write ``model.pipeline`` with skops to ``path`` and its card to ``<stem>.card.json`` beside it."""
    import skops.io as sio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(model.pipeline, path, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    card = dict(model.card)
    card.setdefault("version", model.version)
    write_card(path, card)


def write_card(path: str | Path, card: dict) -> None:
    """Write ``card`` as the model card of the artifact at ``path`` (``<stem>.card.json``)."""
    card_path(path).write_text(json.dumps(card, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")


def card_path(path: str | Path) -> Path:
    """``models/artifacts/stance.skops`` -> ``models/artifacts/stance.card.json``."""
    path = Path(path)
    return path.with_name(path.name.split(".")[0] + ".card.json")


def load_model(path: str | Path | None = None) -> StanceModel:
    """Load a stance model saved by :func:`save_model` (default: the committed artifact).

    Raises ``FileNotFoundError`` if the file is missing and ``ValueError`` if it contains types outside
    :data:`TRUSTED_TYPES` or is not a valid skops file.
    """
    import skops.io as sio

    path = Path(path) if path is not None else DEFAULT_MODEL_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"stance model not found at {path}; train one with "
            f"`python -m models.training --data <shared/data> --out {path}`")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # corrupt / not a skops file
        raise ValueError(f"{path} is not a readable skops model file: {exc}") from exc
    bad = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if bad:
        raise ValueError(f"refusing to load {path}: it contains untrusted types {bad}")
    pipeline = sio.load(path, trusted=list(untrusted))
    cpath = card_path(path)
    card = json.loads(cpath.read_text(encoding="utf-8")) if cpath.is_file() else {}
    return StanceModel(pipeline, card, card.get("version"))
