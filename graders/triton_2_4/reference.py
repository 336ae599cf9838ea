"""The lab's pipeline computed by the grader: raw bytes -> features -> the course's MLP ->
label and probabilities (float64 numpy; the MLP from triton_2_1)."""

from __future__ import annotations

import numpy as np

# graders/ is on sys.path (pytest imports grader packages from there)
from triton_2_1.grader_models import WEIGHTS_NPZ
from triton_2_1.reference_net import ReferenceNet

OFFSET, SCALE = 128.0, 64.0   # README: X = (RAW - 128) / 64


class ReferencePipeline:
    def __init__(self) -> None:
        self.net = ReferenceNet(WEIGHTS_NPZ)

    def features(self, raw: np.ndarray) -> np.ndarray:
        return (raw.astype(np.float64) - OFFSET) / SCALE

    def logits(self, raw: np.ndarray) -> np.ndarray:
        return self.net(self.features(raw).astype(np.float32))

    def __call__(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = self.logits(raw)
        e = np.exp(y - y.max(axis=1, keepdims=True))
        return np.argmax(y, axis=1), e / e.sum(axis=1, keepdims=True)


def hidden_raw(rng: np.random.Generator, rows: int, *, repeat: bool = False) -> np.ndarray:
    """uint8 rows over the whole range, the extremes 0 and 255 included; `repeat`: the
    same row twice in one request."""
    raw = rng.integers(0, 256, size=(rows, 16), dtype=np.uint8)
    raw[0, :2] = (0, 255)
    if repeat and rows > 1:
        raw[-1] = raw[0]
    return raw
