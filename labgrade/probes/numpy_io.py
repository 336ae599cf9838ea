"""Call a student function that takes and returns numpy arrays, from the grading process.

Runs INSIDE the submission's worker. Arrays travel as .npy files (never pickles): the grader
writes the inputs, this probe loads them, calls the student's function, checks that what
came back is numeric arrays, and saves each one; the grading process loads them with
`numpy.load(..., allow_pickle=False)` and does all the checking itself. Whatever goes wrong
on the student's side (their module, their function, what it returned) is a StudentFault;
the rest (reading the grader's inputs, writing the outputs) is the grader's.

    submission.call("labgrade.probes.numpy_io", "call", str(submission.path), "quantize",
                    "quantize_int8", {"w": "/run/w.npy"}, {}, "/run/out-int8")
    -> {"outputs": [{"path": ".../0.npy", "shape": [96, 256], "dtype": "int8",
                     "nbytes": 24576}, ...], "tuple": true}
"""

from __future__ import annotations

from pathlib import Path

from labgrade.scoring import StudentFault


def _as_arrays(value, func: str):
    import numpy as np

    items = list(value) if isinstance(value, (tuple, list)) else [value]
    arrays = []
    for i, item in enumerate(items):
        if not isinstance(item, np.ndarray):
            what = f"item {i} of what {func}() returned" if len(items) > 1 else \
                f"what {func}() returned"
            raise StudentFault(f"{what} is a {type(item).__name__}, not a numpy array")
        if item.dtype == object or item.dtype.kind not in "biuf":
            raise StudentFault(f"{func}() returned an array of dtype {item.dtype}; use a numeric "
                            "dtype (int8, uint8, float16, float32, ...)")
        arrays.append(item)
    return arrays, isinstance(value, (tuple, list))


def call(root: str, module: str, func: str, arrays: dict, kwargs: dict, out_dir: str) -> dict:
    import numpy as np

    from labgrade.worker import load_student_module

    try:
        target = getattr(load_student_module(Path(root), module), func, None)
    except BaseException as exc:
        raise StudentFault(f"importing your {module} module failed: "
                           f"{type(exc).__name__}: {exc}") from exc
    if not callable(target):
        raise StudentFault(f"{module}.py has no function {func}()")
    inputs = {name: np.load(path, allow_pickle=False) for name, path in arrays.items()}
    try:
        value = target(**inputs, **kwargs)
    except BaseException as exc:  # their code, or a signature that does not match the call
        raise StudentFault(f"{type(exc).__name__}: {exc}") from exc
    outputs, is_tuple = _as_arrays(value, func)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    described = []
    for i, array in enumerate(outputs):
        path = out / f"{i}.npy"
        np.save(path, np.ascontiguousarray(array), allow_pickle=False)
        described.append({"path": str(path), "shape": list(array.shape),
                          "dtype": str(array.dtype), "nbytes": int(array.nbytes)})
    return {"outputs": described, "tuple": is_tuple}
