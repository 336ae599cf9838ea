"""Lab triton_2_4: "embedder", given (README, task 4). Do not change it.

Its first execution builds a lookup table (as a JIT compile or a lazy allocation would):
that takes about a second; later executions are fast. Warm it up before it takes traffic.
"""

import time

import numpy as np
import triton_python_backend_utils as pb_utils

FIRST_CALL_SECONDS = 1.2


class TritonPythonModel:
    def initialize(self, args):
        self.table = None

    def execute(self, requests):
        if self.table is None:
            time.sleep(FIRST_CALL_SECONDS)
            self.table = np.linspace(-1.0, 1.0, 16, dtype=np.float32)
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy().astype(np.float32)
            e = (x * self.table).astype(np.float32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("E", e)]))
        return responses
