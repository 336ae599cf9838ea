"""Lab triton_2_4: postprocess, the MLP's logits -> label and probabilities (README, task 1)."""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            y = pb_utils.get_input_tensor_by_name(request, "Y").as_numpy().astype(np.float64)
            e = np.exp(y - y.max(axis=1, keepdims=True))
            prob = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
            label = np.argmax(y, axis=1).astype(np.int32).reshape(-1, 1)
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("LABEL", label), pb_utils.Tensor("PROB", prob)]))
        return responses
