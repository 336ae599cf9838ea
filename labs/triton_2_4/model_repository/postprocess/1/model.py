"""Lab triton_2_4: postprocess, the MLP's logits -> label and probabilities (README, task 1)."""

import numpy as np  # noqa: F401
import triton_python_backend_utils as pb_utils  # noqa: F401


class TritonPythonModel:
    def execute(self, requests):
        """TODO: for each request, read Y (float32, [batch, 4]) and answer LABEL (int32,
        [batch, 1], the argmax) and PROB (float32, [batch, 4], the softmax of Y)."""
        raise NotImplementedError("TODO: postprocess")
