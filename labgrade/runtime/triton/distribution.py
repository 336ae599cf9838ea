"""The tritonserver that the nvidia-pytriton wheel bundles: find it, check the Python
environment its Python backend will embed, and assemble the backend directory it needs.

What the server needs, and why:

- a backend directory whose `python/` holds `libtriton_python.so`,
  `triton_python_backend_utils.py` and the stub built for the running Python minor version
  (`python_backend_stubs/3.X/triton_python_backend_stub` in the wheel); it is assembled once
  under `$LABGRADE_CACHE/triton/` (`prepare_backend_dir`);
- `LD_LIBRARY_PATH` starting with the interpreter's `sysconfig` LIBDIR (otherwise the stub
  may load the system's libpython and break), then the wheel's `nvidia_pytriton.libs`;
- the Python environment the stub embeds is the first `python3` on `PATH`: it must have
  numpy<2, or the server answers with EMPTY outputs and no error (`check_python_env`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from labgrade.runtime.tinymodels import cache_root
from labgrade.runtime.triton.errors import TritonError, TritonNotInstalled

PYTRITON_VERSION = "0.7.0"
VENV_ENV_VAR = "LABGRADE_TRITON_VENV"
SETUP_HINT = "run `make setup` (or scripts/setup-triton-env.sh) to create it"

_REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class TritonDistribution:
    """Where the pytriton wheel of a venv keeps the server and the Python backend."""

    venv: Path
    python: Path              # <venv>/bin/python3
    python_version: str       # "3.11": picks the stub
    package_dir: Path         # site-packages/pytriton
    server_bin: Path          # .../tritonserver/bin/tritonserver
    libs_dir: Path            # site-packages/nvidia_pytriton.libs
    python_backend_dir: Path  # .../tritonserver/backends/python
    stub: Path                # .../python_backend_stubs/3.X/triton_python_backend_stub
    cache_dir: Path           # .../tritonserver/caches (response-cache implementations)

    @property
    def python_libdir(self) -> Path:
        """`sysconfig` LIBDIR of the venv's interpreter (goes first on LD_LIBRARY_PATH)."""
        return python_libdir(self.python)


def default_triton_venv() -> Path:
    """`$LABGRADE_TRITON_VENV`, else `<repo>/.venv-triton` (what `make setup` creates)."""
    configured = os.environ.get(VENV_ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    return _REPO_ROOT / ".venv-triton"


def find_triton(venv: Path | None = None) -> TritonDistribution:
    """Locate the bundled tritonserver in a venv with nvidia-pytriton; raise if absent."""
    venv = Path(venv) if venv is not None else default_triton_venv()
    python = venv / "bin" / "python3"
    if not python.exists():
        raise TritonNotInstalled(f"no Triton environment at {venv}: {SETUP_HINT}")
    version = _venv_python_version(venv)
    packages = sorted(venv.glob(f"lib/python{version}/site-packages/pytriton"))
    if not packages:
        raise TritonNotInstalled(
            f"{venv} has no nvidia-pytriton=={PYTRITON_VERSION} (no site-packages/pytriton): "
            f"{SETUP_HINT}")
    package_dir = packages[0]
    server_root = package_dir / "tritonserver"
    dist = TritonDistribution(
        venv=venv, python=python, python_version=version, package_dir=package_dir,
        server_bin=server_root / "bin" / "tritonserver",
        libs_dir=package_dir.parent / "nvidia_pytriton.libs",
        python_backend_dir=server_root / "backends" / "python",
        stub=server_root / "python_backend_stubs" / version / "triton_python_backend_stub",
        cache_dir=server_root / "caches",
    )
    for path in (dist.server_bin, dist.python_backend_dir / "libtriton_python.so",
                 dist.python_backend_dir / "triton_python_backend_utils.py", dist.stub):
        if not path.is_file():
            raise TritonNotInstalled(f"the pytriton wheel in {venv} lacks {path}: {SETUP_HINT}")
    return dist


def triton_available(venv: Path | None = None) -> tuple[bool, str]:
    """(True, "") if the embedded server can run, else (False, why). For skips."""
    try:
        find_triton(venv)
    except TritonNotInstalled as exc:
        return False, str(exc)
    return True, ""


def _venv_python_version(venv: Path) -> str:
    """'3.11' from pyvenv.cfg (no interpreter start); falls back to the lib/ folder."""
    try:
        for line in (venv / "pyvenv.cfg").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() in ("version", "version_info"):
                major, minor = value.strip().split(".")[:2]
                return f"{major}.{minor}"
    except (OSError, ValueError):
        pass
    found = sorted(p.name.removeprefix("python") for p in venv.glob("lib/python3.*"))
    if not found:
        raise TritonNotInstalled(f"cannot tell the Python version of {venv}: {SETUP_HINT}")
    return found[-1]


@lru_cache(maxsize=8)
def python_libdir(python: Path) -> Path:
    """`sysconfig.get_config_var('LIBDIR')` of an interpreter (a venv gives its base's)."""
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"],
        capture_output=True, text=True, timeout=60, check=False)
    if out.returncode != 0 or not out.stdout.strip():
        raise TritonNotInstalled(f"{python} does not run: {out.stderr.strip()[-500:]}")
    return Path(out.stdout.strip())


