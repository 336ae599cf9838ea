"""Lab triton_2_3: export the course network to ONNX (starter).

    python export.py WEIGHTS.pt OUT.onnx

Runs in the Triton environment (torch, onnx, onnxruntime; numpy<2).
"""

import sys


def export(weights: str, out: str) -> None:
    # TODO: build the network (the MLP of model_repository/pytorch_model/1/model.py), load
    # WEIGHTS, and torch.onnx.export it to OUT with input "X", output "Y", a dynamic batch
    # axis, dynamo=False
    raise NotImplementedError("TODO: export()")


if __name__ == "__main__":
    export(sys.argv[1], sys.argv[2])
