"""Lab triton_2_4: "urgent" and "bulk" (the same code), given (README, task 5). Do not
change it.

Each execution holds the accelerator for 25 ms (a wait that uses no CPU) and answers with
its own time span, SPAN = [start, end] in ns since the epoch, for every request it served.
"""

import time

import numpy as np
import triton_python_backend_utils as pb_utils

SECONDS = 0.025


class TritonPythonModel:
    def execute(self, requests):
        start = time.time_ns()
        time.sleep(SECONDS)
        span = np.array([[start, time.time_ns()]], dtype=np.int64)
        responses = []
        for request in requests:
            rows = pb_utils.get_input_tensor_by_name(request, "X").as_numpy().shape[0]
            responses.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("SPAN", np.repeat(span, rows, axis=0))]))
        return responses
