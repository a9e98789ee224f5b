"""`sam2-ray label-studio preannotate`: the prompts drawn in a Label Studio project -> tracked on the
Ray runtime (local, or a cluster by `--address`) -> predictions written back in bulk under one
model version, replacing that version's earlier ones. Optionally, review tasks: sampled video
frames as image tasks in another project, carrying the masks as brushes.

Timings are kept per stage (Label Studio I/O vs tracking) for the summary and the benchmark."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from integrations.label_studio.connection import LabelStudioConnection, LabelStudioError, LabelStudioUnavailable
from integrations.label_studio.predictions import (
    job_prediction,
    review_frames,
    review_name,
    review_prediction,
)
from integrations.label_studio.prompts import SkippedTask, read_jobs
from integrations.label_studio.schema import ProjectSchema
from pipelines.errors import InvalidInput
from pipelines.settings import DEFAULT_CONFIG, load_settings
from sam2_ray.cluster import connect
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.scheduler import JobSummary, Scheduler

REVIEW_NAME = re.compile(r"p(\d+)-t(\d+)-f(\d+)\.png$")


@dataclass
class PreannotateResult:
    project_id: int
    model_version: str
    written: list[int] = field(default_factory=list)  # task ids with a prediction of this version
    skipped: list[SkippedTask] = field(default_factory=list)  # no prompts, malformed regions, failed tracking
    review_tasks: list[int] = field(default_factory=list)
    tracking: JobSummary | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # read, ray_start, track, write, review

    @property
    def ok(self) -> bool:
        return not (self.tracking and self.tracking.of("failed"))

    def report(self) -> str:
        io_s = sum(v for k, v in self.seconds.items() if k in ("read", "write", "review"))
        lines = [f"project {self.project_id}, model version {self.model_version!r}: {len(self.written)} tasks "
                 f"pre-annotated, {len(self.skipped)} skipped"
                 + (f", {len(self.review_tasks)} review frames" if self.review_tasks else ""),
                 f"time: Label Studio I/O {io_s:.1f} s, tracking {self.seconds.get('track', 0):.1f} s"]
        lines += [f"  skipped task {s.task_id}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)


def default_model_version(spec) -> str:
    weights = Path(spec.checkpoint).stem if spec.checkpoint else f"random{spec.seed}"
    return f"sam2-ray-{spec.name}-{weights}"


def preannotate(url: str, api_key: str, project_id: int, *, model_version: str | None = None,
                source: str = "annotations", config: str | Path = DEFAULT_CONFIG, store: str | Path | None = None,
                cache: str | Path | None = None, address: str | None = None, replicas: int | None = None,
                review_project: int | None = None, review_every: int = 10, progress: bool = True,
                retries: int = 5, backoff_s: float = 0.5, chunk_size: int = 50) -> PreannotateResult:
    """`source`: "annotations" (each task's latest), "drafts", or an annotator's email. Media is
    cached under `cache`, masklets under `store` (a re-run tracks only tasks whose prompts changed)."""
    settings = load_settings(config).with_pool(num_replicas=replicas)
    spec, pool = settings.model, settings.pool
    root = Path("outputs") / "label-studio"
    store = MaskletStore(store or root / "masklets")
    cache = Path(cache or root / "media") / f"project-{project_id}"
    try:
        connection = LabelStudioConnection(url, api_key, retries=retries, backoff_s=backoff_s)
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    try:
        return _run(connection, project_id, model_version or default_model_version(spec), source, spec, pool,
                    store, cache, address, review_project, review_every, progress, chunk_size)
    except (LabelStudioError, LabelStudioUnavailable) as error:
        raise InvalidInput(str(error)) from None


def _run(connection, project_id, model_version, source, spec, pool, store, cache, address, review_project,
         review_every, progress, chunk_size) -> PreannotateResult:
    result = PreannotateResult(project_id, model_version)
    start = time.perf_counter()
    try:
        schema = ProjectSchema.parse(connection.project(project_id).label_config or "")
        jobs, result.skipped = read_jobs(connection, project_id, schema, source, cache)
    except ValueError as error:
        raise InvalidInput(f"project {project_id}: {error}") from None
    result.seconds["read"] = time.perf_counter() - start

    if jobs:
        start = time.perf_counter()
        connect(address)
        result.seconds["ray_start"] = time.perf_counter() - start
        start = time.perf_counter()
        scheduler = Scheduler(spec, store, pool)
        try:
            result.tracking = scheduler.run(jobs, progress=progress)
        finally:
            scheduler.shutdown()
        result.seconds["track"] = time.perf_counter() - start  # with the replicas' model loading

    failed = {o.video_id: o.reason for o in (result.tracking.of("failed") if result.tracking else [])}
    tracked = [j for j in jobs if j.video_id not in failed and store.is_done(j.video_id)]
    result.skipped += [SkippedTask(j.source_ref["task_id"], f"tracking failed: {failed[j.video_id]}")
                       for j in jobs if j.video_id in failed]

    start = time.perf_counter()
    predictions = [job_prediction(store, job, schema, model_version) for job in tracked]
    connection.replace_predictions(project_id, predictions, model_version, chunk_size)
    result.written = [p["task"] for p in predictions]
    result.seconds["write"] = time.perf_counter() - start

    if review_project is not None:
        start = time.perf_counter()
        videos = [j for j in tracked if j.source_ref["kind"] == "video"]
        result.review_tasks = write_review_tasks(connection, review_project, project_id, videos, store,
                                                 model_version, review_every)
        result.seconds["review"] = time.perf_counter() - start
    return result


def write_review_tasks(connection: LabelStudioConnection, review_project: int, project_id: int, jobs, store,
                       model_version: str, every: int) -> list[int]:
    """Every `every`-th frame of each video as an image task of `review_project` (an image project
    with BrushLabels), with the masks as a prediction. Frames uploaded before are found by their
    file name and reused, so a re-run neither duplicates tasks nor predictions."""
    try:
        schema = ProjectSchema.parse(connection.project(review_project).label_config or "")
    except ValueError as error:
        raise InvalidInput(f"review project {review_project}: {error}") from None
    if schema.kind != "image":
        raise InvalidInput(f"review project {review_project} must be an image project (<Image> + <BrushLabels>)")
    existing = {}
    for task in connection.tasks(review_project):
        match = REVIEW_NAME.search(str((task.get("data") or {}).get(schema.data_key, "")))
        if match and int(match.group(1)) == project_id:
            existing[(int(match.group(2)), int(match.group(3)) - 1)] = task["id"]
    predictions, task_ids = [], []
    for job in jobs:
        source_task = job.source_ref["task_id"]
        frames = review_frames(store, job, every)
        for f in frames:
            if (source_task, f) not in existing:  # one file per upload: the task id is then unambiguous
                [existing[(source_task, f)]] = connection.upload(
                    review_project, [(review_name(project_id, source_task, f), frames[f][0], "image/png")])
        for frame_idx, (_, masks) in frames.items():
            task_id = existing[(source_task, frame_idx)]
            task_ids.append(task_id)
            predictions.append(review_prediction(task_id, masks, job, schema, model_version))
    connection.replace_predictions(review_project, predictions, model_version)
    return task_ids


def connect_backend(url: str, api_key: str, project_id: int, backend_url: str, title: str = "sam2-ray",
                    basic_auth: str | None = None) -> int:
    """`sam2-ray label-studio connect`: attach the Serve app's ML backend to a project (once);
    `basic_auth` is "user:password" as the app's auth settings hold them."""
    from integrations.label_studio.ml_backend import register_backend

    credentials = None
    if basic_auth is not None:
        user, sep, password = basic_auth.partition(":")
        if not sep:
            raise InvalidInput("--basic-auth must be USER:PASSWORD")
        credentials = (user, password)
    try:
        return register_backend(LabelStudioConnection(url, api_key), project_id, backend_url, title, credentials)
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    except (LabelStudioError, LabelStudioUnavailable) as error:
        raise InvalidInput(str(error)) from None
