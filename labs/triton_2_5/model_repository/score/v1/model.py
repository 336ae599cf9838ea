"""Lab triton_2_5: "score" version 1 — SCORE = tanh(SCALED @ direction), one per row."""

import numpy as np
import triton_python_backend_utils as pb_utils

DIRECTION = np.array([0.5, -0.25, 1.0, 0.75], dtype=np.float32)


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "SCALED").as_numpy()  # [batch, 4]
            score = np.tanh(x @ DIRECTION)[:, None].astype(np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("SCORE", score)]))
        return responses
