"""`sam2-ray autolabel`: a manifest of videos and prompts -> masklets in the store, on a local Ray
(default) or an existing cluster (`--address`); on request, renders to look at (overlay mp4,
contact sheet) drawn by Ray tasks once the labelling is done."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from pipelines.errors import InvalidInput
from pipelines.labelling import RayRuntime, label
from pipelines.manifest import ManifestSource
from pipelines.settings import DEFAULT_CONFIG, load_settings
from sam2_ray.cluster import connect
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import VideoJob
from sam2_ray.render import RenderOptions, discard_partial_renders, outdated_outputs, render_video
from sam2_ray.scheduler import JobSummary


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


def render_stored(store: MaskletStore, jobs: list[VideoJob], options: RenderOptions,
                  address: str | None = None) -> tuple[list[Path], dict[str, str]]:
    """Render every labelled video of the job whose renders are missing or older than its masklets,
    one Ray task per video (on the Ray at `address`, a private local one by default, joined or started only
    when something is to be drawn); a video that cannot be rendered is reported (video_id -> reason), the
    others go on. Returns the files written and the failures."""
    import ray
    from ray.exceptions import RayError, RayTaskError

    discard_partial_renders(store)
    todo = {job.video_id: (job, outputs) for job in jobs if store.is_done(job.video_id)
            and (outputs := outdated_outputs(store, job.video_id, options))}
    if not todo:
        return [], {}
    connect(address)
    task = ray.remote(num_cpus=1)(render_video)
    refs = {video_id: task.remote(store, video_id, job.uri, replace(options, outputs=outputs))
            for video_id, (job, outputs) in todo.items()}
    written, failures = [], {}
    for video_id, ref in refs.items():
        try:
            written += ray.get(ref)
        except RayTaskError as error:  # the render's own exception, without Ray's traceback
            failures[video_id] = str(error.cause or error)
        except RayError as error:  # its worker died
            failures[video_id] = str(error)
    return written, failures


class RenderSink:
    """Renders of every labelled video of the run (done now, or earlier), drawn once the labelling is done, by
    Ray tasks on the run's Ray (`address`; started here when every video was already labelled)."""

    def __init__(self, options: RenderOptions, address: str | None = None) -> None:
        self.options, self.address, self.jobs = options, address, []
        self.written: list[Path] = []
        self.failures: dict[str, str] = {}

    def write(self, store: MaskletStore, finished) -> None:
        self.jobs += [job for job, _ in finished]

    def close(self, store: MaskletStore) -> None:
        if self.options.outputs and self.jobs:
            self.written, self.failures = render_stored(store, self.jobs, self.options, self.address)


def autolabel(manifest: str | Path, config: str | Path = DEFAULT_CONFIG, store: str | Path | None = None,
              address: str | None = None, replicas: int | None = None, render: str | None = None,
              progress: bool = True) -> AutolabelResult:
    """`render`: comma-separated outputs ("overlay,sheet"), overriding the config's."""
    settings = load_settings(config).with_pool(num_replicas=replicas)
    render_options = settings.render
    if render is not None:
        try:
            render_options = replace(render_options, outputs=render)
        except ValueError as error:
            raise InvalidInput(f"--render: {error}") from None
    source = ManifestSource(manifest)
    store = MaskletStore(store or settings.store)
    sink = RenderSink(render_options, address)
    run = label(source, sink, store, lambda: RayRuntime(settings, store, address), progress=progress)
    return AutolabelResult(run.summary, store.root, sink.written, sink.failures)