def prepare_backend_dir(dist: TritonDistribution, root: Path | None = None) -> Path:
    """A backend directory for `--backend-directory`, built once and cached.

    Holds `python/libtriton_python.so`, `python/triton_python_backend_utils.py` and
    `python/triton_python_backend_stub` (the stub for `dist.python_version`). The folder is
    keyed by the source files, built in a temporary folder and renamed into place, so
    concurrent graders never see half of it.
    """
    sources = {
        "libtriton_python.so": dist.python_backend_dir / "libtriton_python.so",
        "triton_python_backend_utils.py":
            dist.python_backend_dir / "triton_python_backend_utils.py",
        "triton_python_backend_stub": dist.stub,
    }
    digest = hashlib.sha256()
    for name, src in sorted(sources.items()):
        stat = src.stat()
        digest.update(f"{name}\0{src.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    root = Path(root) if root is not None else cache_root() / "triton"
    target = root / f"backends-py{dist.python_version}-{digest.hexdigest()[:16]}"
    if all((target / "python" / name).is_file() for name in sources):
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".backends-", dir=root))
    try:
        (tmp / "python").mkdir()
        for name, src in sources.items():
            shutil.copy2(src, tmp / "python" / name)
        (tmp / "python" / "triton_python_backend_stub").chmod(0o755)
        for path in (tmp, tmp / "python", *(tmp / "python").iterdir()):
            path.chmod(path.stat().st_mode | 0o555 if path.is_dir() else
                       path.stat().st_mode | 0o444)  # a sandboxed tritonserver reads it
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "python" / "triton_python_backend_stub").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def check_python_env(python_env: Path, python_version: str) -> None:
    """Raise TritonError unless `python_env` can host the Python backend stub.

    Cheap (no interpreter start): the venv's Python minor version must match the stub's,
    and its numpy must be 1.x (numpy 2 makes the server return empty outputs silently).
    """
    python_env = Path(python_env)
    if not (python_env / "bin" / "python3").exists():
        raise TritonError(f"python_env {python_env} has no bin/python3 (expected a venv)")
    version = _venv_python_version(python_env)
    if version != python_version:
        raise TritonError(
            f"python_env {python_env} is Python {version}, but the Triton stub is built for "
            f"Python {python_version}: make the environment with python{python_version}")
    dists = sorted(python_env.glob(f"lib/python{version}/site-packages/numpy-*.dist-info"))
    if not dists:
        raise TritonError(f"python_env {python_env} has no numpy: the Python backend needs "
                          "numpy<2 (pip install 'numpy<2')")
    numpy_version = dists[-1].name.removeprefix("numpy-").removesuffix(".dist-info")
    if int(numpy_version.split(".")[0]) >= 2:
        raise TritonError(
            f"python_env {python_env} has numpy {numpy_version}; Triton's Python backend "
            "returns empty outputs with numpy 2 and reports no error: install 'numpy<2'")
