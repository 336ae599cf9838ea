"""Lab triton_2_4: the course's MLP (16 -> 32 -> 16 -> 4, ReLU between layers), given.

numpy only; the weights are mlp.npz next to this file (the grader puts the lab's own there).
"""

import os

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        path = os.path.join(args["model_repository"], args["model_version"], "mlp.npz")
        with np.load(path) as weights:
            self.layers = [(weights[f"fc{i}.weight"].T.copy(), weights[f"fc{i}.bias"].copy())
                           for i in (1, 2, 3)]

    def execute(self, requests):
        responses = []
        for request in requests:
            h = pb_utils.get_input_tensor_by_name(request, "X").as_numpy().astype(np.float32)
            for i, (w, b) in enumerate(self.layers):
                h = h @ w + b
                if i < len(self.layers) - 1:
                    h = np.maximum(h, 0.0)
            out = pb_utils.Tensor("Y", h.astype(np.float32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses
