"""Lab triton_2_5: "scale" version 1 — SCALED = RAW * weight + bias, per feature, with the
numbers in params.json beside this file."""

import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        with open(os.path.join(args["model_repository"], "params.json")) as f:
            params = json.load(f)
        self.weight = np.asarray(params["weight"], dtype=np.float32)
        self.bias = np.asarray(params["bias"], dtype=np.float32)

    def execute(self, requests):
        responses = []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "RAW").as_numpy()  # [batch, 4]
            scaled = (raw * self.weight + self.bias).astype(np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("SCALED", scaled)]))
        return responses
