"""Calibration of class logits fitted on validation: temperature scaling and Platt scaling (one shared slope)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar

#: Calibration methods by config name.
METHODS = ("temperature", "platt", "none")
#: Search range of the inverse temperature 1/T (a separable validation split would drive T to 0).
INVERSE_TEMPERATURE_RANGE = (1e-3, 1e3)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of (N, K) logits, computed stably in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K) logits (class probabilities, float64)."""
    return np.exp(log_softmax(logits))


def check_logits(logits: np.ndarray, labels: np.ndarray, name: str = "logits") -> tuple[np.ndarray, np.ndarray]:
    """Check (N, K) finite logits against (N,) integer labels in [0, K).

    Args:
        logits: Class logits (or probabilities).
        labels: Class index of each example.
        name: What the array is, for the error message.

    Returns:
        The logits as float64 and the labels as int64.

    Raises:
        ValueError: On a shape mismatch, fewer than two classes, a non-finite value or a label out of range.
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"{name}: expected an (N, K) array with K >= 2 classes, got shape {z.shape}")
    if y.shape != (len(z),):
        raise ValueError(f"{name}: {len(z)} rows but labels of shape {y.shape}; expected ({len(z)},)")
    if not np.isfinite(z).all():
        raise ValueError(f"{name}: {int((~np.isfinite(z)).sum())} non-finite value(s)")
    if len(y) and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= z.shape[1]):
        raise ValueError(f"{name}: labels must be class indices in [0, {z.shape[1]}), got {np.unique(y)[:10]}")
    return z, y.astype(np.int64)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the validation negative log-likelihood of softmax(logits / T) (Guo et al. 2017).

    The NLL is convex in 1/T; 1/T is searched in `INVERSE_TEMPERATURE_RANGE` (bounded Brent on its logarithm), so a
    validation split the model separates perfectly gives the smallest temperature allowed rather than T = 0.

    Args:
        logits: (N, K) validation logits.
        labels: (N,) validation class indices.

    Returns:
        T > 0 (T > 1 softens over-confident probabilities).
    """
    z, y = check_logits(logits, labels, "validation logits")
    rows = np.arange(len(y))

    def nll(log_beta: float) -> float:
        return float(-log_softmax(z * np.exp(log_beta))[rows, y].mean())

    low, high = np.log(INVERSE_TEMPERATURE_RANGE)
    result = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(-result.x))


def platt_targets(labels: np.ndarray, k: int) -> np.ndarray:
    """Platt's (1999) smoothed targets, generalised to K classes.

    An example of class c gets (N_c + 1) / (N_c + 2) on its class and 1 / (N_c + 2) spread evenly over the other
    classes, N_c being the number of validation examples of class c. For K = 2 these are Platt's targets.

    Returns:
        (N, K) target probabilities.
    """
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    rest = 1.0 / (counts[labels] + 2.0)
    targets = np.repeat((rest / (k - 1))[:, None], k, axis=1)
    targets[np.arange(len(labels)), labels] = 1.0 - rest
    return targets


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Platt scaling: calibrated logits a·z + b, fitted on validation by cross-entropy against Platt's targets.

    One slope a shared by all classes and one bias per class (b_0 = 0). For K = 2 this is Platt's logistic regression
    on the logit difference z_1 - z_0: p_1 = sigmoid(a·(z_1 - z_0) + b_1). For K > 2 it is the same model with a
    bias per class (between temperature scaling, which has no bias, and vector scaling, which has a slope per class).
    The smoothed targets (`platt_targets`) keep a and b finite on a validation split the model separates.

    Args:
        logits: (N, K) validation logits.
        labels: (N,) validation class indices.

    Returns:
        (a, b): the slope and the (K,) biases.
    """
    z, y = check_logits(logits, labels, "validation logits")
    k = z.shape[1]
    targets = platt_targets(y, k)

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = params[0], np.concatenate([[0.0], params[1:]])
        logp = log_softmax(a * z + b)
        diff = (np.exp(logp) - targets) / len(z)
        return float(-(targets * logp).sum() / len(z)), np.concatenate([[(diff * z).sum()], diff[:, 1:].sum(axis=0)])

    start = np.concatenate([[1.0], np.zeros(k - 1)])
    result = minimize(loss, start, jac=True, method="L-BFGS-B")
    return float(result.x[0]), np.concatenate([[0.0], result.x[1:]])


def fit_calibration(logits: np.ndarray, labels: np.ndarray, method: str) -> dict[str, Any]:
    """Fit a calibration on validation logits.

    Args:
        logits: (N, K) validation logits.
        labels: (N,) validation class indices.
        method: `temperature`, `platt` or `none` (`METHODS`).

    Returns:
        The parameters: `{"method": "temperature", "temperature": T}`, `{"method": "platt", "slope": a,
        "bias": [b_0 = 0, b_1, ...]}` or `{"method": "none"}`.

    Raises:
        ValueError: For an unknown method or an empty validation split.
    """
    if method not in METHODS:
        raise ValueError(f"calibration {method!r} is unknown; use one of {', '.join(METHODS)}")
    if method == "none":
        return {"method": "none"}
    if len(labels) == 0:
        raise ValueError(f"calibration {method!r} needs validation examples; the validation split is empty")
    if method == "temperature":
        return {"method": "temperature", "temperature": fit_temperature(logits, labels)}
    slope, bias = fit_platt(logits, labels)
    return {"method": "platt", "slope": slope, "bias": bias.tolist()}


def calibrated_logits(logits: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Apply fitted calibration parameters (`fit_calibration`) to (N, K) logits.

    Returns:
        The calibrated logits (their softmax is the calibrated probabilities).
    """
    z = np.asarray(logits, dtype=np.float64)
    if params["method"] == "temperature":
        return z / params["temperature"]
    if params["method"] == "platt":
        return params["slope"] * z + np.asarray(params["bias"], dtype=np.float64)
    if params["method"] == "none":
        return z
    raise ValueError(f"calibration {params['method']!r} is unknown; use one of {', '.join(METHODS)}")
