"""Lab 2.2 — weight quantization in numpy (reference solution)."""

from __future__ import annotations

import numpy as np


def quantize_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(w, dtype=np.float32)
    scale = np.abs(w).max(axis=1) / 127.0                    # one scale per output channel
    safe = np.where(scale > 0, scale, 1.0)                   # an all-zero row stays zero
    q = np.clip(np.rint(w / safe[:, None]), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def dequantize_int8(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) * scale.astype(np.float32)[:, None]


def quantize_int4(w: np.ndarray, group_size: int) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(w, dtype=np.float32)
    rows, cols = w.shape
    if cols % group_size or group_size % 2:
        raise ValueError(f"columns ({cols}) must be a multiple of an even group_size "
                         f"({group_size})")
    groups = w.reshape(rows, cols // group_size, group_size)
    scales = np.abs(groups).max(axis=2) / 7.0                # one scale per group
    safe = np.where(scales > 0, scales, 1.0)
    q = np.clip(np.rint(groups / safe[:, :, None]), -7, 7).astype(np.int8).reshape(rows, cols)
    nibbles = (q & 0x0F).astype(np.uint8)                    # 4-bit two's complement
    packed = nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)      # even column low, odd column high
    return packed.astype(np.uint8), scales.astype(np.float32)


def dequantize_int4(packed: np.ndarray, scales: np.ndarray, group_size: int) -> np.ndarray:
    rows = packed.shape[0]
    cols = packed.shape[1] * 2
    low = (packed & 0x0F).astype(np.int8)
    high = (packed >> 4).astype(np.int8)
    q = np.empty((rows, cols), dtype=np.int8)
    q[:, 0::2] = np.where(low >= 8, low - 16, low)
    q[:, 1::2] = np.where(high >= 8, high - 16, high)
    return q.astype(np.float32) * np.repeat(scales.astype(np.float32), group_size, axis=1)
