"""Lab triton_2_4: "sampler", given (README, task 3). Do not change it.

It draws noise around its input (a stochastic model, like sampling from an LLM): the same
request gives a different answer each time.
"""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.rng = np.random.default_rng()

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy().astype(np.float32)
            z = x + self.rng.standard_normal(x.shape).astype(np.float32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("Z", z)]))
        return responses
