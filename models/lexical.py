"""Word-level stance evidence: a linear model over the words of claim and statement (module-level, skops-loadable).

The dense pair features (similarities, cues, facts) say *how* a claim relates to a statement but not *which*
words tend to go with a stance: "hoax", "satirical", "no evidence" in a body, "claims" or "reportedly" in a
headline. UCLMR, one of the best FNC-1 systems, got much of its strength from term-frequency vectors of
headline and body plus their TF-IDF cosine. ``LexicalStanceEncoder`` fits a multinomial logistic regression on
exactly that representation and hands its four class probabilities to the gradient-boosted model as features
(stacking). Like scikit-learn's ``TargetEncoder``, ``fit_transform`` returns *cross-fitted* probabilities, so
the downstream model learns how far to trust them from predictions on pairs the linear model never saw,
while ``transform`` uses the model fitted on all the training data.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, StratifiedKFold
from sklearn.preprocessing import normalize as l2_normalize
from sklearn.utils.validation import check_is_fitted

from .pair_input import PairInputMixin
from .text import normalize

__all__ = ["LexicalStanceEncoder"]

Pair = tuple[str, str]
_TOKEN = r"(?u)\b\w+\b"  # every word, one-letter ones too: Vietnamese syllables are words here


class LexicalStanceEncoder(PairInputMixin, TransformerMixin, BaseEstimator):
    """Cross-fitted stance probabilities of a logistic regression on claim/statement term frequencies.

    Input: a sequence of ``(claim, statement)`` pairs. Output: one column per class (``classes_`` order),
    named ``lex_p_<class>``. ``fit``/``fit_transform`` need the labels ``y``; ``groups`` (e.g. the FNC-1 body
    id of each pair) keeps all pairs of a group in one fold, as in a split by body.
    """

    _needs_y = True

    def __init__(self, max_features: int = 5000, C: float = 1.0, n_folds: int = 5, max_iter: int = 300,
                 random_state: int = 0) -> None:
        self.max_features = max_features
        self.C = C
        self.n_folds = n_folds
        self.max_iter = max_iter
        self.random_state = random_state

    # -- representation ------------------------------------------------------
    def _design(self, pairs: Sequence[Pair]) -> sp.csr_matrix:
        claims = [c for c, _ in pairs]
        stmts = [s for _, s in pairs]
        cc = self.counts_.transform(claims).astype(np.float64)
        cs = self.counts_.transform(stmts).astype(np.float64)
        cos = np.asarray(self.idf_.transform(cc).multiply(self.idf_.transform(cs)).sum(axis=1))
        return sp.hstack([l2_normalize(cc), l2_normalize(cs), sp.csr_matrix(cos)], format="csr")

    def _classifier(self) -> LogisticRegression:
        return LogisticRegression(C=self.C, max_iter=self.max_iter)

    @staticmethod
    def _pairs(X: Sequence[Pair]) -> list[Pair]:
        return [(normalize(c), normalize(s)) for c, s in X]

    def _fit_vocabulary(self, pairs: Sequence[Pair]) -> None:
        texts = sorted({t for pair in pairs for t in pair})
        self.counts_ = CountVectorizer(max_features=self.max_features, token_pattern=_TOKEN)
        counts = self.counts_.fit_transform(texts)
        # plain ints: skops would store each numpy int64 of the vocabulary as its own array file
        self.counts_.vocabulary_ = {w: int(i) for w, i in self.counts_.vocabulary_.items()}
        self.idf_ = TfidfTransformer().fit(counts)

    # -- estimator API -------------------------------------------------------
    def fit(self, X: Sequence[Pair], y: Sequence[str], groups: Sequence[object] | None = None) -> "LexicalStanceEncoder":
        """Fit the vocabulary and the logistic regression on all pairs (``groups`` matters to fit_transform only)."""
        self._fit_all(X, y)
        return self

    def _fit_all(self, X: Sequence[Pair], y: Sequence[str] | None) -> sp.csr_matrix:
        """Fit on all pairs and return their design matrix (fit_transform's folds reuse it)."""
        if y is None:
            raise ValueError("LexicalStanceEncoder needs the stance labels y to fit")
        pairs = self._pairs(X)
        self._fit_vocabulary(pairs)
        D = self._design(pairs)
        self.model_ = self._classifier().fit(D, np.asarray(y))
        self.classes_ = self.model_.classes_
        self.n_features_out_ = len(self.classes_)
        return D

    def fit_transform(self, X: Sequence[Pair], y: Sequence[str] | None = None,
                      groups: Sequence[object] | None = None,
                      progress: Callable[[str, int, int], None] | None = None) -> np.ndarray:
        """Fit on all pairs; return out-of-fold probabilities (each row predicted by a model that never saw it).
        ``progress("word model", done, total)`` is told about each of the ``n_folds + 1`` fits."""
        D = self._fit_all(X, y)
        if progress is not None:
            progress("word model", 1, self.n_folds + 1)
        y = np.asarray(y)
        if groups is not None:
            splits = GroupKFold(n_splits=self.n_folds).split(D, y, np.asarray(groups))
        else:
            splits = StratifiedKFold(n_splits=self.n_folds, shuffle=True, random_state=self.random_state).split(D, y)
        out = np.zeros((D.shape[0], len(self.classes_)))
        fold = 0
        for train, test in splits:
            part = self._classifier().fit(D[train], y[train])
            cols = [list(part.classes_).index(c) for c in self.classes_ if c in part.classes_]
            known = [i for i, c in enumerate(self.classes_) if c in part.classes_]
            out[np.ix_(test, known)] = part.predict_proba(D[test])[:, cols]
            if progress is not None:
                fold += 1
                progress("word model", fold + 1, self.n_folds + 1)
        return out

    def transform(self, X: Sequence[Pair]) -> np.ndarray:
        """Probabilities of the model fitted on all training pairs."""
        check_is_fitted(self, "model_")
        if len(X) == 0:
            return np.zeros((0, len(self.classes_)))
        return self.model_.predict_proba(self._design(self._pairs(X)))

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "model_")
        return np.asarray([f"lex_p_{c}" for c in self.classes_], dtype=object)
