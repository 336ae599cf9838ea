"""Items: weight quantization written by the student (numpy): INT8 per output channel,
INT4 group-wise with two values packed per byte. The student's functions run in the
worker; every error, bound and byte count is computed here, from the arrays they returned."""

import numpy as np
import pytest

from labgrade import Fail
from labgrade.kit.arrays import call_student_arrays, save_arrays

SLACK = 1.0 + 1e-3  # float32 rounding of scale * q


def _call(submission, run_dir, func: str, arrays: dict, tag: str, **kwargs) -> list:
    """Run quantize.<func> in the worker; the arrays it returned (no pickles)."""
    return call_student_arrays(submission, "quantize", func, arrays,
                               submission.scratch / "quant-out" / tag, **kwargs)


def _save(run_dir, tag: str, **arrays) -> dict:
    return save_arrays(run_dir / "quant-in" / tag, **arrays)


def _pair(outputs: list, func: str, what: str) -> tuple:
    if len(outputs) != 2:
        raise Fail(f"{func}() must return a tuple ({what}), got {len(outputs)} array(s)")
    return outputs[0], outputs[1]


def _dequantized(outputs: list, func: str, shape: tuple) -> np.ndarray:
    if len(outputs) != 1:
        raise Fail(f"{func}() must return one array, got {len(outputs)}")
    out = outputs[0]
    if out.shape != shape:
        raise Fail(f"{func}() returned shape {out.shape}; the weight is {shape}")
    if not np.all(np.isfinite(out)):
        rows = sorted({int(r) for r in np.argwhere(~np.isfinite(out))[:, 0]})[:5]
        raise Fail(f"{func}() returned NaN or inf (rows {rows}): a channel or group that is "
                   "all zeros has scale 0; guard the division so it comes back as zeros")
    return out.astype(np.float64)


def unpack_int4(packed: np.ndarray, cols: int) -> np.ndarray:
    """The README's layout: per row, byte j holds column 2j in its low nibble and column
    2j+1 in its high nibble, each a 4-bit two's-complement integer."""
    packed = packed.astype(np.uint8)
    low = (packed & 0x0F).astype(np.int16)
    high = (packed >> 4).astype(np.int16)
    low[low >= 8] -= 16
    high[high >= 8] -= 16
    q = np.empty((packed.shape[0], cols), dtype=np.int16)
    q[:, 0::2] = low
    q[:, 1::2] = high
    return q


@pytest.mark.points(8)
def test_int8_per_channel(submission, run_dir, hidden_weights, score):
    """INT8, symmetric, one scale per output channel (row): q in [-127, 127], the grader
    dequantizes q * scale[row] itself and requires every element within half a step,
    |w - w_hat| <= max|w_row| / 254 (a per-tensor scale breaks it on small rows), an
    all-zero row back as zeros, and the student's dequantize_int8 to agree."""
    submission.require("quantize.py")
    w = hidden_weights["arrays"]["int8"].astype(np.float64)
    paths = {"w": hidden_weights["paths"]["int8"]}
    q, scale = _pair(_call(submission, run_dir, "quantize_int8", paths, "int8"),
                     "quantize_int8", "q, scale")
    if q.dtype != np.int8 or q.shape != w.shape:
        raise Fail(f"quantize_int8() must return q as int8 with the weight's shape {w.shape}; "
                   f"got {q.dtype} {q.shape}")
    if int(q.min()) < -127:
        raise Fail("q contains -128: symmetric INT8 uses [-127, 127]")
    if scale.shape != (w.shape[0],):
        raise Fail(f"scale must hold one value per output channel, shape ({w.shape[0]},); got "
                   f"{scale.shape}")
    if not np.all(np.isfinite(scale)):
        raise Fail("scale contains NaN or inf")
    mine = q.astype(np.float64) * scale.astype(np.float64)[:, None]
    row_max = np.abs(w).max(axis=1)
    bound = row_max / 254.0 * SLACK + 1e-12
    err = np.abs(w - mine).max(axis=1)
    rel = float(np.linalg.norm(w - mine) / np.linalg.norm(w))
    score.measure(int8_relative_error=round(rel, 6),
                  int8_rows_over_bound=int((err > bound).sum()))
    if np.any(err > bound):
        r = int(np.argmax(err / bound))
        raise Fail(f"row {r}: the largest error of q * scale is {err[r]:.3g}, over the bound "
                   f"{bound[r]:.3g} (= max|w[{r}]| / 254, half a quantization step). "
                   f"{int((err > bound).sum())} of {w.shape[0]} rows break it: give every "
                   "output channel its own scale = max|w_row| / 127 and round to nearest")
    paths_dq = _save(run_dir, "int8", q=q, scale=scale)
    theirs = _dequantized(_call(submission, run_dir, "dequantize_int8", paths_dq, "int8-dq"),
                          "dequantize_int8", w.shape)
    if not np.allclose(theirs, mine, rtol=1e-5, atol=1e-6 * float(row_max.max())):
        raise Fail("dequantize_int8(q, scale) does not give q * scale[:, None]")
    score.set(1.0, f"INT8 per channel: every row within half a step; relative error "
                   f"{rel:.4f}")


