"""Lab triton_2_3: the course network in PyTorch, in Triton's Python backend (reference)."""

import os

import numpy as np
import torch
import triton_python_backend_utils as pb_utils


class MLP(torch.nn.Module):
    """16 -> 32 -> 16 -> 4 with ReLU between layers (the weights are in mlp.pt)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(16, 32)
        self.fc2 = torch.nn.Linear(32, 16)
        self.fc3 = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class TritonPythonModel:
    def initialize(self, args):
        weights = os.path.join(args["model_repository"], args["model_version"], "mlp.pt")
        torch.set_num_threads(1)
        self.net = MLP()
        self.net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.net.eval()

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()  # [batch, 16]
            with torch.inference_mode():
                y = self.net(torch.from_numpy(x)).numpy()
            responses.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("Y", y.astype(np.float32))]))
        return responses
