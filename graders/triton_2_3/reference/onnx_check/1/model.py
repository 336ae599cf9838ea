"""The grader's model onnx_check: the student's export (1/model.onnx) run by ONNX Runtime,
so the export is graded apart from the student's onnx_model."""

import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.output = self.session.get_outputs()[0].name

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            (y,) = self.session.run([self.output], {self.input: x.astype(np.float32)})
            responses.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("Y", y.astype(np.float32))]))
        return responses
