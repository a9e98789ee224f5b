"""`sam2-ray autolabel`: a manifest of videos and prompts -> masklets in the store, on a local Ray
(default) or an existing cluster (`--address`); on request, renders to look at (overlay mp4,
contact sheet) drawn by Ray tasks once the labelling is done."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import yaml

from pipelines.errors import InvalidInput, check_checkpoint
from pipelines.manifest import read_manifest
from sam2_ray.cluster import connect
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import VideoJob
from sam2_ray.render import RenderOptions, discard_partial_renders, outdated_outputs, render_video
from sam2_ray.replica import ModelSpec
from sam2_ray.scheduler import JobSummary, PoolConfig, Scheduler

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "pipelines" / "autolabel.yaml"


def _section(cls, values: dict | None, where: str):
    values = values or {}
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidInput(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
    return cls(**values)


def load_settings(path: str | Path) -> tuple[ModelSpec, PoolConfig, str, RenderOptions]:
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"config not found: {path}")
    settings = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(settings) - {"model", "pool", "store", "render"})
    if unknown:
        raise InvalidInput(f"{path}: unknown sections {unknown}")
    model = _section(ModelSpec, settings.get("model"), f"{path} model")
    if model.checkpoint is not None:
        check_checkpoint(model.checkpoint, model.config, f"{path}: ")
    pool = _section(PoolConfig, settings.get("pool"), f"{path} pool")
    try:
        render = _section(RenderOptions, settings.get("render"), f"{path} render")
    except ValueError as error:
        raise InvalidInput(f"{path} render: {error}") from None
    return model, pool, settings.get("store", "outputs/masklets"), render


@dataclass
class AutolabelResult:
    summary: JobSummary
    store: Path
    renders: list[Path] = field(default_factory=list)
    render_failures: dict[str, str] = field(default_factory=dict)  # video_id -> reason

    @property
    def ok(self) -> bool:
        return not self.summary.of("failed") and not self.render_failures

    def report(self) -> str:
        lines = [self.summary.report(), f"store: {self.store}"]
        if self.renders or self.render_failures:
            lines.append(f"renders: {len(self.renders)} files written, {len(self.render_failures)} failed, in "
                         f"{self.store / 'renders'} (<video>.mp4 overlay, <video>.png contact sheet)")
        lines += [f"  render failed {video_id}: {reason}" for video_id, reason in self.render_failures.items()]
        return "\n".join(lines)


def render_stored(store: MaskletStore, jobs: list[VideoJob],
                  options: RenderOptions) -> tuple[list[Path], dict[str, str]]:
    """Render every labelled video of the job whose renders are missing or older than its masklets,
    one Ray task per video; a video that cannot be rendered is reported (video_id -> reason), the
    others go on. Returns the files written and the failures."""
    import ray
    from ray.exceptions import RayError, RayTaskError

    discard_partial_renders(store)
    task = ray.remote(num_cpus=1)(render_video)
    refs = {}
    for job in jobs:
        outputs = outdated_outputs(store, job.video_id, options) if store.is_done(job.video_id) else ()
        if outputs:
            refs[job.video_id] = task.remote(store, job.video_id, job.uri, replace(options, outputs=outputs))
    written, failures = [], {}
    for video_id, ref in refs.items():
        try:
            written += ray.get(ref)
        except RayTaskError as error:  # the render's own exception, without Ray's traceback
            failures[video_id] = str(error.cause or error)
        except RayError as error:  # its worker died
            failures[video_id] = str(error)
    return written, failures


def autolabel(manifest: str | Path, config: str | Path = DEFAULT_CONFIG, store: str | Path | None = None,
              address: str | None = None, replicas: int | None = None, render: str | None = None,
              progress: bool = True) -> AutolabelResult:
    """`render`: comma-separated outputs ("overlay,sheet"), overriding the config's."""
    model, pool, default_store, render_config = load_settings(config)
    if replicas is not None:
        pool = replace(pool, num_replicas=replicas)
    if render is not None:
        try:
            render_config = replace(render_config, outputs=render)
        except ValueError as error:
            raise InvalidInput(f"--render: {error}") from None
    jobs, rejected = read_manifest(manifest)
    connect(address)
    store = MaskletStore(store or default_store)
    scheduler = Scheduler(model, store, pool)
    try:
        summary = scheduler.run(jobs, progress=progress)
    finally:
        scheduler.shutdown()
    summary.outcomes += rejected
    result = AutolabelResult(summary, store.root)
    if render_config.outputs:
        result.renders, result.render_failures = render_stored(store, jobs, render_config)
    return result
