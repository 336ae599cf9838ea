"""Lab triton_2_5: one version of "detector" (given — do not change). Each version scores
differently; `args["model_version"]` tells this instance which version it is."""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.version = int(args["model_version"])
        rng = np.random.default_rng(2500 + self.version)
        self.weights = rng.standard_normal(4).astype(np.float32)
        self.bias = np.float32(0.1 * self.version)

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "FEATURES").as_numpy()  # [batch, 4]
            score = np.tanh(x @ self.weights + self.bias)[:, None].astype(np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("SCORE", score)]))
        return responses
