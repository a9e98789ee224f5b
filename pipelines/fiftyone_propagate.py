"""`propagate(view, prompt_field=..., label_field=..., model=...)`: SAM 2 masklets for a FiftyOne view with
FiftyOne's ergonomics, so a user never touches Ray. The objects come from a prompt field, from a field of
detections (`detections_field`), or, with neither, the model finds every object itself. The view is the
source and its dataset the sink (integrations/fiftyone), run by the one labelling run (pipelines/labelling.py)
on the Ray runtime (a local Ray, a cluster by `address`) or through a Serve app (`serve_url`; prompts only);
labels are written back a few videos at a time, so they appear while a long job runs and progress can be
reported.

With `address` (a remote cluster) pass a `store` folder the workers can write and this process can read
(shared storage); by default the store is a temporary folder removed afterwards.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from integrations.fiftyone.fields import InvalidField, check_fields
from integrations.fiftyone.prompts import sample_id_of
from integrations.fiftyone.review import DEFAULT_RULES, ReviewRules
from integrations.fiftyone.sink import FiftyOneSink
from integrations.fiftyone.source import FiftyOneSource
from pipelines.labelling import RayRuntime, ServeRuntime, label
from pipelines.settings import DEFAULT_CONFIG, Settings, load_settings
from sam2.checkpoint import BUNDLED, checkpoint_file, infer_config_name, read_state_dict
from sam2.config import ModelConfig
from sam2_ray.labeler import VideoOutcome
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.replica import ModelSpec

DEFAULT_MODEL = "sam2.1_hiera_mini"  # with its bundled trained weights, the default of every command
Progress = Callable[[float, str], None]  # (fraction done, what is happening)

log = logging.getLogger(__name__)


@dataclass
class PropagateResult:
    outcomes: list[VideoOutcome] = field(default_factory=list)  # the jobs', then the samples that could not run
    failed: dict[str, str] = field(default_factory=dict)  # sample id -> reason
    samples: int = 0  # samples whose labels were written
    frames: int = 0
    flagged_frames: int = 0
    unprompted: int = 0  # samples of the view without prompts (or detections) in the field read (left alone)
    review_view: str | None = None
    mode: str = "prompts"  # "prompts", "detections" or "everything" (see FiftyOneSource)

    def report(self) -> str:
        unprompted = "" if self.mode == "everything" else f", {self.unprompted} without {self.mode}"
        lines = [f"{self.samples} samples labelled ({self.frames} frames, mode {self.mode}), {len(self.failed)} "
                 f"failed{unprompted}; {self.flagged_frames} frames flagged for review"
                 + (f" (saved view {self.review_view!r})" if self.review_view else "")]
        lines += [f"  failed {sample_id}: {reason}" for sample_id, reason in self.failed.items()]
        lines += [f"  {sample_id_of(o.video_id)}: {o.reason}" for o in self.outcomes if o.status == "done" and o.reason]
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


def replica_model(settings: Settings, model, checkpoint: str | None) -> ModelSpec:
    """The model of the replicas: `model`/`checkpoint` by `model_spec`'s rule, or the config's model when
    neither is given (the default config's is the bundled trained model); the config's other model keys
    (tracker, memory selection) either way. A ModelSpec is taken whole."""
    if isinstance(model, ModelSpec):
        return model
    if model is None and checkpoint is None:
        model, checkpoint = settings.model.config, settings.model.checkpoint
    spec = model_spec(model, checkpoint, settings.model.seed)
    return replace(settings.model, config=spec.config, checkpoint=spec.checkpoint)


def propagate(view, prompt_field: str | None = None, label_field: str = "sam2",
              model: str | ModelConfig | ModelSpec | None = None, checkpoint: str | None = None,
              address: str | None = None, store: str | Path | None = None, segmentation_field: str | None = None,
              review: ReviewRules | None = DEFAULT_RULES, replicas: int | None = None, num_gpus: float | None = None,
              serve_url: str | None = None, serve_token: str | None = None, progress: Progress | None = None,
              config: str | Path = DEFAULT_CONFIG, detections_field: str | None = None) -> PropagateResult:
    """Track objects through every sample of `view` and write them to `label_field` (frame-level on videos).
    The objects: those prompted in `prompt_field` (Detections or Keypoints, tied into objects by `index`);
    or, with `detections_field` (Detections on any frames; sample-level on images), one track per object its
    detections show: a detection starts a track, or joins the track whose box it overlaps (box IoU, the
    config's `auto.tracks.match_iou`), so `index` is ignored and noisy, missing or duplicate boxes are fine;
    each track keeps the class name of the detection that started it ("object" when it had none). With
    neither field, the automatic mask generator finds every object on keyframes (the config's `auto` section)
    and each is tracked, labelled "object". Both fields at once is a ValueError.

    `model`: a config name or YAML path, with `checkpoint` for trained weights (see `model_spec`; by default
    the model of `config`, the bundled trained one); `replicas`, `num_gpus` override the config's pool;
    `serve_url`: run through a Serve app instead (prompts only; its `model` is a served model name; by
    default the app's default). Bad fields raise ValueError before any work; a sample whose prompts,
    detections or media are bad is reported in the result's `failed`, and the others are labelled."""
    check_fields(view, prompt_field, label_field, segmentation_field, detections_field)
    if serve_url and not prompt_field:
        raise InvalidField("labelling without prompts (detections, or every object) runs on Ray replicas, not "
                           "through a Serve app: give a prompt field, or leave out serve_url")
    settings = load_settings(config).with_pool(num_replicas=replicas, num_gpus=num_gpus)
    served = None if model is None else str(model)
    if not serve_url:
        settings = replace(settings, model=replica_model(settings, model, checkpoint))
    source = FiftyOneSource(view, prompt_field, salt=f"{serve_url}|{served}" if serve_url else repr(settings.model),
                            detections_field=detections_field)
    sink = FiftyOneSink(view, label_field, segmentation_field, review)
    report = progress or (lambda fraction, text: None)

    def on_batch(outcomes: list[VideoOutcome], jobs: int) -> None:
        report(len(outcomes) / jobs, f"{len(outcomes)}/{jobs} samples labelled")

    with tempfile.TemporaryDirectory(prefix="sam2-fiftyone-") as scratch:
        masklets = MaskletStore(store or scratch)

        def runtime():
            report(0.0, "connecting to the Serve app" if serve_url else "starting the model replicas")
            if serve_url:
                return ServeRuntime(serve_url, masklets, served, serve_token)
            return RayRuntime(settings, masklets, address)

        batch = 1 if serve_url else max(8, 4 * settings.pool.num_replicas)
        run = label(source, sink, masklets, runtime, batch_size=batch, progress=progress is None, on_batch=on_batch)
    failed = {o.video_id: o.reason for o in run.planned.rejected if o.status == "failed"}
    return PropagateResult(run.summary.outcomes, {**failed, **sink.failed}, sink.samples, sink.frames,
                           sink.flagged_frames, sum(o.status == "skipped" for o in run.planned.rejected),
                           sink.review_view, source.mode)
