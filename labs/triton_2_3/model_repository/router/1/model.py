"""Lab triton_2_3: a BLS model that sends each request to pytorch_model or onnx_model, by
its "backend" request parameter (starter)."""

import triton_python_backend_utils as pb_utils  # noqa: F401


class TritonPythonModel:
    def initialize(self, args):
        # TODO: nothing to load here: remove this line
        raise NotImplementedError("TODO: router initialize()")

    def execute(self, requests):
        # TODO: read request.parameters() (JSON), call the chosen model with
        # pb_utils.InferenceRequest(...).exec() and answer its "Y"; an unknown backend
        # gets an error response
        raise NotImplementedError("TODO: router execute()")
