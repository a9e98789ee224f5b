"""The App operator "Propagate masks with SAM 2": `propagate` on the App's current view, with the
form, progress and result a FiftyOne user expects. The objects to track come from a prompt field, a
field of detections, or the model finds every object (`mode`). It runs through a Serve app
(`serve_url`; prompts only) or on Ray (a local Ray, or a cluster by `address`); delegation is offered
and chosen by default, so a long job never blocks the App's server (`fiftyone delegated launch` runs it)."""

from __future__ import annotations

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from integrations.fiftyone.fields import PROMPT_TYPES

MODES = {"prompts": "Prompts: boxes or clicks tied by index",
         "detections": "Detections: a track per detected object",
         "everything": "Everything: every object the model finds"}


class PropagateMasks(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(name="propagate_masks", label="Propagate masks with SAM 2", dynamic=True,
                                  allow_immediate_execution=True, allow_delegated_execution=True,
                                  default_choice_to_delegated=True)

    def resolve_input(self, ctx):
        inputs = types.Object()
        modes = types.RadioGroup()
        for name, label in MODES.items():
            modes.add_choice(name, label=label)
        # Not required: a call without a mode (scripts written before it existed) tracks prompts.
        inputs.enum("mode", modes.values(), default="prompts", label="Objects to track", view=modes)
        mode = ctx.params.get("mode") or "prompts"
        if mode == "prompts":
            _field_input(inputs, "prompt_field", _label_fields(ctx.dataset, PROMPT_TYPES), "Prompts",
                         "Detections (boxes) or Keypoints (clicks), tied by index")
        elif mode == "detections":
            _field_input(inputs, "detections_field", _label_fields(ctx.dataset, (fo.Detections,)), "Detections",
                         "Detections on any frames, without index: each starts a track or joins the one it overlaps")
        inputs.str("label_field", default="sam2", required=True, label="Label field")
        inputs.str("segmentation_field", label="Segmentation field (optional)")
        inputs.str("model", label="Model (optional)",
                   description="config name or YAML path (default: the bundled sam2.1_hiera_mini and its trained "
                               "weights); without a checkpoint its weights are random")
        inputs.str("checkpoint", label="Checkpoint (optional)", description="a .pt path, or 'bundled'")
        inputs.str("serve_url", label="Serve app URL (optional)", description="e.g. http://127.0.0.1:8000")
        inputs.str("address", label="Ray cluster address (optional)", description="default: a local Ray")
        return types.Property(inputs, view=types.View(label="Propagate masks with SAM 2"))

    def execute(self, ctx):
        from pipelines.fiftyone_propagate import propagate

        params = ctx.params
        mode = params.get("mode") or "prompts"
        result = propagate(ctx.target_view(), prompt_field=params["prompt_field"] if mode == "prompts" else None,
                           detections_field=params["detections_field"] if mode == "detections" else None,
                           label_field=params.get("label_field") or "sam2",
                           model=params.get("model") or None, checkpoint=params.get("checkpoint") or None,
                           address=params.get("address") or None,
                           segmentation_field=params.get("segmentation_field") or None,
                           serve_url=params.get("serve_url") or None,
                           progress=lambda fraction, label: ctx.set_progress(progress=fraction, label=label))
        if not ctx.delegated:
            ctx.ops.reload_dataset()
        return {"samples": result.samples, "frames": result.frames, "failed": result.failed,
                "flagged_frames": result.flagged_frames, "review_view": result.review_view}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("samples", label="Samples labelled")
        outputs.int("frames", label="Frames written")
        outputs.int("flagged_frames", label="Frames flagged for review")
        outputs.str("review_view", label="Saved view of the flagged frames")
        return types.Property(outputs)


def _field_input(inputs, name: str, found: list[str], label: str, description: str) -> None:
    """A dropdown of the dataset's fields that fit, or a text box when it has none."""
    if found:
        choices = types.Dropdown()
        for field_name in found:
            choices.add_choice(field_name, label=field_name)
        inputs.enum(name, choices.values(), default=found[0], required=True, label=label, description=description,
                    view=choices)
    else:
        inputs.str(name, required=True, label=label, description=f"{description} (no such field on this dataset)")


def _label_fields(dataset: fo.Dataset | None, document_types) -> list[str]:
    """The dataset's label fields (frame-level on videos) holding one of `document_types`."""
    if dataset is None:
        return []
    schema = dataset.get_frame_field_schema() if dataset.media_type == "video" else dataset.get_field_schema()
    return sorted(name for name, f in (schema or {}).items() if getattr(f, "document_type", None) in document_types)
