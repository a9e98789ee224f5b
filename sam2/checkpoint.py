"""The one place that knows the official checkpoint format (`{"model": state_dict}`)."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from .config import load_config

BUNDLED = "bundled"  # a checkpoint "path" meaning: the weights this package ships for the config
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

# (number of Hiera blocks, stage-1 width) -> size suffix of the config name.
_SIZES = {(8, 32): "mini", (12, 96): "t", (16, 96): "s", (24, 112): "b+", (48, 144): "l"}


def bundled_weights(config_name: str) -> Path:
    """The shipped checkpoint of a config (scripts/train_mini.sh makes it): no download needed."""
    path = WEIGHTS_DIR / f"{config_name}.pt"
    if not path.is_file():
        shipped = sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))
        raise ValueError(f"no bundled weights for {config_name}: this package ships weights for {shipped}; "
                         "pass a checkpoint path instead")
    return path


def checkpoint_file(path: str | Path, config=None) -> Path:
    """A checkpoint argument -> its file, checked before any work starts: BUNDLED means the weights shipped
    for `config` (a name, YAML path or ModelConfig)."""
    if str(path) == BUNDLED:
        if config is None:
            raise ValueError(f"checkpoint {BUNDLED!r} needs a config name")
        return bundled_weights(load_config(config).name)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    _check_torch_file(path)
    return path


def _check_torch_file(path: Path) -> None:
    """Refuse a file `torch.save` did not write (an image, a text file, an empty or truncated download, an
    .npz), from its first byte or its zip directory, so that every command says so in one line before any
    work starts. torch.save writes a zip archive holding `<name>/data.pkl` (a truncated one has no directory
    at its end); its legacy format is a pickle, which starts with the PROTO opcode."""
    with open(path, "rb") as f:
        head = f.read(1)
    if not head:
        raise ValueError(f"{path} is not a checkpoint file: it is empty")
    if head == pickle.PROTO:
        return
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        raise ValueError(f"{path} is not a checkpoint file: torch.save writes a zip archive or a pickle "
                         "(is it an image, a text file or an incomplete download?)") from None
    if not any(name.endswith("/data.pkl") for name in names):
        raise ValueError(f"{path} is not a checkpoint file: a zip archive without the data.pkl torch.save writes")


def read_state_dict(path: str | Path, config=None) -> dict[str, torch.Tensor]:
    """Load tensors only (`weights_only=True`): a checkpoint cannot run code on load. `path` may be BUNDLED
    (see `checkpoint_file`)."""
    path = checkpoint_file(path, config)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message advises weights_only=False, which we never do
        raise ValueError(f"{path} is not a checkpoint file of tensors: it holds other Python objects, which "
                         "are not loaded because loading them could run code") from None
    except Exception as exc:  # a damaged archive, or one that torch.save did not write
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path} is not a checkpoint file, or a damaged one: {first_line}") from None
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a SAM 2 checkpoint (expected {{'model': state_dict}})")
    return state


def infer_config_name(state: dict[str, torch.Tensor]) -> str:
    """Name of the shipped config that fits a state dict (size from the trunk, 2.0 vs 2.1 from
    the temporal pointer projection that only 2.1 has)."""
    blocks = {int(k.split(".")[3]) for k in state if k.startswith("image_encoder.trunk.blocks.")}
    embed = state.get("image_encoder.trunk.patch_embed.proj.weight")
    if not blocks or embed is None:
        raise ValueError("state dict has no Hiera trunk (image_encoder.trunk.*); not a SAM 2 checkpoint")
    size = _SIZES.get((max(blocks) + 1, embed.shape[0]))
    if size is None:
        raise ValueError(f"no shipped config has {max(blocks) + 1} Hiera blocks of width {embed.shape[0]}; "
                         "pass a config explicitly")
    version = "sam2.1" if "obj_ptr_tpos_proj.weight" in state else "sam2"
    return f"{version}_hiera_{size}"


def _listing(title: str, items: list[str], limit: int = 20) -> str:
    shown = "\n    ".join(items[:limit])
    more = f"\n    ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"\n  {title} ({len(items)}):\n    {shown}{more}"


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Strict load with a readable report of every missing, unexpected and mis-shaped key."""
    expected = model.state_dict()
    # Listed in checkpoint order, so a run of blocks reads as a run.
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or misshaped:
        name = getattr(getattr(model, "config", None), "name", type(model).__name__)
        report = "".join(
            _listing(title, items)
            for title, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped))
            if items
        )
        raise ValueError(f"{source} does not fit config {name!r}:{report}")
    model.load_state_dict(state, strict=True)
