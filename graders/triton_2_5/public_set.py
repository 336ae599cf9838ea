"""The lab's public model set, as the grader knows it: what `pipeline` must compute (the
grader's own copy of the numbers, so an edited params.json does not pass) and the
configuration the grader sets `detector` up with."""

from __future__ import annotations

import numpy as np

PUBLIC_MODELS = ("scale", "score", "pipeline")  # in load order: the ensemble last
SCALE_WEIGHT = np.array([0.5, -1.5, 2.0, 0.25], dtype=np.float32)
SCALE_BIAS = np.array([0.1, 0.0, -0.3, 1.0], dtype=np.float32)
SCORE_DIRECTION = np.array([0.5, -0.25, 1.0, 0.75], dtype=np.float32)


def pipeline_reference(raw: np.ndarray) -> np.ndarray:
    """SCORE for RAW [batch, 4]: tanh((RAW * weight + bias) @ direction), [batch, 1]."""
    scaled = raw.astype(np.float32) * SCALE_WEIGHT + SCALE_BIAS
    return np.tanh(scaled @ SCORE_DIRECTION)[:, None].astype(np.float32)


def detector_config(kind: str) -> dict:
    """detector's configuration as the lab ships it, without a version policy (the grader
    pins versions when it sets an item up)."""
    return {
        "name": "detector",
        "backend": "python",
        "max_batch_size": 8,
        "input": [{"name": "FEATURES", "data_type": "TYPE_FP32", "dims": [4]}],
        "output": [{"name": "SCORE", "data_type": "TYPE_FP32", "dims": [1]}],
        "instance_group": [{"kind": kind, "count": 1}],
    }
