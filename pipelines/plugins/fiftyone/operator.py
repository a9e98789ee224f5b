"""The App operator "Propagate masks with SAM 2": `propagate` on the App's current view, with the
form, progress and result a FiftyOne user expects. It runs through a Serve app (`serve_url`) or on
Ray (a local Ray, or a cluster by `address`); delegation is offered and chosen by default, so a
long job never blocks the App's server (`fiftyone delegated launch` runs it)."""

from __future__ import annotations

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from integrations.fiftyone.fields import PROMPT_TYPES


class PropagateMasks(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(name="propagate_masks", label="Propagate masks with SAM 2", dynamic=True,
                                  allow_immediate_execution=True, allow_delegated_execution=True,
                                  default_choice_to_delegated=True)

    def resolve_input(self, ctx):
        inputs = types.Object()
        prompt_fields = _prompt_fields(ctx.dataset) if ctx.dataset is not None else []
        if prompt_fields:
            choices = types.Dropdown()
            for name in prompt_fields:
                choices.add_choice(name, label=name)
            inputs.enum("prompt_field", choices.values(), default=prompt_fields[0], required=True,
                        label="Prompts", description="Detections (boxes) or Keypoints (clicks), tied by index",
                        view=choices)
        else:
            inputs.str("prompt_field", required=True, label="Prompts",
                       description="a field of Detections or Keypoints (none found on this dataset)")
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
        result = propagate(ctx.target_view(), prompt_field=params["prompt_field"],
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


def _prompt_fields(dataset: fo.Dataset) -> list[str]:
    schema = dataset.get_frame_field_schema() if dataset.media_type == "video" else dataset.get_field_schema()
    return sorted(name for name, f in (schema or {}).items() if getattr(f, "document_type", None) in PROMPT_TYPES)
