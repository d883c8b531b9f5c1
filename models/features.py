"""FNC-1-style pair features with fact-consistency checks (module-level, skops-loadable).

Input to the transformers is a sequence of ``(claim, statement)`` string pairs.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.utils.validation import check_is_fitted

from .facts import DENIAL_CUES, NEGATION_CUES, Fact, cue_regex, extract_facts, unit_key
from .lexical import LexicalStanceEncoder
from .pair_input import PairInputMixin
from .reversals import reversals
from .text import normalize, split_sentences, tokenize

__all__ = ["PairFeaturizer", "StanceFeatures", "Mismatch", "fact_mismatches", "cue_hits", "FEATURE_NAMES", "EXTRA_FEATURE_NAMES",
           "REVERSAL_FEATURE_NAMES"]

_NUMERIC = {"quantity", "percent", "money"}

REFUTE_CUES = (
    "fake", "fraud", "hoax", "false", "deny", "denies", "denied", "denial", "not", "despite", "nope",
    "doubt", "doubts", "bogus", "debunk", "debunked", "pranks", "retract", "retracted", "untrue",
    "refute", "refuted", "rejected", "myth", "misleading", "tin giả", "bác bỏ", "phủ nhận",
    "sai sự thật", "không đúng", "bịa đặt", "xuyên tạc", "không", "chưa",
)
HEDGE_CUES = (
    "reportedly", "allegedly", "alleged", "claims", "claimed", "rumor", "rumors", "rumour", "unconfirmed",
    "may", "might", "could", "possibly", "apparently", "suggests", "appears", "purportedly", "report",
    "reports", "according", "unverified", "tin đồn", "được cho là", "nghi vấn", "có thể", "theo",
)
_STOP = {
    "the", "a", "an", "of", "in", "on", "at", "to", "for", "and", "or", "is", "are", "was", "were",
    "be", "by", "with", "that", "this", "it", "as", "from", "has", "have", "had", "its", "s", "will",
    "và", "của", "các", "những", "là", "có", "được", "đã", "trong", "với", "cho", "tại", "theo", "này",
}


_REFUTE_RE = cue_regex(REFUTE_CUES)
_HEDGE_RE = cue_regex(HEDGE_CUES)
_DENIAL_RE = cue_regex(DENIAL_CUES)
_NEG_ONLY_RE = cue_regex(NEGATION_CUES)


def cue_hits(text: str, kind: str = "refute") -> list[tuple[str, int, int]]:
    """Cue words of ``kind`` ("refute", "hedge", "denial", "negation") in ``text`` with offsets."""
    rx = {"refute": _REFUTE_RE, "hedge": _HEDGE_RE, "denial": _DENIAL_RE, "negation": _NEG_ONLY_RE}[kind]
    return [(m.group(0), m.start(), m.end()) for m in rx.finditer(text)]


@dataclass(frozen=True)
class Mismatch:
    """A fact in the claim that disagrees with a fact of the same kind/unit in the statement."""

    kind: str  # "figure" | "date"
    claim_fact: Fact
    statement_fact: Fact


def _years(facts: Sequence[Fact]) -> dict[int, Fact]:
    out: dict[int, Fact] = {}
    for f in facts:
        if f.kind == "year":
            out.setdefault(int(f.value), f)
        elif f.kind == "date" and isinstance(f.value, str) and f.value[:4].isdigit():
            out.setdefault(int(f.value[:4]), f)
    return out


def _same_value(a: Fact, b: Fact) -> bool:
    x, y = float(a.value), float(b.value)
    if math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9):
        return True
    if a.approx or b.approx:
        return abs(x - y) <= 0.2 * max(abs(x), abs(y))
    return False


def fact_mismatches(claim: str, statement: str) -> list[Mismatch]:
    """Figure and date disagreements between ``claim`` and ``statement``.

    A figure mismatch: the claim counts the same noun (unit) as the statement but with a value that
    no statement figure of that unit has. A date mismatch: both mention years and share none, or
    both give a full date in the same year with a different day/month.
    """
    cf, sf = extract_facts(claim), extract_facts(statement)
    out: list[Mismatch] = []
    s_by_unit: dict[tuple[str, str | None], list[Fact]] = defaultdict(list)
    for f in sf:
        if f.kind in _NUMERIC and f.unit:
            s_by_unit[(f.kind, unit_key(f.unit))].append(f)
    for f in cf:
        if f.kind not in _NUMERIC or not f.unit:
            continue
        cands = s_by_unit.get((f.kind, unit_key(f.unit)))
        if cands and not any(_same_value(f, g) for g in cands):
            out.append(Mismatch("figure", f, cands[0]))
    cy, sy = _years(cf), _years(sf)
    if cy and sy and not (set(cy) & set(sy)):
        c = next(iter(cy.values()))
        s = next(iter(sy.values()))
        out.append(Mismatch("date", c, s))
    else:
        cd = [f for f in cf if f.kind == "date" and len(str(f.value)) == 10]
        sd = [f for f in sf if f.kind == "date" and len(str(f.value)) == 10]
        if cd and sd and not ({f.value for f in cd} & {f.value for f in sd}):
            cy4 = {str(f.value)[:4] for f in cd}
            pair = next(((c, s) for c in cd for s in sd if str(s.value)[:4] in cy4 or str(c.value)[:4] == "????"), None)
            if pair:
                out.append(Mismatch("date", pair[0], pair[1]))
    return out


@lru_cache(maxsize=200_000)
def _tokset(text: str) -> frozenset[str]:
    return frozenset(t for t in tokenize(text) if t not in _STOP)


@lru_cache(maxsize=200_000)
def _sentences(text: str) -> tuple[str, ...]:
    sents = tuple(text[s:e] for s, e in split_sentences(text))
    return sents or (text,)


def _fact_features(claim: str, statement: str) -> list[float]:
    cf, sf = extract_facts(claim), extract_facts(statement)
    cnum = [f for f in cf if f.kind in _NUMERIC]
    snum = [f for f in sf if f.kind in _NUMERIC]
    svals = {round(float(f.value), 6) for f in snum} | {float(v) for v in _years(sf)}
    present = sum(1 for f in cnum if round(float(f.value), 6) in svals)
    mism = fact_mismatches(claim, statement)
    n_fig = sum(1 for m in mism if m.kind == "figure")
    n_date = sum(1 for m in mism if m.kind == "date")
    s_units = {unit_key(f.unit) for f in snum if f.unit}
    unit_match_same = sum(
        1 for f in cnum if f.unit and unit_key(f.unit) in s_units and any(
            _same_value(f, g) for g in snum if unit_key(g.unit) == unit_key(f.unit))
    )
    cy, sy = _years(cf), _years(sf)
    year_match = 1.0 if set(cy) & set(sy) else 0.0
    cent = {str(f.value).lower() for f in cf if f.kind == "entity"}
    slow = statement.lower()
    ent_cov = (sum(1 for e in cent if e in slow) / len(cent)) if cent else -1.0
    return [
        float(len(cnum)),
        float(len(snum)),
        present / len(cnum) if cnum else -1.0,
        float(n_fig),
        float(n_fig > 0),
        float(n_date),
        float(unit_match_same),
        year_match,
        float(bool(cy)),
        float(bool(sy)),
        ent_cov,
    ]


_FACT_NAMES = [
    "n_claim_num", "n_stmt_num", "claim_num_present", "n_fig_mismatch", "any_fig_mismatch",
    "n_date_mismatch", "n_unit_value_match", "year_match", "claim_has_year", "stmt_has_year", "entity_cov",
]


@lru_cache(maxsize=200_000)
def _cue_counts(text: str) -> tuple[int, int, int, int]:
    """Refuting, denial, negation and hedging cue counts of ``text`` (a claim meets several statements)."""
    return (len(_REFUTE_RE.findall(text)), len(_DENIAL_RE.findall(text)), len(_NEG_ONLY_RE.findall(text)),
            len(_HEDGE_RE.findall(text)))


def _lex_features(claim: str, statement: str) -> list[float]:
    ct, st = _tokset(claim), _tokset(statement)
    inter = len(ct & st)
    union = len(ct | st) or 1
    c_ref, c_den, c_neg, c_hed = _cue_counts(claim)
    s_ref, s_den, s_neg, s_hed = _cue_counts(statement)
    return [
        inter / union,
        inter / (len(ct) or 1),
        float(c_ref), float(s_ref), float(c_den), float(s_den), float(c_neg), float(s_neg),
        float((c_neg > 0) != (s_neg > 0)), float((c_den > 0) != (s_den > 0)),
        float(c_hed), float(s_hed),
    ]


_LEX_NAMES = [
    "jaccard", "claim_cov", "c_refute", "s_refute", "c_denial", "s_denial", "c_neg", "s_neg",
    "neg_mismatch", "denial_mismatch", "c_hedge", "s_hedge",
]

FEATURE_NAMES = (
    ["cos_word", "cos_char", "best_cos_word", "best_cos_char", "top3_cos", "n_sents", "best_pos",
     "log_len_claim", "log_len_stmt"]
    + [f"full_{n}" for n in _LEX_NAMES] + [f"best_{n}" for n in _LEX_NAMES]
    + [f"full_{n}" for n in _FACT_NAMES] + [f"best_{n}" for n in _FACT_NAMES]
)



EXTRA_FEATURE_NAMES = [
    "stmt_cov_best", "stmt_cov_full", "len_diff_best", "log_len_best_sent", "is_sentence_pair",
    "fig_mismatch_x_rel", "fig_match_x_rel", "fig_phrase_overlap", "refute_near_shared", "refute_top3",
    "neg_near_shared", "claim_cov_x_fig_mismatch",
]
_WORD_RE = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=20_000)
def _cue_starts(text: str, kind: str) -> tuple[int, ...]:
    rx = _REFUTE_RE if kind == "refute" else _NEG_ONLY_RE
    return tuple(m.start() for m in rx.finditer(text))


@lru_cache(maxsize=20_000)
def _word_starts(text: str) -> dict[str, np.ndarray]:
    pos: dict[str, list[int]] = defaultdict(list)
    for m in _WORD_RE.finditer(text):
        pos[m.group(0).lower()].append(m.start())
    return {w: np.asarray(p) for w, p in pos.items()}


def _near_shared(statement: str, shared: frozenset[str], kind: str, window: int = 40) -> float:
    """Cue words of ``kind`` in ``statement`` within ``window`` characters of a token shared with the claim."""
    if not shared:
        return 0.0
    hits = _cue_starts(statement, kind)
    if not hits:
        return 0.0
    words = _word_starts(statement)
    arrs = [words[w] for w in shared if w in words]
    if not arrs:
        return 0.0
    arr = np.concatenate(arrs)
    return float(sum(1 for h in hits if np.abs(arr - h).min() <= window))


def _phrase_overlap(claim: str, statement: str) -> float:
    """Best word overlap between the noun phrases of mismatching figures (0 if none)."""
    best = 0.0
    for m in fact_mismatches(claim, statement):
        if m.kind != "figure":
            continue
        a = _tokset(_unit_phrase(claim, m.claim_fact))
        b = _tokset(_unit_phrase(statement, m.statement_fact))
        if a and b:
            best = max(best, len(a & b) / len(a | b))
    return best


def _unit_phrase(text: str, f: Fact) -> str:
    return text[f.value_span[1]:f.end] if f.value_span else f.text


def _extra_features(claim: str, statement: str, best_sent: str, top3: str, rel: float,
                    best_fact: list[float], best_lex: list[float]) -> list[float]:
    ct, st, bt = _tokset(claim), _tokset(statement), _tokset(best_sent)
    any_fig = best_fact[_FACT_NAMES.index("any_fig_mismatch")]
    match = float(best_fact[_FACT_NAMES.index("n_unit_value_match")] > 0)
    shared = frozenset(ct & st)
    return [
        len(ct & bt) / (len(bt) or 1),
        len(ct & st) / (len(st) or 1),
        math.log1p(len(claim)) - math.log1p(len(best_sent)),
        math.log1p(len(best_sent)),
        float(len(_sentences(statement)) == 1),
        any_fig * rel,
        match * rel,
        _phrase_overlap(claim, best_sent),
        _near_shared(statement, shared, "refute"),
        float(len(_REFUTE_RE.findall(top3))),
        _near_shared(statement, shared, "negation"),
        best_lex[_LEX_NAMES.index("claim_cov")] * any_fig,
    ]


class PairFeaturizer(PairInputMixin, TransformerMixin, BaseEstimator):
    """Dense features for ``(claim, statement)`` pairs.

    Hashed word (1-2 gram) and char_wb (3-5 gram) TF-IDF with IDF fitted on the training texts gives
    cosine similarities for the full statement and for its best-matching sentence; lexical overlap,
    refuting/hedging/denial/negation cues (EN+VI) and fact-consistency features are computed on both.
    The fitted state is just two IDF vectors, so the artifact stays small.
    """

    def __init__(self, n_word_features: int = 2**18, n_char_features: int = 2**18, extra: bool = False,
                 reversal: bool = False) -> None:
        self.n_word_features = n_word_features
        self.n_char_features = n_char_features
        self.extra = extra
        self.reversal = reversal

    def _names(self) -> list[str]:
        # ``extra`` is absent on artifacts saved before it existed: they keep their original features.
        return (list(FEATURE_NAMES) + (EXTRA_FEATURE_NAMES if getattr(self, "extra", False) else [])
                + (REVERSAL_FEATURE_NAMES if getattr(self, "reversal", False) else []))

    # -- vectorisation -------------------------------------------------------
    def _hashers(self) -> tuple[HashingVectorizer, HashingVectorizer]:
        w = HashingVectorizer(n_features=self.n_word_features, token_pattern=r"(?u)\w+", ngram_range=(1, 2),
                              alternate_sign=False, norm=None, lowercase=True)
        c = HashingVectorizer(n_features=self.n_char_features, analyzer="char_wb", ngram_range=(3, 5),
                              alternate_sign=False, norm=None, lowercase=True)
        return w, c

    def vectorize(self, texts: Sequence[str]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """L2-normalised (word, char) TF-IDF rows for ``texts`` using the fitted IDF."""
        check_is_fitted(self, "word_tfidf_")
        w, c = self._hashers()
        texts = [normalize(t) for t in texts]
        return (self.word_tfidf_.transform(w.transform(texts)).tocsr(),
                self.char_tfidf_.transform(c.transform(texts)).tocsr())

    def fit(self, X: Sequence[tuple[str, str]], y: object = None) -> "PairFeaturizer":
        texts = sorted({normalize(t) for pair in X for t in pair})
        w, c = self._hashers()
        self.word_tfidf_ = TfidfTransformer(sublinear_tf=True).fit(w.transform(texts))
        self.char_tfidf_ = TfidfTransformer(sublinear_tf=True).fit(c.transform(texts))
        self.n_features_out_ = len(self._names())
        return self

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(self._names(), dtype=object)

    def transform(self, X: Sequence[tuple[str, str]]) -> np.ndarray:
        check_is_fitted(self, "word_tfidf_")
        pairs = [(normalize(c), normalize(s)) for c, s in X]
        n = len(pairs)
        extra = getattr(self, "extra", False)
        out = np.zeros((n, len(self._names())), dtype=np.float64)
        if n == 0:
            return out
        claims = sorted({c for c, _ in pairs})
        stmts = sorted({s for _, s in pairs})
        ci = {t: i for i, t in enumerate(claims)}
        si = {t: i for i, t in enumerate(stmts)}
        Cw, Cc = self.vectorize(claims)
        sent_lists = [_sentences(s) for s in stmts]
        offsets = np.cumsum([0] + [len(x) for x in sent_lists])
        flat = [t for x in sent_lists for t in x]
        # statements and their sentences vectorised once (a one-sentence statement is its own sentence)
        texts = {t: i for i, t in enumerate(dict.fromkeys(stmts + flat))}
        Uw, Uc = self.vectorize(list(texts))
        s_rows = np.fromiter((texts[t] for t in stmts), dtype=np.int64, count=len(stmts))
        t_rows = np.fromiter((texts[t] for t in flat), dtype=np.int64, count=len(flat))
        Sw, Sc, Tw, Tc = Uw[s_rows], Uc[s_rows], Uw[t_rows], Uc[t_rows]
        pc = np.fromiter((ci[c] for c, _ in pairs), dtype=np.int64, count=n)
        ps = np.fromiter((si[s] for _, s in pairs), dtype=np.int64, count=n)
        for lo in range(0, n, self._CHUNK):
            self._transform_chunk(pairs, np.arange(lo, min(lo + self._CHUNK, n)), pc, ps, (Cw, Cc), (Sw, Sc),
                                  (Tw, Tc), sent_lists, offsets, extra, out)
        return out


    #: Pairs per block of the row-wise similarity products (bounds the memory of the gathered rows).
    _CHUNK = 2048

    def _transform_chunk(self, pairs: list[tuple[str, str]], ks: np.ndarray, pc: np.ndarray, ps: np.ndarray,
                         C: tuple[sp.csr_matrix, sp.csr_matrix], S: tuple[sp.csr_matrix, sp.csr_matrix],
                         T: tuple[sp.csr_matrix, sp.csr_matrix], sent_lists: list[tuple[str, ...]],
                         offsets: np.ndarray, extra: bool, out: np.ndarray) -> None:
        """Features of the pairs ``ks`` into ``out``: every claim-vs-statement and claim-vs-sentence cosine of
        the block comes from one row-wise sparse product, not one product per statement."""
        (Cw, Cc), (Sw, Sc), (Tw, Tc) = C, S, T
        cpos, spos = pc[ks], ps[ks]
        full_w = _rowdot(Cw[cpos], Sw[spos])
        full_c = _rowdot(Cc[cpos], Sc[spos])
        nsent = offsets[spos + 1] - offsets[spos]
        seg = np.concatenate([[0], np.cumsum(nsent)[:-1]])  # where each pair's sentences start
        pair_of = np.repeat(np.arange(len(ks)), nsent)
        local = np.arange(len(pair_of)) - np.repeat(seg, nsent)  # sentence number within its statement
        sent = np.repeat(offsets[spos], nsent) + local
        sw = _rowdot(Cw[cpos[pair_of]], Tw[sent])
        sc = _rowdot(Cc[cpos[pair_of]], Tc[sent])
        comb = 0.5 * (sw + sc)
        # within each pair: sentences by descending combined cosine, ties by position (as a stable argsort)
        order = np.lexsort((local, -comb, pair_of))
        best_at = order[seg]
        rank = np.arange(len(order)) - np.repeat(seg, nsent)
        keep = rank < 3
        top3 = np.bincount(pair_of[order][keep], weights=comb[order][keep], minlength=len(ks)) / np.minimum(nsent, 3)
        for r, k in enumerate(ks):
            claim, stmt = pairs[k]
            j, bi, m = spos[r], best_at[r], int(nsent[r])
            best = int(local[bi])
            sents = sent_lists[j]
            bs = sents[best]
            row = [
                full_w[r], full_c[r], sw[bi], sc[bi], top3[r], math.log1p(m),
                best / max(m, 1), math.log1p(len(claim)), math.log1p(len(stmt)),
            ]
            best_lex = _lex_features(claim, bs)
            best_fact = _fact_features(claim, bs)
            row += _lex_features(claim, stmt) + best_lex
            row += _fact_features(claim, stmt) + best_fact
            if extra:
                t3 = " ".join(sents[i] for i in local[order[seg[r]:seg[r] + min(m, 3)]])
                rel = max(sw[bi], sc[bi])
                row += _extra_features(claim, stmt, bs, t3, rel, best_fact, best_lex)
            if getattr(self, "reversal", False):
                row += _reversal_features(claim, stmt, bs)
            out[k] = row


REVERSAL_FEATURE_NAMES = ["reversals_full", "reversals_best", "factual_reversals_best"]


def _reversal_features(claim: str, statement: str, best_sent: str) -> list[float]:
    best = reversals(claim, best_sent)
    return [float(len(reversals(claim, statement))), float(len(best)), float(sum(r.factual for r in best))]


def _rowdot(A: sp.csr_matrix, B: sp.csr_matrix) -> np.ndarray:
    """Dot product of each row of ``A`` with the same row of ``B``."""
    return np.asarray(A.multiply(B).sum(axis=1)).ravel()


Progress = Callable[[str, int, int], None]


def transform_in_chunks(featurizer: PairFeaturizer, X: Sequence[tuple[str, str]], progress: Progress | None = None,
                        chunks: int = 20) -> np.ndarray:
    """``featurizer.transform(X)`` in about ``chunks`` slices of pairs sorted by statement (a statement's pairs
    stay together, so its sentences are vectorised once), reporting ``progress("features", done, total)``."""
    if progress is None or len(X) < 2 * chunks:
        return featurizer.transform(X)
    order = sorted(range(len(X)), key=lambda i: X[i][1])
    out: np.ndarray | None = None
    step = -(-len(X) // chunks)
    for a in range(0, len(X), step):
        idx = order[a:a + step]
        part = featurizer.transform([X[i] for i in idx])
        if out is None:
            out = np.zeros((len(X), part.shape[1]))
        out[idx] = part
        progress("features", min(a + step, len(X)), len(X))
    return out


class StanceFeatures(PairInputMixin, TransformerMixin, BaseEstimator):
    """The classifier's input: :class:`PairFeaturizer` columns followed by :class:`LexicalStanceEncoder` ones.

    ``fit_transform`` returns the encoder's cross-fitted probabilities (stacking without leakage);
    ``vectorize`` is the pair featurizer's, so retrieval uses the same TF-IDF space as the features.
    """

    _needs_y = True

    def __init__(self, pairs: PairFeaturizer | None = None, lexical: LexicalStanceEncoder | None = None) -> None:
        self.pairs = pairs
        self.lexical = lexical

    def _parts(self) -> tuple[PairFeaturizer, LexicalStanceEncoder]:
        p = clone(self.pairs) if self.pairs is not None else PairFeaturizer(extra=True)
        lx = clone(self.lexical) if self.lexical is not None else LexicalStanceEncoder()
        return p, lx

    def fit(self, X: Sequence[tuple[str, str]], y: Sequence[str], groups: Sequence[object] | None = None) -> "StanceFeatures":
        self.pairs_, self.lexical_ = self._parts()
        self.pairs_.fit(X)
        self.lexical_.fit(X, y)
        self.n_features_out_ = len(self.get_feature_names_out())
        return self

    def fit_transform(self, X: Sequence[tuple[str, str]], y: Sequence[str] | None = None,
                      groups: Sequence[object] | None = None, progress: Progress | None = None) -> np.ndarray:
        """Fit both parts; the lexical columns are cross-fitted. ``progress(stage, done, total)`` is told
        about each chunk of pairs featurised and each fold fitted."""
        self.pairs_, self.lexical_ = self._parts()
        dense = transform_in_chunks(self.pairs_.fit(X), X, progress)
        lex = self.lexical_.fit_transform(X, y, groups=groups, progress=progress)
        self.n_features_out_ = dense.shape[1] + lex.shape[1]
        return np.hstack([dense, lex])

    def transform(self, X: Sequence[tuple[str, str]]) -> np.ndarray:
        check_is_fitted(self, "lexical_")
        return np.hstack([self.pairs_.transform(X), self.lexical_.transform(X)])

    def vectorize(self, texts: Sequence[str]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """L2-normalised (word, char) TF-IDF rows (see :meth:`PairFeaturizer.vectorize`)."""
        check_is_fitted(self, "pairs_")
        return self.pairs_.vectorize(texts)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "lexical_")
        return np.concatenate([self.pairs_.get_feature_names_out(), self.lexical_.get_feature_names_out()])
