"""Model builders with Meta's signatures (`build_sam2`, `build_sam2_video_predictor`), driven by
our YAML configs (no Hydra)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from .checkpoint import infer_config_name, load_into, read_state_dict
from .config import load_config
from .modeling.sam2_base import SAM2Base


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _build(cls, config_file, ckpt_path, device, mode, hydra_overrides_extra, apply_postprocessing, **kwargs):
    if hydra_overrides_extra:
        raise ValueError("hydra overrides are not supported: configs are plain YAML files; "
                         "copy one from configs/models/ and pass its path instead")
    if mode not in ("eval", "train"):
        raise ValueError(f"mode must be 'eval' or 'train', got {mode!r}")
    state = read_state_dict(ckpt_path, config_file) if ckpt_path is not None else None
    if config_file is None:
        if state is None:
            raise ValueError("a config name or a checkpoint path is needed")
        config_file = infer_config_name(state)
    config = load_config(config_file)
    if not apply_postprocessing:
        config = config.replace(dynamic_multimask_via_stability=False)
    model = cls(config, **kwargs)
    if state is not None:
        load_into(model, state, source=str(ckpt_path))
    model = model.to(device or default_device())
    return model.eval() if mode == "eval" else model.train()


def build_sam2(
    config_file: str | Path | None = None,
    ckpt_path: str | Path | None = None,
    device: str | torch.device | None = None,
    mode: str = "eval",
    hydra_overrides_extra: Sequence[str] = (),
    apply_postprocessing: bool = True,
) -> SAM2Base:
    """Build a SAM 2 model, optionally loading a checkpoint by path.

    `config_file` is a config name (`sam2.1_hiera_t`), Meta's config path
    (`configs/sam2.1/sam2.1_hiera_t.yaml`) or a YAML file; when omitted it is inferred from the
    checkpoint's keys. Without a checkpoint the weights are random; `ckpt_path="bundled"` loads the
    weights this package ships for the config (sam2.1_hiera_mini). `device` defaults to CUDA when
    available, else CPU.
    """
    return _build(SAM2Base, config_file, ckpt_path, device, mode, hydra_overrides_extra, apply_postprocessing)


def build_sam2_video_predictor(
    config_file: str | Path | None = None,
    ckpt_path: str | Path | None = None,
    device: str | torch.device | None = None,
    mode: str = "eval",
    hydra_overrides_extra: Sequence[str] = (),
    apply_postprocessing: bool = True,
    keep_corrections: bool = True,
    vos_optimized: bool = False,
    **kwargs,
):
    """Build a `SAM2VideoPredictor`. Post-processing as in Meta's builder: binarised click masks
    for the memory and small-hole filling (area 8); `keep_corrections` (default True) makes a
    correction click on a tracked frame a conditioning frame that survives re-propagation.

    `vos_optimized=True` compiles the image encoder, memory encoder, memory attention and (not on
    CPU, where it is slower compiled) the mask decoder with torch.compile (`sam2.compile`), as
    Meta's flag does, but keeps the same class and outputs equal to eager up to float rounding.
    Meta's uses mode "max-autotune" (CUDA graphs on GPU); this uses the default mode, which
    compiles in a fraction of the time on CPU. The first frames pay for the compilation (a minute or
    more on a small CPU, less with a warm inductor cache); on CPU the steady gain per frame is small
    (benchmarks/compile.py prints both). Without a working backend (no C++ compiler) it warns once
    and runs eagerly."""
    from .sam2_video_predictor import SAM2VideoPredictor

    if kwargs:
        raise ValueError(f"unknown arguments: {sorted(kwargs)}")
    post = {"binarize_mask_from_pts_for_mem_enc": True, "fill_hole_area": 8} if apply_postprocessing else {}
    predictor = _build(SAM2VideoPredictor, config_file, ckpt_path, device, mode, hydra_overrides_extra,
                       apply_postprocessing, keep_corrections=keep_corrections, **post)
    if vos_optimized:
        from .compile import compile_for_tracking

        compile_for_tracking(predictor)
    return predictor
