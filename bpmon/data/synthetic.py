"""The generated data sets: xor, circle, moons, spiral and blobs, all in two dimensions.

Each generator returns ``(X, labels)``: ``X`` float64 of shape ``(n, 2)`` and ``labels`` the
integer class index of each point (0..C-1), in generation order. ``noise`` is the standard
deviation of gaussian noise: added to the points' coordinates after their labels are decided
(xor, circle, moons, blobs) or to the angle along a spiral arm (spiral); 0 gives the clean
shape. Encoding the labels as targets,
splitting and standardising are left to :func:`bpmon.data.load_dataset`, so that every set gets
exactly the same treatment. A huge ``noise`` can overflow points to inf or NaN; the generators
do not check, :func:`~bpmon.data.load_dataset` does (and keeps NumPy's warning off the screen).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# The story's circle: points inside this radius are class 1.
CIRCLE_RADIUS = 1.5
# Blob centres are drawn uniformly from [-BLOB_BOX, BLOB_BOX]^2, a scale comparable to the other
# sets, so that a small sigmoid network sees similar input magnitudes whichever set it trains on.
BLOB_BOX = 3.0
# Radians swept by each spiral arm, as in the cs231n notes.
SPIRAL_TURN = 4.0


def xor(noise: float = 0.0, seed: int = 0) -> tuple[FloatArray, IntArray]:
    """The four corners of the unit square; the label is ``x1 XOR x2``. A ``noise`` above 0
    moves each corner by gaussian noise of that standard deviation (the labels stay)."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    if noise > 0:
        X = X + np.random.default_rng(seed).normal(0.0, noise, size=X.shape)
    return X, np.array([0, 1, 1, 0], dtype=np.intp)


def circle(n: int, seed: int, noise: float = 0.0) -> tuple[FloatArray, IntArray]:
    """``n`` standard-normal points scaled by 2; label 1 inside radius 1.5 (``r^2 < 2.25``).

    This reproduces the story's ``np.random.seed(seed); X = np.random.randn(n, 2) * 2`` number for
    number. A private legacy ``RandomState`` gives the same stream as the global seed without
    touching NumPy's global state, which the engine's threads may rely on.

    A ``noise`` above 0 then moves every point by gaussian noise of that standard deviation,
    after its label was decided, as the TensorFlow Playground does: points near the circle
    cross it and the classes overlap. At 0 the points are the story's.
    """
    X = np.random.RandomState(seed).randn(n, 2) * 2
    inside = X[:, 0] ** 2 + X[:, 1] ** 2 < CIRCLE_RADIUS**2
    if noise > 0:
        X = X + np.random.default_rng(seed).normal(0.0, noise, size=X.shape)
    return X, inside.astype(np.intp)


def moons(n: int, noise: float, seed: int) -> tuple[FloatArray, IntArray]:
    """Two interleaving half circles (as scikit-learn's ``make_moons``) plus gaussian ``noise``.

    The upper moon (class 0) gets ``n // 2`` points and the lower one (class 1) the rest.
    """
    rng = np.random.default_rng(seed)
    n_upper = n // 2
    n_lower = n - n_upper
    t_upper = np.linspace(0.0, np.pi, n_upper)
    t_lower = np.linspace(0.0, np.pi, n_lower)
    upper = np.column_stack([np.cos(t_upper), np.sin(t_upper)])
    lower = np.column_stack([1.0 - np.cos(t_lower), 0.5 - np.sin(t_lower)])
    X = np.concatenate([upper, lower]) + rng.normal(0.0, noise, size=(n, 2))
    labels = np.concatenate([np.zeros(n_upper, np.intp), np.ones(n_lower, np.intp)])
    return X, labels


def balanced_labels(n: int, classes: int) -> IntArray:
    """Labels 0..classes-1 in runs of (almost) equal length: class sizes differ by at most one."""
    return (np.arange(n) * classes) // n


def spiral(n: int, classes: int, noise: float, seed: int) -> tuple[FloatArray, IntArray]:
    """The cs231n spiral: ``classes`` arms, ``n`` points in all, angle noise of std ``noise``.

    Along arm ``j`` the radius grows linearly from 0 to 1 while the angle runs from ``4 j`` to
    ``4 (j + 1)`` radians, so neighbouring arms interleave and no linear boundary separates them.
    """
    rng = np.random.default_rng(seed)
    labels = balanced_labels(n, classes)
    sizes = np.bincount(labels, minlength=classes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    position = np.arange(n) - starts[labels]
    # A class of one point sits at the centre instead of dividing by zero.
    radius = position / np.maximum(sizes[labels] - 1, 1)
    angle = SPIRAL_TURN * (labels + radius) + rng.normal(0.0, noise, size=n)
    X = np.column_stack([radius * np.sin(angle), radius * np.cos(angle)])
    return X, labels


def blobs(n: int, classes: int, noise: float, seed: int) -> tuple[FloatArray, IntArray]:
    """``classes`` isotropic gaussian blobs of std ``noise`` around seeded random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-BLOB_BOX, BLOB_BOX, size=(classes, 2))
    labels = balanced_labels(n, classes)
    X = centres[labels] + rng.normal(0.0, noise, size=(n, 2))
    return X, labels
