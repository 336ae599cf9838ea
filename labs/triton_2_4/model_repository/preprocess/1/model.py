"""Lab triton_2_4: preprocess, raw sensor bytes -> the MLP's features (README, task 1)."""

import numpy as np  # noqa: F401
import triton_python_backend_utils as pb_utils  # noqa: F401


class TritonPythonModel:
    def execute(self, requests):
        """TODO: for each request, read RAW (uint8, [batch, 16]) and answer
        X = (RAW - 128) / 64 as float32."""
        raise NotImplementedError("TODO: preprocess")
