"""The linear probe: a standardised logistic regression fitted on frozen features.

Used by the frozen-backbone evaluation (:func:`iic_helpers.finetune.linear_probe`) and by
the synthetic set's motion baselines (:mod:`iic_helpers.data.motion_baselines`). It depends
on nothing else in the package, so both may import it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["linear_probe_accuracy"]


def linear_probe_accuracy(
    train_x: Any,
    train_y: Any,
    test_x: Any,
    test_y: Any,
    *,
    c: float = 1.0,
    seed: int = 0,
) -> float:
    """Fit a standardised multinomial logistic regression and return test accuracy.

    Args:
        train_x: ``(N, D)`` features; train_y: ``(N,)`` integer labels.
        test_x: ``(M, D)`` features; test_y: ``(M,)`` integer labels.
        c: inverse L2 regularisation strength (scikit-learn's ``C``).
        seed: random state of the solver.

    Returns:
        Fraction of test samples classified correctly.
    """
    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    train_y, test_y = np.asarray(train_y).ravel(), np.asarray(test_y).ravel()
    if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"features must be (N, D) and (M, D), got {train_x.shape}, {test_x.shape}")
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError("features and labels must have the same length")
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=c, max_iter=5000, random_state=seed)
    )
    model.fit(train_x, train_y)
    return float((model.predict(test_x) == test_y).mean())
