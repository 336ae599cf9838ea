"""Lab triton_2_4: "counter", a stateful model under the sequence batcher (README, task 7).

Each sequence (one correlation id) keeps a running total of the VALUEs sent to it; a
request flagged START begins a new total, whatever the id carried before.
"""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.totals = {}

    def execute(self, requests):
        responses = []
        for request in requests:
            value = pb_utils.get_input_tensor_by_name(request, "VALUE").as_numpy()
            start = pb_utils.get_input_tensor_by_name(request, "START").as_numpy()
            sequence = request.correlation_id()
            total = 0 if int(start.reshape(-1)[0]) else self.totals.get(sequence, 0)
            total += int(value.reshape(-1)[0])
            self.totals[sequence] = total
            out = np.array([[total]], dtype=np.int64)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("TOTAL", out)]))
        return responses
