"""Lab triton_2_4: "counter", a stateful model under the sequence batcher (README, task 7)."""

import numpy as np  # noqa: F401
import triton_python_backend_utils as pb_utils  # noqa: F401


class TritonPythonModel:
    def initialize(self, args):
        """TODO: the state you keep per sequence."""

    def execute(self, requests):
        """TODO: for each request, TOTAL (int64, [1, 1]) = the sum of the VALUEs of its
        sequence (request.correlation_id()) since the request that carried START = 1."""
        raise NotImplementedError("TODO: counter")
