"""The lab's MLP computed by the grader: float64 numpy from mlp.npz (the numbers of the
lab's mlp.pt, exported by make_weights.py and checked equal by the project's tests), so the
grading process needs no torch import (~1.5 s)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class ReferenceNet:
    def __init__(self, weights: Path) -> None:
        with np.load(weights) as state:
            self.layers = [(state[f"fc{i}.weight"].astype(np.float64),
                            state[f"fc{i}.bias"].astype(np.float64)) for i in (1, 2, 3)]

    def __call__(self, x) -> np.ndarray:
        h = np.asarray(x, dtype=np.float32).astype(np.float64)
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h
