"""`propagate` and the App operator end to end: FiftyOne prompts (FiftyOneSource) -> jobs on a real local Ray
with a tiny random-weight model -> masklet store -> frame labels (FiftyOneSink), on a real MongoDB. Random weights say
nothing about accuracy, so these check plumbing exactly: the right frames, the store's masks."""

from __future__ import annotations

import numpy as np
import pytest

from integrations.fiftyone import formats
from sam2 import rle
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.replica import ModelSpec
from tests.support.fiftyone_clips import box_prompts, small_clip, video_sample
from tests.support.models import tiny_config, write_config_yaml
from tests.support.paths import REPO

pytestmark = pytest.mark.timeout(300)

TINY = ModelSpec(config=tiny_config())


def _labels_by_frame(sample, field: str) -> dict[int, list]:
    return {fn - 1: frame[field].detections if frame[field] is not None else [] for fn, frame in sample.frames.items()}


def _assert_labels_equal_store(sample, field: str, store: MaskletStore, video_id: str, width: int, height: int):
    stored = {(r.frame_idx, r.obj_id): r for r in store.rows(video_id)}
    for frame_idx, dets in _labels_by_frame(sample, field).items():
        present = {o for (f, o), r in stored.items() if f == frame_idx and r.area > 0}
        assert {d.index for d in dets} == present, frame_idx
        for det in dets:
            row = stored[frame_idx, det.index]
            mask = formats.instance_to_mask(det.bounding_box, det.mask, width, height)
            assert np.array_equal(mask, rle.decode(row.rle, row.height, row.width)), (frame_idx, det.index)
            assert det.confidence == pytest.approx(row.score) and det.predicted_iou == pytest.approx(row.iou_pred)


def _pipeline_config(folder, extra: str = "") -> str:
    tiny = write_config_yaml(tiny_config(), folder / "tiny.yaml")
    path = folder / "pipeline.yaml"
    path.write_text(f"model:\n  config: {tiny}\n  checkpoint: null\n{extra}")
    return str(path)


def test_keyframes_0_and_40_of_a_sparse_video_give_the_store_masklets_on_every_frame(fo, ray_cluster, tmp_path):
    from pipelines.fiftyone_propagate import propagate

    clip = small_clip(11, num_frames=48)
    dataset = fo.Dataset()
    sample = video_sample(fo, clip, tmp_path / "v.mp4", keyframes=(0, 40))
    dataset.add_sample(sample)
    assert sorted(sample.frames.keys()) == [1, 41]  # only the keyframes are stored
    store = tmp_path / "store"
    result = propagate(dataset, prompt_field="prompts", label_field="sam2", model=TINY, store=store,
                       segmentation_field="sam2_seg")
    assert (result.samples, result.frames, result.failed) == (1, 48, {}), result.report()
    masklets = MaskletStore(store)
    (video_id,) = masklets.done()
    assert video_id.startswith(sample.id)
    rows = list(masklets.rows(video_id))
    assert {(r.frame_idx, r.obj_id) for r in rows} == {(t, o) for t in range(48) for o in clip.obj_ids}
    assert {r.frame_idx for r in rows if r.is_prompt_frame} == {0, 40}  # the prompts landed on their frames
    assert sum(r.area > 0 for r in rows) > 48  # random weights, but masks on most frames
    sample.reload()
    assert sorted(sample.frames.keys()) == list(range(1, 49))
    assert [fn for fn, f in sample.frames.items() if f["prompts"] is not None] == [1, 41]
    _assert_labels_equal_store(sample, "sam2", masklets, video_id, 96, 64)
    shown = min(r.frame_idx for r in rows if r.area > 0)  # random weights: not every frame has a mask
    seg = sample.frames[shown + 1]["sam2_seg"].mask
    assert seg.shape == (64, 96) and set(np.unique(seg)) <= {0, *clip.obj_ids}
    assert dataset.distinct("frames.sam2.detections.label") == ["thing"]  # the prompts' class

    # Re-run: the same labels, no duplicates, other fields untouched; a kept store is reused.
    before = dataset.values("frames.sam2")
    again = propagate(dataset, prompt_field="prompts", label_field="sam2", model=TINY, store=store)
    assert [o.status for o in again.outcomes] == ["skipped"] and again.samples == 1
    after = dataset.values("frames.sam2")
    strip = [[None if d is None else [(x.index, x.bounding_box, x.confidence, x.mask.tobytes()) for x in d.detections]
              for d in frames] for frames in before]
    assert strip == [[None if d is None else [(x.index, x.bounding_box, x.confidence, x.mask.tobytes())
                                              for x in d.detections] for d in frames] for frames in after]
    assert dataset.count("frames") == 48 and dataset.count("frames.prompts.detections") == 4

    # An image dataset: sample-level prompts, sample-level labels.
    from PIL import Image

    Image.fromarray(clip.frames[5]).save(tmp_path / "frame.png")
    images = fo.Dataset()
    image = fo.Sample(filepath=str(tmp_path / "frame.png"), boxes=box_prompts(fo, clip, 5))
    images.add_sample(image)
    # The model from a pipeline config this time (the tiny model, random weights), as `--config` gives it.
    out = propagate(images, prompt_field="boxes", label_field="sam2", store=tmp_path / "images",
                    config=_pipeline_config(tmp_path))
    assert out.samples == 1 and out.failed == {}
    image.reload()
    (image_video,) = MaskletStore(tmp_path / "images").done()
    present = {r.obj_id for r in MaskletStore(tmp_path / "images").rows(image_video) if r.area > 0}
    assert {d.index for d in (image["sam2"].detections if image["sam2"] else [])} == present


