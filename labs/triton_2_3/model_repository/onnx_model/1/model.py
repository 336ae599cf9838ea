"""Lab triton_2_3: your export (1/model.onnx, put there by the grader) run by ONNX Runtime
inside Triton's Python backend (starter)."""

import triton_python_backend_utils as pb_utils  # noqa: F401


class TritonPythonModel:
    def initialize(self, args):
        # TODO: open an onnxruntime.InferenceSession on 1/model.onnx (CPUExecutionProvider)
        raise NotImplementedError("TODO: onnx_model initialize()")

    def execute(self, requests):
        # TODO: run the session on each request's "X" and answer "Y"
        raise NotImplementedError("TODO: onnx_model execute()")
