"""Lab triton_2_3: export the course network to ONNX (reference solution).

    python export.py WEIGHTS.pt OUT.onnx

Runs in the Triton environment (torch, onnx, onnxruntime; numpy<2).
"""

import sys

import torch


class MLP(torch.nn.Module):
    """16 -> 32 -> 16 -> 4 with ReLU between layers."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(16, 32)
        self.fc2 = torch.nn.Linear(32, 16)
        self.fc3 = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def export(weights: str, out: str) -> None:
    net = MLP()
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    net.eval()
    torch.onnx.export(net, (torch.zeros(1, 16),), out, input_names=["X"], output_names=["Y"],
                      dynamic_axes={"X": {0: "batch"}, "Y": {0: "batch"}}, opset_version=17,
                      dynamo=False)


if __name__ == "__main__":
    export(sys.argv[1], sys.argv[2])
