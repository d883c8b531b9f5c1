"""The scikit-learn tags shared by the estimators whose input is a sequence of ``(claim, statement)`` pairs."""
from __future__ import annotations

from typing import Any

__all__ = ["PairInputMixin"]


class PairInputMixin:
    """Declares string-pair input (not a 2-D numeric array), so scikit-learn's numeric checks skip the estimator;
    ``_needs_y`` says whether fitting requires the labels."""

    _needs_y = False

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.target_tags.required = self._needs_y
        return tags
