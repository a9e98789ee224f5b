"""The one pipelines YAML (configs/pipelines/autolabel.yaml): which model, how many replicas, where the
masklets go, what to render, how to label without prompts (`auto`). Every labelling command reads it the
same way; command-line options override single keys."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import yaml

from pipelines.errors import InvalidInput, check_checkpoint
from sam2_ray.prompt_free import AutoSpec
from sam2_ray.render import RenderOptions
from sam2_ray.replica import ModelSpec
from sam2_ray.scheduler import PoolConfig
from sam2_ray.trackers import load_factory

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "pipelines" / "autolabel.yaml"


@dataclass(frozen=True)
class Settings:
    model: ModelSpec = ModelSpec()
    pool: PoolConfig = PoolConfig()
    store: str = "outputs/masklets"
    render: RenderOptions = RenderOptions()

    def with_pool(self, **values) -> Settings:
        """A copy with some pool keys overridden (e.g. num_replicas from --replicas); None keeps the file's."""
        values = {k: v for k, v in values.items() if v is not None}
        return replace(self, pool=replace(self.pool, **values)) if values else self


def _section(cls, values: dict | None, where: str):
    values = values or {}
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidInput(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"{where}: {error}") from None


def load_settings(path: str | Path = DEFAULT_CONFIG) -> Settings:
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"config not found: {path}")
    values = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(values) - {"model", "pool", "store", "render", "auto"})
    if unknown:
        raise InvalidInput(f"{path}: unknown sections {unknown}")
    if "auto" in (values.get("model") or {}):
        raise InvalidInput(f"{path}: prompt-free settings go in the top-level 'auto' section, not under 'model'")
    model = _section(ModelSpec, values.get("model"), f"{path} model")
    model = replace(model, auto=_section(AutoSpec, values.get("auto"), f"{path} auto"))
    if model.auto.detector is not None:
        try:  # named right, importable here; it is made on the replicas, where it may load weights
            load_factory(model.auto.detector, "detector")
        except ValueError as error:
            raise InvalidInput(f"{path} auto: {error}") from None
    if model.checkpoint is not None:
        check_checkpoint(model.checkpoint, model.config, f"{path}: ")
    return Settings(model, _section(PoolConfig, values.get("pool"), f"{path} pool"),
                    str(values.get("store", "outputs/masklets")),
                    _section(RenderOptions, values.get("render"), f"{path} render"))