def test_app_operator_runs_immediately_and_delegated_with_progress(fo, ray_cluster, tmp_path):
    import fiftyone.operators as foo
    from fiftyone.operators.delegated import DelegatedOperationService
    from fiftyone.operators.executor import ExecutionContext

    from pipelines.fiftyone import PLUGINS_DIR

    fo.config.plugins_dir = str(PLUGINS_DIR)  # what `sam2-ray fiftyone plugins` prints
    uri = "@sam2_ray/fiftyone/propagate_masks"
    assert foo.operator_exists(uri)
    clip = small_clip(12, num_frames=10, objects=1)
    dataset = fo.Dataset()
    dataset.add_sample(video_sample(fo, clip, tmp_path / "v.mp4", keyframes=(3,)))
    model = str(write_config_yaml(tiny_config(), tmp_path / "tiny.yaml"))
    form = foo.get_operator(uri).resolve_input(ExecutionContext({"dataset_name": dataset.name, "params": {}}))
    assert form.type.properties["prompt_field"].type.values == ["prompts"]  # the dataset's prompt fields offered
    params = {"prompt_field": "prompts", "label_field": "sam2", "model": model}
    run = foo.execute_operator(uri, ctx={"dataset": dataset, "params": params})
    assert run.error is None, run.error
    assert run.result["samples"] == 1 and run.result["frames"] == 10 and run.result["failed"] == {}
    assert dataset.count("frames") == 10 and dataset.exists("frames.sam2").count("frames") == 10

    queued = foo.execute_operator(uri, ctx={"dataset": dataset, "params": {**params, "label_field": "delegated"},
                                            "request_delegation": True})
    assert queued.error is None and dataset.get_field("frames.delegated") is None  # only queued so far
    service = DelegatedOperationService()
    service.execute_queued_operations(dataset_name=dataset.name, log=False)
    (op,) = service.list_operations(dataset_name=dataset.name)
    assert op.run_state == "completed", op.run_state
    assert op.status is not None and op.status.progress == pytest.approx(1.0) and "1/1" in op.status.label
    dataset.reload()
    assert dataset.values("frames.delegated.detections.index") == dataset.values("frames.sam2.detections.index")