def _int4_round_trip(submission, run_dir, hidden_weights, group: int):
    key = f"int4_g{group}"
    w = hidden_weights["arrays"][key]
    packed, scales = _pair(_call(submission, run_dir, "quantize_int4",
                                 {"w": hidden_weights["paths"][key]}, key, group_size=group),
                           "quantize_int4", "packed, scales")
    rows, cols = w.shape
    if scales.shape != (rows, cols // group):
        raise Fail(f"with group_size={group}, scales must have shape (rows, cols // group_size)"
                   f" = {(rows, cols // group)}; got {scales.shape}")
    paths = _save(run_dir, key, packed=packed, scales=scales)
    theirs = _dequantized(_call(submission, run_dir, "dequantize_int4", paths, key + "-dq",
                                group_size=group), "dequantize_int4", w.shape)
    return w.astype(np.float64), packed, scales, theirs


@pytest.mark.points(10)
def test_int4_groupwise(submission, run_dir, hidden_weights, score):
    """INT4, symmetric, one scale per group of group_size consecutive inputs in a row, for
    group sizes 32, 64 and 128: scales of shape (rows, cols // group_size); every element
    of dequantize_int4(quantize_int4(w)) within half a step of its group,
    |w - w_hat| <= max|w_group| / 14 (a scale per row breaks it: the columns' groups differ
    in magnitude); an all-zero group back as zeros."""
    submission.require("quantize.py")
    errors = {}
    for group in (32, 64, 128):
        w, _, _, theirs = _int4_round_trip(submission, run_dir, hidden_weights, group)
        rows, cols = w.shape
        groups = np.abs(w).reshape(rows, cols // group, group).max(axis=2)
        bound = np.repeat(groups, group, axis=1) / 14.0 * SLACK + 1e-12
        err = np.abs(w - theirs)
        rel = float(np.linalg.norm(w - theirs) / np.linalg.norm(w))
        score.measure(**{f"int4_g{group}_relative_error": round(rel, 6)})
        if np.any(err > bound):
            r, c = (int(i) for i in np.unravel_index(np.argmax(err / bound), err.shape))
            g = c // group
            raise Fail(f"group_size={group}: w[{r}, {c}] comes back {err[r, c]:.3g} off, over "
                       f"the bound {bound[r, c]:.3g} (= max|w| of its group {g} / 14, half a "
                       f"step). {int((err > bound).any(axis=1).sum())} of {rows} rows break it:"
                       " one scale per group = max|w_group| / 7, q = round(w / scale) in "
                       "[-7, 7]")
        errors[group] = rel
    score.set(1.0, "INT4 group-wise: every group within half a step; relative error "
              + ", ".join(f"{e:.3f} (group {g})" for g, e in errors.items()))


@pytest.mark.points(7)
def test_int4_packed_memory(submission, run_dir, hidden_weights, score):
    """Memory: two 4-bit values per byte, in the README's layout (the grader unpacks the
    bytes itself and must get the student's own dequantized weights), and
    (packed + scales) bytes / float32 bytes <= (0.5 + 4 / group_size) / 4, i.e. float32
    (or smaller) scales; storing one value per byte doubles it."""
    submission.require("quantize.py")
    ratios = {}
    for group in (32, 64, 128):
        w, packed, scales, theirs = _int4_round_trip(submission, run_dir, hidden_weights, group)
        rows, cols = w.shape
        ratio = (packed.nbytes + scales.nbytes) / (rows * cols * 4)
        limit = (0.5 + 4.0 / group) / 4.0 + 1e-9
        ratios[group] = ratio
        score.measure(**{f"int4_g{group}_memory_ratio": round(ratio, 4)})
        if ratio > limit:
            hint = (" — packed holds one value per byte: put two 4-bit values in each byte"
                    if packed.size >= rows * cols else
                    " — store the scales as float32 or float16")
            raise Fail(f"group_size={group}: packed weights plus scales take {ratio:.3f} of "
                       f"the float32 weights; the limit is {limit:.3f}{hint}")
        if packed.dtype != np.uint8 or packed.shape != (rows, cols // 2):
            raise Fail(f"packed must be uint8 of shape (rows, cols // 2) = {(rows, cols // 2)};"
                       f" got {packed.dtype} {packed.shape}")
        q = unpack_int4(packed, cols)
        mine = q * np.repeat(scales.astype(np.float64), group, axis=1)
        if not np.allclose(mine, theirs, rtol=1e-5, atol=1e-6 * float(np.abs(w).max())):
            raise Fail(f"group_size={group}: unpacking your bytes as the README describes (low "
                       "nibble = even column, high nibble = odd column, 4-bit two's complement)"
                       " and multiplying by the scales does not give what your "
                       "dequantize_int4() returns: pack in that layout")
    score.set(1.0, "packed INT4 takes " + ", ".join(
        f"{r:.3f} (group {g})" for g, r in ratios.items()) + " of the float32 bytes")
