"""Calling a student's function that takes and returns numpy arrays (`call_student` for
arrays): the arrays travel as .npy files through labgrade.probes.numpy_io, never pickles."""

from __future__ import annotations

from pathlib import Path

from labgrade.scoring import Fail
from labgrade.submission import StudentCodeError, Submission

NUMPY_IO = "labgrade.probes.numpy_io"


def save_arrays(folder: Path, **arrays: object) -> dict[str, str]:
    """Write each array as `<folder>/<name>.npy`; return name -> path (the `inputs` of
    `call_student_arrays`)."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, array in arrays.items():
        paths[name] = str(folder / f"{name}.npy")
        np.save(paths[name], array, allow_pickle=False)
    return paths


def call_student_arrays(submission: Submission, module: str, func: str,
                        inputs: dict[str, str], out_dir: Path, *, timeout: float = 120.0,
                        **kwargs: object) -> list:
    """`module.func(**arrays, **kwargs)` in the submission's worker, where `inputs` maps each
    argument name to a .npy file; `out_dir` lies in `submission.scratch`. Returns what it returned as a list of arrays (a tuple
    gives several). A raise, a hang, a crash or something that is not numeric arrays fails
    the item as "<func>() failed: ...", naming the student's function."""
    import numpy as np

    if not Path(out_dir).resolve().is_relative_to(Path(submission.scratch).resolve()):
        raise ValueError(f"out_dir {out_dir} must lie in submission.scratch, the one folder the "
                         "student's (sandboxed) worker may write")
    try:
        result = submission.call(NUMPY_IO, "call", str(submission.path), module, func, inputs,
                                 kwargs, str(out_dir), timeout=timeout)
    except StudentCodeError as exc:
        arrays = {name: np.load(path, mmap_mode="r") for name, path in inputs.items()}
        shown = ", ".join([f"{n}=<{a.dtype} array of shape {a.shape}>"
                           for n, a in arrays.items()] + [f"{k}={v!r}" for k, v in kwargs.items()])
        raise Fail(f"{func}() failed: {exc}\nThe call: {func}({shown})") from None
    return [np.load(o["path"], allow_pickle=False) for o in result["outputs"]]
