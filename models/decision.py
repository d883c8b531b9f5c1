"""Decision rule on top of a fitted probabilistic classifier (module-level, skops-loadable).

``ReweightedClassifier`` multiplies the wrapped classifier's class probabilities by per-class weights and
renormalises them: ``p'(c) = w_c p(c) / sum_k w_k p(k)``. The weights are fitted on a validation slice of the
training data (whole FNC-1 bodies held out of a second fit of the same classifier), never on evaluation data.
This is the Bayes decision rule for a changed class prior / cost, so the argmax and the product's
``p(contradicts) >= 0.5`` flag move together.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import f1_score

__all__ = ["ReweightedClassifier", "fit_class_weights"]


class ReweightedClassifier(ClassifierMixin, BaseEstimator):
    """A fitted classifier whose probabilities are re-weighted per class (``weights`` in ``classes_`` order)."""

    def __init__(self, estimator: object = None, weights: Sequence[float] | None = None) -> None:
        self.estimator = estimator
        self.weights = weights

    def _prepare(self) -> "ReweightedClassifier":
        self.classes_ = np.asarray(self.estimator.classes_)
        w = np.ones(len(self.classes_)) if self.weights is None else np.asarray(self.weights, dtype=float)
        if w.shape != (len(self.classes_),) or not np.all(w > 0):
            raise ValueError(f"weights must be {len(self.classes_)} positive numbers, got {self.weights!r}")
        self.weights_ = w
        return self

    @classmethod
    def from_fitted(cls, estimator: object, weights: Sequence[float]) -> "ReweightedClassifier":
        return cls(estimator, [float(v) for v in weights])._prepare()

    def fit(self, X: object, y: object, **fit_params: object) -> "ReweightedClassifier":
        self.estimator.fit(X, y, **fit_params)
        return self._prepare()

    def predict_proba(self, X: object) -> np.ndarray:
        q = np.asarray(self.estimator.predict_proba(X)) * self.weights_
        return q / q.sum(axis=1, keepdims=True)

    def predict(self, X: object) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def fit_class_weights(gold: Sequence[int], proba: np.ndarray, score: Callable[[np.ndarray], float] | None = None,
                      fixed: int | None = None, grid: Sequence[float] | None = None,
                      rounds: int = 3) -> tuple[np.ndarray, float]:
    """Coordinate search for per-class weights maximising ``score(pred)`` (default: macro-F1) on a validation slice.

    ``gold``: class indices into the columns of ``proba``; ``fixed``: a column whose weight stays 1 (the weights
    are scale-free). Returns the weights and the best score.
    """
    gold = np.asarray(gold)
    k = proba.shape[1]
    if score is None:
        def score(pred: np.ndarray) -> float:
            return float(f1_score(gold, pred, labels=list(range(k)), average="macro", zero_division=0))
    grid = np.exp(np.linspace(np.log(0.25), np.log(16.0), 25)) if grid is None else np.asarray(grid)
    fixed = k - 1 if fixed is None else fixed
    w = np.ones(k)
    best = score((proba * w).argmax(1))
    for _ in range(rounds):
        changed = False
        for j in range(k):
            if j == fixed:
                continue
            for g in grid:
                w2 = w.copy()
                w2[j] = g
                s = score((proba * w2).argmax(1))
                if s > best + 1e-9:
                    best, w, changed = s, w2, True
        if not changed:
            break
    return w, best
