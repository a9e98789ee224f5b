"""Fetch Meta's reference SAM 2 (sdist `sam2==1.1.0`), make test weights, run jobs on it.

The reference is a test oracle only: it is downloaded into the cache, never pip-installed and
never imported by this process (its top-level package is `sam2`, like ours). Every use goes
through `runner.py` in a subprocess whose path starts with the reference source.

Cache layout under `${SAM2_RAY_CACHE:-<repo>/.cache}/oracle/`:
  sdist/sam2-1.1.0.tar.gz   checked against a pinned sha256
  src/sam2-1.1.0/           unpacked; contains the reference's `sam2/` package
  deps/                     hydra-core, iopath and their pure-Python deps (no torch/numpy)
  weights/<config>-seed<seed>-v<HARNESS_VERSION>.pt
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .runner import encode_inputs

# Bump when make_weights' recipe or a job's output contract changes, to invalidate caches.
HARNESS_VERSION = 1

REFERENCE = "sam2==1.1.0"
SDIST_NAME = "sam2-1.1.0.tar.gz"
SDIST_SHA256 = "7e0ea252d43c10d853e3acfce0b5770ac683c30481bd6de311300e9d44f45b74"
# Pure-Python runtime deps of the reference, installed with --no-deps so that torch, numpy
# and pillow come from the interpreter running the tests, never from the target folder.
REFERENCE_DEPS = [
    "hydra-core==1.3.2",
    "omegaconf==2.3.0",
    "antlr4-python3-runtime==4.9.3",
    "iopath==0.1.10",
    "portalocker",
    "tqdm",
    "PyYAML",
    "packaging",
]
FORBIDDEN_IN_DEPS = ("torch", "numpy", "PIL", "sam2", "torchvision")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUNNER = HERE / "runner.py"
JOBS = HERE / "jobs"
SHIM = HERE / "shim"


class OracleError(RuntimeError):
    """The reference could not be fetched, or a job failed inside the oracle subprocess."""


def cache_dir() -> Path:
    """Root of the oracle cache (created on demand)."""
    root = Path(os.environ.get("SAM2_RAY_CACHE") or REPO / ".cache") / "oracle"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextmanager
def _locked() -> Iterator[Path]:
    """Exclusive lock over the cache, so concurrent test processes build each entry once."""
    root = cache_dir()
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield root
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise OracleError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def _fetch_sdist(root: Path) -> Path:
    sdist = root / "sdist" / SDIST_NAME
    if not sdist.exists():
        # --no-build-isolation: pip's metadata step imports torch, which only this env has.
        _pip(
            "download",
            "--no-deps",
            "--no-build-isolation",
            "--no-binary=:all:",
            REFERENCE,
            "-d",
            str(root / "sdist"),
        )
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise OracleError(f"{sdist} has sha256 {digest}, expected {SDIST_SHA256}; delete it")
    return sdist


def _install_deps(root: Path) -> Path:
    deps = root / "deps"
    if deps.exists():
        return deps
    tmp = Path(tempfile.mkdtemp(prefix="deps-", dir=root))
    try:
        _pip("install", "--no-deps", "--no-compile", "--target", str(tmp), *REFERENCE_DEPS)
        leaked = [name for name in FORBIDDEN_IN_DEPS if (tmp / name).exists()]
        if leaked:
            raise OracleError(f"reference deps would shadow {leaked}; check REFERENCE_DEPS")
        tmp.rename(deps)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return deps


def oracle_root() -> Path:
    """Directory holding the reference's `sam2/` package; fetched and unpacked on first use."""
    with _locked() as root:
        src = root / "src" / SDIST_NAME.removesuffix(".tar.gz")
        if not (src / "sam2" / "build_sam.py").exists():
            sdist = _fetch_sdist(root)
            tmp = Path(tempfile.mkdtemp(prefix="src-", dir=root))
            try:
                with tarfile.open(sdist) as tar:
                    tar.extractall(tmp, filter="data")
                shutil.rmtree(src, ignore_errors=True)
                src.parent.mkdir(exist_ok=True)
                (tmp / src.name).rename(src)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        _install_deps(root)
        return src


def _run(
    job_file: Path,
    config: str,
    weights: Path | None,
    inputs: dict[str, Any],
    timeout: float,
    seed: int = 0,
    overrides: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    src = oracle_root()
    env = dict(os.environ)
    # Replaces any inherited PYTHONPATH: nothing may shadow the reference, shim or deps.
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(SHIM), str(cache_dir() / "deps")])
    env["HYDRA_FULL_ERROR"] = "1"
    with tempfile.TemporaryDirectory(prefix="sam2-oracle-") as tmp:
        tmp_dir = Path(tmp)
        (tmp_dir / "in").mkdir()
        encode_inputs(inputs, tmp_dir / "in")
        out = tmp_dir / "out.npz"
        # -P and cwd=tmp: neither the runner's folder nor the repo root (with our own `sam2/`)
        # may come before the reference on sys.path.
        cmd = [
            sys.executable,
            "-P",
            str(RUNNER),
            str(src),
            str(job_file),
            config,
            str(weights) if weights is not None else "-",
            str(tmp_dir / "in"),
            str(out),
            str(seed),
            json.dumps(list(overrides)),
        ]
        try:
            proc = subprocess.run(
                cmd, cwd=tmp_dir, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            raise OracleError(
                f"oracle job {job_file.stem} ({config}) timed out after {timeout}s"
            ) from exc
        if proc.returncode != 0:
            raise OracleError(
                f"oracle job {job_file.stem} ({config}) exited with "
                f"{proc.returncode}:\n{proc.stderr[-6000:]}"
            )
        with np.load(out, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}


def run_job(
    job: str,
    config: str,
    weights: Path,
    inputs: dict[str, Any],
    timeout: float = 1800,
    overrides: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Run `jobs/<job>.py` on the reference model `config` loaded from `weights`.

    `inputs` may nest dicts/lists of JSON values and numpy arrays. Returns the job's arrays.
    The job's module-level `BUILDER` ("image", the default, or "video") picks the reference
    builder (`build_sam2` or `build_sam2_video_predictor`, see runner.py); `overrides` are extra
    hydra overrides for it, e.g. `["++model.image_size=256"]`. Checkpoints from `make_weights`
    load under that override too: no parameter's shape depends on image_size.
    """
    job_file = JOBS / f"{job}.py"
    if not job_file.exists():
        raise OracleError(f"no oracle job {job_file}")
    if isinstance(overrides, str):
        raise TypeError("overrides is a list of hydra override strings, not one string")
    return _run(job_file, config, Path(weights), inputs, timeout, overrides=overrides)


def make_weights(config: str, seed: int) -> Path:
    """Cached checkpoint `{"model": state_dict}` of `config` with seeded random weights.

    Init-time constants (zero position embeddings, unit norm weights, zero biases, layer-scale
    gammas) and cloned layers are perturbed, see jobs/random_weights.py, so that parity tests
    cannot pass with a wrong embedding resize, norm or layer order.
    """
    with _locked() as root:
        path = root / "weights" / f"{config}-seed{seed}-v{HARNESS_VERSION}.pt"
        if path.exists():
            return path
        path.parent.mkdir(exist_ok=True)
    # The lock is released while the subprocess runs (it calls oracle_root, which takes it);
    # the atomic rename keeps a concurrent duplicate build harmless.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        inputs = {"seed": seed, "path": str(tmp)}
        _run(JOBS / "random_weights.py", config, None, inputs, timeout=1800, seed=seed)
        tmp.rename(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
