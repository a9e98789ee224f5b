"""`propagate(view, prompt_field=..., label_field=..., model=...)`: SAM 2 masklets for a FiftyOne
view with FiftyOne's ergonomics, so a user never touches Ray. The prompts become jobs, the jobs run
on the Ray runtime (a local Ray, a cluster by `address`) or through the Serve app (`serve_url`)
into a masklet store, and the store is written back as labels a few videos at a time, so labels
appear while a long job runs and progress can be reported.

With `address` (a remote cluster) pass a `store` folder the workers can write and this process can
read (shared storage); by default the store is a temporary folder removed afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sam2.checkpoint import BUNDLED, checkpoint_file, infer_config_name, read_state_dict
from sam2.config import ModelConfig
from sam2_ray.labeler import VideoOutcome
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import VideoJob
from sam2_ray.replica import ModelSpec

from .fields import field_path, label_field, media_type, prompt_field, root_dataset
from .media import ensure_metadata
from .prompts import object_labels, prompt_jobs
from .review import DEFAULT_RULES, ReviewRules
from .writeback import Target, route_reviews, write_video

DEFAULT_MODEL = "sam2.1_hiera_mini"  # with its bundled trained weights, the default of every command
Progress = Callable[[float, str], None]  # (fraction done, what is happening)

log = logging.getLogger(__name__)


@dataclass
class PropagateResult:
    outcomes: list[VideoOutcome] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # sample id -> reason
    samples: int = 0  # samples whose labels were written
    frames: int = 0
    flagged_frames: int = 0
    unprompted: int = 0  # samples of the view without prompts (left alone)
    review_view: str | None = None

    def report(self) -> str:
        lines = [f"{self.samples} samples labelled ({self.frames} frames), {len(self.failed)} failed, "
                 f"{self.unprompted} without prompts; "
                 f"{self.flagged_frames} frames flagged for review"
                 + (f" (saved view {self.review_view!r})" if self.review_view else "")]
        lines += [f"  failed {sample_id}: {reason}" for sample_id, reason in self.failed.items()]
        return "\n".join(lines)


def model_spec(model: str | ModelConfig | ModelSpec | None = None, checkpoint: str | None = None,
               seed: int = 0) -> ModelSpec:
    """A config name, a YAML path or a ModelConfig (random weights unless `checkpoint`) -> ModelSpec, by the
    rule of `sam2-ray segment`: neither model nor checkpoint is the bundled trained model; a checkpoint
    alone runs the config its keys fit."""
    if isinstance(model, ModelSpec):
        return model
    if model is None and checkpoint is None:
        model, checkpoint = DEFAULT_MODEL, BUNDLED
    if checkpoint is not None:
        try:
            checkpoint = checkpoint_file(checkpoint, model)
        except FileNotFoundError as error:
            raise ValueError(str(error)) from None
        if model is None:
            model = infer_config_name(read_state_dict(checkpoint))
    else:
        log.warning("no checkpoint given: model %s has random weights, so its masks mean nothing", model)
    spec = ModelSpec(model, None if checkpoint is None else str(checkpoint), seed)
    spec.name  # noqa: B018  (reads the config: an unknown model is a ValueError here, not on a worker)
    return spec


def _chunks(jobs: list[VideoJob], size: int) -> Iterator[list[VideoJob]]:
    for start in range(0, len(jobs), size):
        yield jobs[start:start + size]


def _ray_runs(jobs: list[VideoJob], spec: ModelSpec, store: MaskletStore, address: str | None, replicas: int,
              num_gpus: float, progress_bar: bool) -> Iterator[list[VideoOutcome]]:
    from sam2_ray.cluster import connect
    from sam2_ray.scheduler import PoolConfig, Scheduler

    if not jobs:  # nothing prompted: no Ray, no model
        return
    connect(address)
    scheduler = Scheduler(spec, store, PoolConfig(num_replicas=replicas, num_gpus=num_gpus))
    try:
        for chunk in _chunks(jobs, max(8, 4 * replicas)):  # labels are written back chunk by chunk
            yield scheduler.run(chunk, progress=progress_bar).outcomes
    finally:
        scheduler.shutdown()


def _serve_runs(jobs: list[VideoJob], url: str, store: MaskletStore, model: str | None,
                token: str | None) -> Iterator[list[VideoOutcome]]:
    from .serving import label_videos

    for chunk in _chunks(jobs, 1):
        yield label_videos(url, chunk, store, model, token)


def propagate(view, prompt_field: str, label_field: str = "sam2", model: str | ModelConfig | ModelSpec | None = None,
              checkpoint: str | None = None, address: str | None = None, store: str | Path | None = None,
              segmentation_field: str | None = None, review: ReviewRules | None = DEFAULT_RULES, replicas: int = 1,
              num_gpus: float = 0.0, serve_url: str | None = None, serve_token: str | None = None,
              progress: Progress | None = None) -> PropagateResult:
    """Track the objects prompted in `prompt_field` through every sample of `view` and write them to
    `label_field` (frame-level on videos). `model`: a config name or YAML path, with `checkpoint`
    for trained weights (see `model_spec`; by default the bundled trained model); `serve_url`: run
    through a Serve app instead (its `model` is a served model name; by default the app's default).
    Bad fields raise ValueError before any work; a sample whose prompts or media are bad is reported
    in the result's `failed`, and the others are labelled."""
    _check_fields(view, prompt_field, label_field, segmentation_field)
    dataset = root_dataset(view)
    spec = None if serve_url else model_spec(model, checkpoint)
    ensure_metadata(view)
    planned = prompt_jobs(view, prompt_field, salt=repr(spec) if spec else f"{serve_url}|{model}")
    result = PropagateResult(failed=dict(planned.failed), unprompted=len(planned.unprompted))
    target = Target(field_path(view, label_field),
                    field_path(view, segmentation_field) if segmentation_field else None, review)
    report = progress or (lambda fraction, label: None)
    report(0.0, f"labelling {len(planned.jobs)} samples")
    flagged: dict[str, bool] = {}
    with tempfile.TemporaryDirectory(prefix="sam2-fiftyone-") as scratch:
        masklets = MaskletStore(store or scratch)
        runs = (_serve_runs(planned.jobs, serve_url, masklets, None if model is None else str(model),
                            serve_token) if serve_url else
                _ray_runs(planned.jobs, spec, masklets, address, replicas, num_gpus, progress is None))
        jobs = {job.video_id: job for job in planned.jobs}
        with contextlib.closing(runs):  # replicas are shut down even when a write fails
            for outcomes in runs:
                for outcome in outcomes:
                    _write_back(dataset, masklets, jobs[outcome.video_id], outcome, target, result, flagged)
                report(len(result.outcomes) / max(len(planned.jobs), 1),
                       f"{len(result.outcomes)}/{len(planned.jobs)} samples labelled")
    result.review_view = route_reviews(dataset, flagged, target)
    return result


def _write_back(dataset, masklets: MaskletStore, job: VideoJob, outcome: VideoOutcome, target: Target,
                result: PropagateResult, flagged: dict[str, bool]) -> None:
    """One finished job's labels onto its sample, counted in `result`."""
    result.outcomes.append(outcome)
    sample_id = job.source_ref["sample_id"]
    if not masklets.is_done(job.video_id):
        result.failed[sample_id] = f"{job.uri}: {outcome.reason}"
        return
    frames, flags = write_video(dataset, sample_id, masklets, job.video_id, target, object_labels(job),
                                job.source_ref.get("frames"))
    result.samples, result.frames, result.flagged_frames = (
        result.samples + 1, result.frames + frames, result.flagged_frames + flags)
    flagged[sample_id] = flags > 0


def _check_fields(view, prompt: str, label: str, segmentation: str | None) -> None:
    import fiftyone as fo

    media_type(view)
    prompt_field(view, prompt)
    label_field(view, label)
    if segmentation:
        label_field(view, segmentation, fo.Segmentation)
    names = {field_path(view, n) for n in (prompt, label, segmentation) if n}
    if len(names) != len([n for n in (prompt, label, segmentation) if n]):
        raise ValueError(f"the prompt, label and segmentation fields must differ, got {prompt!r}, {label!r}, "
                         f"{segmentation!r}")
