"""Model configuration: plain YAML files under `configs/models/` read into dataclasses.

A config is named by its file stem (`sam2.1_hiera_t`); Meta's Hydra-style paths
(`configs/sam2.1/sam2.1_hiera_t.yaml`) and paths to any YAML file are accepted as well.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml


@dataclass(frozen=True)
class TrunkConfig:
    embed_dim: int = 96
    num_heads: int = 1
    stages: tuple[int, ...] = (2, 3, 16, 3)
    global_att_blocks: tuple[int, ...] = (12, 16, 20)
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (14, 14)


@dataclass(frozen=True)
class ModelConfig:
    """Everything that shapes the network. Defaults are the SAM 2.1 values shared by all sizes."""

    name: str = "custom"
    image_size: int = 1024
    trunk: TrunkConfig = field(default_factory=TrunkConfig)
    d_model: int = 256
    mem_dim: int = 64
    memory_attention_layers: int = 4
    memory_attention_ffn: int = 2048
    decoder_mlp_dim: int = 2048
    num_maskmem: int = 7
    max_obj_ptrs_in_encoder: int = 16
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    # SAM 2.1 additions; SAM 2 (July 2024) configs set these to false.
    no_obj_embed_spatial: bool = True
    add_tpos_enc_to_obj_ptrs: bool = True
    proj_tpos_enc_in_obj_ptrs: bool = True
    use_signed_tpos_enc_to_obj_ptrs: bool = True
    # Post-processing that Meta's builder switches on by default (`apply_postprocessing`).
    dynamic_multimask_via_stability: bool = True
    dynamic_multimask_stability_delta: float = 0.05
    dynamic_multimask_stability_thresh: float = 0.98

    @property
    def backbone_stride(self) -> int:
        return 16

    @property
    def embedding_size(self) -> int:
        """Side of the stride-16 feature grid (64 at 1024 px)."""
        return self.image_size // self.backbone_stride

    def replace(self, **changes) -> ModelConfig:
        return dataclasses.replace(self, **changes)


def config_names() -> list[str]:
    """Names of the configs shipped with the package."""
    folder = resources.files("configs") / "models"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


_SIZE_ALIASES = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}


def canonical_name(config: str | Path) -> str:
    """`configs/sam2.1/sam2.1_hiera_t.yaml`, `sam2.1_hiera_tiny` and `sam2.1-hiera-tiny` (the
    checkpoint / Hugging Face spellings) all name `sam2.1_hiera_t`."""
    name = Path(config).name
    for suffix in (".yaml", ".yml", ".pt"):
        name = name.removesuffix(suffix)
    name = name.replace("-hiera-", "_hiera_").replace("base-plus", "base_plus")
    head, sep, size = name.rpartition("_hiera_")
    return f"{head}{sep}{_SIZE_ALIASES.get(size, size)}" if sep else name


def _resolve(config: str | Path) -> tuple[str, str]:
    """-> (name, YAML text) for a name, a Meta-style config path, or a YAML file path."""
    path = Path(config)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path.stem, path.read_text()
    name = canonical_name(config)
    shipped = resources.files("configs") / "models" / f"{name}.yaml"
    if not shipped.is_file():
        raise ValueError(f"unknown model config {str(config)!r}; known: {', '.join(config_names())} "
                         "(or pass the path of a YAML file)")
    return name, shipped.read_text()


def _build(cls, values: dict, where: str):
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown config keys {unknown}")
    kwargs = {}
    for key, value in values.items():
        if key == "trunk":
            value = _build(TrunkConfig, value or {}, f"{where}.trunk")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def load_config(config: str | Path | ModelConfig) -> ModelConfig:
    if isinstance(config, ModelConfig):
        return config
    name, text = _resolve(config)
    values = yaml.safe_load(text) or {}
    if not isinstance(values, dict):
        raise ValueError(f"config {name!r} must be a YAML mapping")
    values.setdefault("name", name)
    return _build(ModelConfig, values, f"config {name!r}")
