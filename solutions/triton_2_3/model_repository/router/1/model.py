"""Lab triton_2_3: BLS routing (reference). Each request goes to the model named by its
"backend" parameter: "pytorch" -> pytorch_model, "onnx" -> onnx_model (default "pytorch")."""

import json

import triton_python_backend_utils as pb_utils

TARGETS = {"pytorch": "pytorch_model", "onnx": "onnx_model"}


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            backend = json.loads(request.parameters() or "{}").get("backend", "pytorch")
            target = TARGETS.get(backend)
            if target is None:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    f"unknown backend {backend!r}: use one of {sorted(TARGETS)}")))
                continue
            x = pb_utils.get_input_tensor_by_name(request, "X")
            answer = pb_utils.InferenceRequest(
                model_name=target, requested_output_names=["Y"], inputs=[x]).exec()
            if answer.has_error():
                responses.append(pb_utils.InferenceResponse(error=answer.error()))
                continue
            responses.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.get_output_tensor_by_name(answer, "Y")]))
        return responses
