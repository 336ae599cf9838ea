"""Lab triton_2_4: preprocess, raw sensor bytes -> the MLP's features (README, task 1)."""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "RAW").as_numpy()
            x = (raw.astype(np.float32) - 128.0) / 64.0
            responses.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("X", x.astype(np.float32))]))
        return responses
