"""scikit-learn's estimator checks on the custom transformers, plus the pair-input behaviour they cannot test.

The transformers take ``(claim, statement)`` string pairs, so they declare ``input_tags.two_d_array=False`` and
scikit-learn's full ``check_estimator`` (which feeds numeric arrays) skips them by design. The API checks that do
not need numeric input run on each of them; the data-dependent conventions (fit returns self, NotFittedError
before fit, output width = feature names, clone is unfitted, parameters untouched by fit, deterministic output)
are checked on real pairs.
"""
from __future__ import annotations

import numpy as np
import pytest
import sklearn.utils.estimator_checks as ec
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import get_tags

from models.features import PairFeaturizer, StanceFeatures
from models.lexical import LexicalStanceEncoder

API_CHECKS = [
    "check_estimator_cloneable", "check_estimator_repr", "check_no_attributes_set_in_init",
    "check_parameters_default_constructible", "check_get_params_invariance", "check_set_params",
    "check_estimator_tags_renamed", "check_valid_tag_types", "check_mixin_order",
    "check_do_not_raise_errors_in_init_or_set_params",
]

SMALL = dict(n_word_features=2**12, n_char_features=2**12)
ESTIMATORS = [
    PairFeaturizer(**SMALL),
    PairFeaturizer(extra=True, **SMALL),
    LexicalStanceEncoder(max_features=200, n_folds=2),
    StanceFeatures(PairFeaturizer(extra=True, **SMALL), LexicalStanceEncoder(max_features=200, n_folds=2)),
]

PAIRS = [
    ("Police arrested 72 suspects in 2019", "In 2019 the department arrested 27 suspects."),
    ("The department arrested 27 suspects in 2019", "In 2019 the department arrested 27 suspects."),
    ("Ministry denies it arrested anyone", "In 2019 the department arrested 27 suspects."),
    ("Football club wins the cup", "In 2019 the department arrested 27 suspects."),
    ("Bộ Công an bắt 121 đối tượng", "Năm 2019, Cục đã bắt giữ 121 đối tượng."),
    ("Bộ Công an bắt 112 đối tượng", "Năm 2019, Cục đã bắt giữ 121 đối tượng."),
    ("Officials say 555 criminals were extradited", "The ministry extradited 555 foreign criminals."),
    ("Officials say 505 criminals were extradited", "The ministry extradited 555 foreign criminals."),
]
LABELS = ["contradicts", "supports", "contradicts", "unrelated", "supports", "contradicts", "supports", "contradicts"]


def _ids(est: object) -> str:
    return type(est).__name__ + ("+extra" if getattr(est, "extra", False) else "")


@pytest.mark.parametrize("check", API_CHECKS)
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_sklearn_api_checks(estimator: object, check: str) -> None:
    getattr(ec, check)(type(estimator).__name__, clone(estimator))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_declares_string_pair_input(estimator: object) -> None:
    tags = get_tags(estimator)
    assert tags.input_tags.string and not tags.input_tags.two_d_array


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_fit_transform_conventions_on_pairs(estimator: object) -> None:
    est = clone(estimator)
    params = est.get_params(deep=False)
    with pytest.raises(NotFittedError):
        est.transform(PAIRS)
    assert est.fit(PAIRS, LABELS) is est
    # fit sets only trailing-underscore attributes and leaves the constructor parameters alone
    assert {k: repr(v) for k, v in est.get_params(deep=False).items()} == {k: repr(v) for k, v in params.items()}
    out = est.transform(PAIRS)
    assert out.shape == (len(PAIRS), len(est.get_feature_names_out()))
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out, est.transform(PAIRS))  # deterministic
    np.testing.assert_array_equal(out[3:5], est.transform(PAIRS[3:5]))  # rows independent of the batch
    assert est.transform([]).shape == (0, out.shape[1])
    with pytest.raises(NotFittedError):
        clone(est).transform(PAIRS)
    ft = clone(estimator).fit_transform(PAIRS, LABELS)
    assert ft.shape == out.shape


def test_lexical_encoder_fit_transform_is_cross_fitted() -> None:
    """Each training row's probabilities come from a model that did not see the row (like TargetEncoder)."""
    pairs = PAIRS * 3
    labels = LABELS * 3
    enc = LexicalStanceEncoder(max_features=200, n_folds=3)
    crossed = enc.fit_transform(pairs, labels, groups=[i % 8 for i in range(len(pairs))])
    full = enc.transform(pairs)
    assert crossed.shape == full.shape == (len(pairs), len(enc.classes_))
    np.testing.assert_allclose(full.sum(axis=1), 1.0)
    assert not np.allclose(crossed, full)
    # a model that saw the rows fits them better than the cross-fitted predictions do
    idx = [list(enc.classes_).index(lbl) for lbl in labels]
    rows = np.arange(len(pairs))
    assert full[rows, idx].mean() > crossed[rows, idx].mean()


def test_lexical_encoder_needs_labels() -> None:
    with pytest.raises(ValueError, match="labels"):
        LexicalStanceEncoder().fit(PAIRS, None)
