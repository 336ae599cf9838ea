"""How graders/triton_2_1/mlp.pt and mlp.npz were made — run once, committed.

    .venv/bin/python graders/triton_2_1/make_weights.py graders/triton_2_1/mlp.pt

The network is the `MLP` of the lab's model.py: 16 -> 32 -> 16 -> 4, ReLU between layers,
float32, seeded. mlp.pt is a plain `state_dict` (tensors only: loads with
`torch.load(path, weights_only=True)`); the lab ships copies of it
(labs/ and solutions/triton_2_1/model_repository/mlp/1/mlp.pt). mlp.npz holds the same
arrays (`npz_from_pt`): the grader's reference computation and its reference model read it
with numpy, so neither the grading process nor the reference model's stub imports torch
(~1.5 s of CPU each). tests/test_triton_2_1.py checks that both files hold the same
numbers. The grader never regenerates them, so a torch upgrade cannot change the reference.
"""

from __future__ import annotations

import sys

import torch

SEED = 2111


class MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(16, 32)
        self.fc2 = torch.nn.Linear(32, 16)
        self.fc3 = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def npz_from_pt(pt: str, npz: str) -> None:
    import numpy as np

    state = torch.load(pt, map_location="cpu", weights_only=True)
    np.savez(npz, **{name: tensor.numpy() for name, tensor in state.items()})


def main(out: str) -> None:
    torch.manual_seed(SEED)
    net = MLP()
    torch.save({k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}, out)
    npz_from_pt(out, out.removesuffix(".pt") + ".npz")


if __name__ == "__main__":
    main(sys.argv[1])
