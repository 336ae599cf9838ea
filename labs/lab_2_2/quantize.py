"""Lab 2.2 — weight quantization in numpy. Complete the four functions below (README.md).

`w` is a float32 weight matrix of shape (out_features, in_features): one row per output
channel. All quantization here is symmetric (no zero point) with round-to-nearest.
"""

from __future__ import annotations

import numpy as np


def quantize_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """INT8 with one scale per output channel (row).

    TODO: return (q, scale): q int8 of w's shape with values in [-127, 127], scale float32
    of shape (out_features,), such that w ~= q * scale[:, None]. scale = max|w_row| / 127.
    An all-zero row must come back as zeros (no division by zero).
    """
    raise NotImplementedError("quantize_int8: TODO")


def dequantize_int8(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """TODO: the float32 weights that (q, scale) stand for."""
    raise NotImplementedError("dequantize_int8: TODO")


def quantize_int4(w: np.ndarray, group_size: int) -> tuple[np.ndarray, np.ndarray]:
    """INT4 with one scale per group of `group_size` consecutive inputs in a row.

    TODO: return (packed, scales): scales float32 of shape (out, in // group_size), each
    max|w_group| / 7; q = round(w / scale) in [-7, 7]; packed uint8 of shape (out, in // 2)
    with TWO values per byte: column 2j in the low 4 bits of byte j, column 2j+1 in the
    high 4 bits, each as 4-bit two's complement (-1 -> 0b1111). An all-zero group must
    come back as zeros.
    """
    raise NotImplementedError("quantize_int4: TODO")


def dequantize_int4(packed: np.ndarray, scales: np.ndarray, group_size: int) -> np.ndarray:
    """TODO: unpack the 4-bit values and scale each group back (float32, shape (out, in))."""
    raise NotImplementedError("dequantize_int4: TODO")