def test_propagation_through_the_serve_app_from_the_operator(fo, ray_cluster, tmp_path):
    """The operator's other path: a running Serve app (as the App's server would reach it over HTTP)."""
    import fiftyone.operators as foo
    from ray import serve

    from tests.support.serve_app import deploy, free_port

    clip = small_clip(13, num_frames=8, objects=2)
    dataset = fo.Dataset()
    dataset.add_sample(video_sample(fo, clip, tmp_path / "v.mp4", keyframes=(2,)))
    model = write_config_yaml(tiny_config(), tmp_path / "tiny.yaml")
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        url = deploy(f"http://127.0.0.1:{port}", "fo", {"models": [{"config": str(model), "num_cpus": 0.5}]})
        fo.config.plugins_dir = str(REPO / "pipelines" / "plugins")
        run = foo.execute_operator("@sam2_ray/fiftyone/propagate_masks", ctx={"dataset": dataset, "params": {
            "prompt_field": "prompts", "label_field": "served", "serve_url": url}})
    finally:
        serve.shutdown()
    assert run.error is None, run.error
    assert run.result["samples"] == 1 and run.result["frames"] == 8 and run.result["failed"] == {}
    assert dataset.count("frames") == 8 and dataset.exists("frames.served").count("frames") == 8
    labels = dataset.values("frames.served.detections")[0]
    assert all(np.isfinite(d.predicted_iou) and 0 <= d.confidence <= 1 for frame in labels for d in frame)


def test_without_model_or_checkpoint_propagate_runs_the_bundled_model_as_segment_does(tmp_path, caplog):
    """The rule of every command: neither is the shipped trained model; a model alone has random weights
    (and says so); a checkpoint alone runs the config its keys fit."""
    from pipelines.cli import build_parser
    from pipelines.fiftyone_propagate import model_spec, replica_model
    from pipelines.settings import load_settings
    from sam2.checkpoint import bundled_weights

    bundled = str(bundled_weights("sam2.1_hiera_mini"))
    args = build_parser().parse_args(["fiftyone", "propagate", "videos", "--prompt-field", "keyframes"])
    assert model_spec(args.model, args.checkpoint) == ModelSpec("sam2.1_hiera_mini", bundled)
    # propagate's default is the pipeline config's model, which is that same bundled model.
    settings = load_settings()
    assert replica_model(settings, args.model, args.checkpoint) == \
        ModelSpec("sam2.1_hiera_mini", bundled, auto=settings.model.auto)
    assert model_spec(checkpoint=bundled) == ModelSpec("sam2.1_hiera_mini", bundled)
    assert "random weights" not in caplog.text
    assert model_spec("sam2.1_hiera_t") == ModelSpec("sam2.1_hiera_t", None)
    assert "random weights" in caplog.text
    (tmp_path / "notes.txt").write_text("weights\n")
    with pytest.raises(ValueError, match="notes.txt is not a checkpoint file"):
        model_spec(checkpoint=str(tmp_path / "notes.txt"))


def test_propagate_runs_the_model_of_its_pipeline_config_with_the_chosen_weights(tmp_path):
    """Neither model nor checkpoint: the config's model; either: model_spec's, keeping the config's other
    model keys (here the memory selection)."""
    from pipelines.fiftyone_propagate import replica_model
    from pipelines.settings import load_settings

    settings = load_settings(_pipeline_config(tmp_path, "  memory_selection: quality\n"))
    tiny = str(tmp_path / "tiny.yaml")
    assert replica_model(settings, None, None) == ModelSpec(tiny, None, memory_selection="quality")
    assert replica_model(settings, "sam2.1_hiera_t", None) == ModelSpec("sam2.1_hiera_t", None,
                                                                        memory_selection="quality")
    assert replica_model(settings, TINY, None) == TINY  # a whole ModelSpec is taken as it is
