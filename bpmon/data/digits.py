"""The 8x8 handwritten digits, read from the ``digits.npz`` shipped inside this package.

The file is a one-off export of scikit-learn's bundled copy (see ``DIGITS_SOURCE.md``), so
scikit-learn is not a dependency. It holds ``images``, uint8 of shape ``(1797, 64)`` with pixel
intensities 0..16 in row-major order, and ``labels``, uint8 digits 0..9.
"""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

SIDE = 8
MAX_INTENSITY = 16.0
CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
# Row-major like the pixels, so feature k is the pixel at (k // 8, k % 8).
FEATURE_NAMES: tuple[str, ...] = tuple(f"px{r}_{c}" for r in range(SIDE) for c in range(SIDE))


def digits() -> tuple[FloatArray, IntArray]:
    """All 1,797 images as ``(X, labels)``: ``X`` is pixels / 16, so every feature is in [0, 1]."""
    with (files("bpmon.data") / "digits.npz").open("rb") as f, np.load(f) as archive:
        images = archive["images"]
        labels = archive["labels"]
    return images.astype(np.float64) / MAX_INTENSITY, labels.astype(np.intp)
