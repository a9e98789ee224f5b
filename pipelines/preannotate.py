"""`sam2-ray label-studio preannotate`: the prompts drawn in a Label Studio project -> tracked on the
Ray runtime (local, or a cluster by `--address`) -> predictions written back in bulk under one
model version, replacing that version's earlier ones. Tasks without prompts are labelled with every
object found (mode everything) unless `unprompted="skip"`; with `rectangles="detections"`, rectangles
(drawn, or a detector's predictions read with `source="predictions:VERSION"`) are unlinked detections
that become one track per object. Optionally, review tasks: sampled video frames as image tasks in
another project, carrying the masks as brushes.

Timings are kept per stage (Label Studio I/O vs tracking) for the summary and the benchmark."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from integrations.label_studio.connection import LabelStudioConnection, LabelStudioError, LabelStudioUnavailable
from integrations.label_studio.prompts import PREDICTIONS, SkippedTask
from integrations.label_studio.review import ReviewProject
from integrations.label_studio.sink import LabelStudioSink
from integrations.label_studio.source import LabelStudioSource
from pipelines.errors import InvalidInput
from pipelines.labelling import RayRuntime, label
from pipelines.settings import DEFAULT_CONFIG, load_settings
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.scheduler import JobSummary


@dataclass
class PreannotateResult:
    project_id: int
    model_version: str
    written: list[int] = field(default_factory=list)  # task ids with a prediction of this version
    skipped: list[SkippedTask] = field(default_factory=list)  # no prompts, malformed regions, failed tracking
    review_tasks: list[int] = field(default_factory=list)
    tracking: JobSummary | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # read, ray_start, track, write, review
    modes: dict[int, str] = field(default_factory=dict)  # written task id -> prompts, everything or detections
    notes: dict[int, str] = field(default_factory=dict)  # written task id -> what its tracking said (no objects)

    @property
    def ok(self) -> bool:
        return not (self.tracking and self.tracking.of("failed"))

    def report(self) -> str:
        io_s = sum(v for k, v in self.seconds.items() if k in ("read", "write", "review"))
        modes = Counter(self.modes.get(t, "prompts") for t in self.written)
        prompt_free = ", ".join(f"{modes[m]} {m}" for m in ("everything", "detections") if modes[m])
        lines = [f"project {self.project_id}, model version {self.model_version!r}: {len(self.written)} tasks "
                 f"pre-annotated" + (f" ({prompt_free})" if prompt_free else "") + f", {len(self.skipped)} skipped"
                 + (f", {len(self.review_tasks)} review frames" if self.review_tasks else ""),
                 f"time: Label Studio I/O {io_s:.1f} s, tracking {self.seconds.get('track', 0):.1f} s"]
        lines += [f"  task {task_id}: {note}" for task_id, note in sorted(self.notes.items())]
        lines += [f"  skipped task {s.task_id}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)


def default_model_version(spec) -> str:
    weights = Path(spec.checkpoint).stem if spec.checkpoint else f"random{spec.seed}"
    return f"sam2-ray-{spec.name}-{weights}"


def preannotate(url: str, api_key: str, project_id: int, *, model_version: str | None = None,
                source: str = "annotations", unprompted: str = "everything", rectangles: str = "prompts",
                default_label: str | None = None, config: str | Path = DEFAULT_CONFIG,
                store: str | Path | None = None, cache: str | Path | None = None, address: str | None = None,
                replicas: int | None = None, review_project: int | None = None, review_every: int = 10,
                progress: bool = True, retries: int = 5, backoff_s: float = 0.5,
                chunk_size: int = 50) -> PreannotateResult:
    """`source`: "annotations" (each task's latest), "drafts", an annotator's email, or "predictions:VERSION"
    (a model's predictions, e.g. a detector's boxes). `unprompted`: tasks without regions are labelled in mode
    "everything" (every object the automatic mask generator finds; the pipeline YAML's `auto` section) or
    "skip"ped. `rectangles`: "prompts" (each region one object) or "detections" (each box on its frame an
    unlinked detection, linked into tracks by IoU). `default_label`: the class name of objects that carry
    none (None: the config's first label; "": none). Media is cached under `cache`, masklets under `store`
    (a re-run tracks only tasks whose prompts, media, mode or model changed).
    The project is the source and the sink of the one labelling run (pipelines/labelling.py) on the Ray
    runtime (a private local Ray, or a cluster by `address`)."""
    settings = load_settings(config).with_pool(num_replicas=replicas)
    root = Path("outputs") / "label-studio"
    masklets = MaskletStore(store or root / "masklets")
    cache = Path(cache or root / "media") / f"project-{project_id}"
    model_version = model_version or default_model_version(settings.model)
    if source == PREDICTIONS + model_version:
        raise InvalidInput(f"--from {source} reads the predictions this run replaces: give another --model-version")
    try:
        connection = LabelStudioConnection(url, api_key, retries=retries, backoff_s=backoff_s)
        review = None if review_project is None else ReviewProject(connection, review_project)
        tasks = LabelStudioSource(connection, project_id, source, cache, salt=repr(settings.model),
                                  unprompted=unprompted, rectangles=rectangles, default_label=default_label)
        sink = LabelStudioSink(connection, tasks, model_version, chunk_size=chunk_size, review=review,
                               review_every=review_every)
        seconds = {}

        def runtime() -> RayRuntime:
            start = time.perf_counter()
            try:
                return RayRuntime(settings, masklets, address)
            finally:
                seconds["ray_start"] = time.perf_counter() - start

        start = time.perf_counter()
        run = label(tasks, sink, masklets, runtime, progress=progress)
        total = time.perf_counter() - start
    except (ValueError, LabelStudioError, LabelStudioUnavailable) as error:
        raise InvalidInput(str(error)) from None
    seconds |= {"read": tasks.seconds, **sink.seconds}
    seconds["track"] = total - sum(seconds.values())  # with the replicas' model loading
    rejected = [SkippedTask(int(o.video_id), o.reason) for o in run.planned.rejected]
    job_ids = {job.video_id for job in run.planned.jobs}
    tracking = JobSummary([o for o in run.summary.outcomes if o.video_id in job_ids], run.summary.seconds)
    task_of = {job.video_id: job.source_ref["task_id"] for job in run.planned.jobs}
    modes = {job.source_ref["task_id"]: job.mode for job in sink.tracked}
    notes = {task_of[o.video_id]: o.reason for o in tracking.outcomes if o.status == "done" and o.reason}
    return PreannotateResult(project_id, model_version, sink.written, rejected + sink.failed, sink.review_tasks,
                             tracking if run.planned.jobs else None, seconds, modes, notes)


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
