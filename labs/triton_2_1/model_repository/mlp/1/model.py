"""Lab triton_2_1: the "mlp" model for Triton's Python backend (see README.md, task 1).

Triton imports this file in its Python-backend stub process. `initialize` runs once per
model instance, `execute` once per batch of requests.
"""

import os

import numpy as np
import torch
import triton_python_backend_utils as pb_utils


class MLP(torch.nn.Module):
    """16 -> 32 -> 16 -> 4 with ReLU between layers. The trained weights are in mlp.pt, next
    to this file (a state_dict: `torch.load(path, weights_only=True)`)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(16, 32)
        self.fc2 = torch.nn.Linear(32, 16)
        self.fc3 = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class TritonPythonModel:
    def initialize(self, args):
        """TODO: build MLP(), load the weights from mlp.pt in this version's folder
        (args["model_repository"] is the model's folder, args["model_version"] the version),
        and switch the network to inference mode."""
        raise NotImplementedError("TODO: initialize() — load mlp.pt into the MLP")

    def execute(self, requests):
        """TODO: for every request, read input "X" (shape [batch, 16]), run the network and
        answer with output "Y" (shape [batch, 4], float32). One response per request."""
        raise NotImplementedError("TODO: execute() — run the MLP on input X")
