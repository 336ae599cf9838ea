"""Lab triton_2_3: the course network in PyTorch, in Triton's Python backend (starter)."""

import os  # noqa: F401 - you will need these

import numpy as np  # noqa: F401
import torch
import triton_python_backend_utils as pb_utils  # noqa: F401


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
        # TODO: load 1/mlp.pt into MLP() (torch.load(path, weights_only=True)), CPU, eval mode
        raise NotImplementedError("TODO: pytorch_model initialize()")

    def execute(self, requests):
        # TODO: one InferenceResponse with output "Y" [batch, 4] per request's input "X"
        raise NotImplementedError("TODO: pytorch_model execute()")
