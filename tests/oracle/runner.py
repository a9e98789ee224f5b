"""Subprocess entry point that runs one oracle job on Meta's reference SAM 2.

Run as `python -P runner.py ORACLE_DIR JOB_FILE CONFIG WEIGHTS INPUTS_DIR OUT_NPZ SEED [OVERRIDES]`
with the reference source (ORACLE_DIR), the torchvision shim and the reference's deps first on
PYTHONPATH (see harness.py). WEIGHTS "-" means random init after `torch.manual_seed(SEED)`. It is a
separate process because the reference's top-level package is named `sam2`, like ours.

The job's module-level `BUILDER` picks the model passed to its `run(model, inputs)`: "image"
(default) -> `build_sam2` (a SAM2Base), "video" -> `build_sam2_video_predictor` (a
SAM2VideoPredictor). Both use their defaults (apply_postprocessing=True). OVERRIDES, a JSON list
of hydra override strings (e.g. `["++model.image_size=256"]`), is passed as
`hydra_overrides_extra`; absent means none.

The parent imports this module too, for the input codec only: nothing at module level may
import `sam2` or torch.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

_ARRAY = "__ndarray__"


def encode_inputs(inputs: dict[str, Any], folder: Path) -> None:
    """Write `inputs` to `folder`: arrays as numbered .npy files, the rest as inputs.json."""
    arrays: list[np.ndarray] = []

    def encode(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            arrays.append(value)
            return {_ARRAY: len(arrays) - 1}
        if isinstance(value, dict):
            return {str(k): encode(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [encode(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, np.generic):
            return value.item()
        return value

    doc = encode(inputs)
    for i, array in enumerate(arrays):
        np.save(folder / f"{i}.npy", array, allow_pickle=False)
    (folder / "inputs.json").write_text(json.dumps(doc))


def decode_inputs(folder: Path) -> dict[str, Any]:
    """Inverse of `encode_inputs` (lists stay lists)."""

    def decode(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {_ARRAY}:
                return np.load(folder / f"{value[_ARRAY]}.npy", allow_pickle=False)
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    return decode(json.loads((folder / "inputs.json").read_text()))


def _import_reference(oracle_dir: Path) -> None:
    """Import the reference `sam2`, refusing any other package of that name (e.g. ours)."""
    import sam2

    where = Path(sam2.__file__).resolve()
    if oracle_dir.resolve() not in where.parents:
        raise RuntimeError(f"imported sam2 from {where}, expected the reference under {oracle_dir}")
    import torchvision

    if "oracle-shim" not in torchvision.__version__:
        raise RuntimeError(f"imported torchvision {torchvision.__file__}, expected the oracle shim")


BUILDERS = {"image": "build_sam2", "video": "build_sam2_video_predictor"}


def main(argv: list[str]) -> None:
    oracle_dir, job_file, config, weights, inputs_dir, out_npz, seed = argv[:7]
    overrides = json.loads(argv[7]) if len(argv) > 7 else []
    _import_reference(Path(oracle_dir))
    import torch

    from sam2 import build_sam

    spec = importlib.util.spec_from_file_location("oracle_job", job_file)
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    builder = getattr(job, "BUILDER", "image")
    if builder not in BUILDERS:
        raise ValueError(f"{job_file}: BUILDER must be one of {sorted(BUILDERS)}, got {builder!r}")

    family = "sam2" if config.startswith("sam2_") else "sam2.1"
    torch.manual_seed(int(seed))  # makes random init (weights "-") reproducible
    model = getattr(build_sam, BUILDERS[builder])(
        f"configs/{family}/{config}.yaml",
        ckpt_path=None if weights == "-" else weights,
        device="cpu",
        hydra_overrides_extra=list(overrides),
    )
    with torch.no_grad():
        result = job.run(model, decode_inputs(Path(inputs_dir)))
    np.savez(out_npz, **{k: np.asarray(v) for k, v in result.items()})


if __name__ == "__main__":
    main(sys.argv[1:])
