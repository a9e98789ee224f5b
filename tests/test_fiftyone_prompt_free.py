"""`propagate` without prompts, on a real MongoDB and a real local Ray with the bundled model: a field of detections
without track ids (noisy, missing and duplicate boxes) becomes one track per object with the detections' class
names; with no field the model finds the objects itself (from the command line); a sample whose detections do
not fit its media fails alone with the reason. Tiny clips (8 frames, 48 x 64), few runs."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from integrations.fiftyone import formats
from integrations.fiftyone.media import image_metadata, video_metadata
from sam2.evaluation.tracks import match_tracks
from tests.support.clips import write_mp4
from tests.support.detectors import CLIPS, FRAMES, HEIGHT, PIPELINE, WIDTH, true_boxes, visible

pytestmark = pytest.mark.timeout(600)

CLIP = CLIPS["good"]  # two shapes the bundled model tracks (tests/test_autolabel_prompt_free.py)
OPERATOR = "@sam2_ray/fiftyone/propagate_masks"


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """The clip as an mp4, and the pipeline YAML: the bundled model, a small generator grid."""
    folder = tmp_path_factory.mktemp("prompt-free")
    write_mp4(CLIP.frames, folder / "clip.mp4")
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(PIPELINE))
    return folder


def _det(fo, box, label: str | None, confidence: float | None = None):
    return fo.Detection(label=label, bounding_box=formats.box_from_pixels(box, WIDTH, HEIGHT), confidence=confidence)


def _video(fo, path, detections: dict[int, list] | None = None):
    """A sample of the clip with `detections` (frame_idx -> Detection list) in the frame field 'dets'."""
    sample = fo.Sample(filepath=str(path), metadata=video_metadata(str(path)))
    for frame_idx, dets in (detections or {}).items():
        sample.frames[formats.frame_number(frame_idx)]["dets"] = fo.Detections(detections=dets)
    return sample


def _noisy_detections(fo) -> dict[int, list]:
    """Boxes of the two shapes (8 x 8 and 9 x 6 pixels), each edge moved by up to 0.6 pixel; shape0 missing on
    frame 2, shape1 on frame 6; duplicates of shape0 (a copy a pixel to the right, less confident) on frames 0
    and 6. No index; confidence missing on frame 4."""
    rng = np.random.default_rng(0)
    out: dict[int, list] = {}
    for t in (0, 2, 4, 6):
        dets = []
        for k, box in enumerate(true_boxes(CLIP.masks[t])):
            if (t, k) in ((2, 0), (6, 1)):
                continue
            noisy = np.asarray(box) + rng.uniform(-0.6, 0.6, 4)
            dets.append(_det(fo, noisy, f"shape{k}", None if t == 4 else 0.9))
            if k == 0 and t in (0, 6):
                dets.append(_det(fo, np.asarray(box) + (1, 0, 1, 0), "shape0", 0.6))
        out[t] = dets
    return out


def _tracks(sample, field: str) -> dict[int, dict[int, np.ndarray]]:
    """frame_idx -> index -> H x W mask, from the written labels; one label per index and frame."""
    out: dict[int, dict[int, np.ndarray]] = {}
    for number, frame in sample.frames.items():
        dets = frame[field].detections if frame[field] is not None else []
        assert len({d.index for d in dets}) == len(dets), f"two labels of one track on frame {number}"
        out[formats.frame_idx(number)] = {d.index: formats.instance_to_mask(d.bounding_box, d.mask, WIDTH, HEIGHT)
                                          for d in dets}
    return out


def test_detections_without_index_give_one_track_per_object_and_bad_samples_fail_alone(fo, ray_cluster, media,
                                                                                      tmp_path):
    from pipelines.fiftyone_propagate import propagate

    dataset = fo.Dataset()
    good = _video(fo, media / "clip.mp4", _noisy_detections(fo))
    late = _video(fo, media / "clip.mp4", {0: [_det(fo, (4, 4, 20, 20), "a")], 11: [_det(fo, (4, 4, 20, 20), "a")]})
    outside = _video(fo, media / "clip.mp4", {1: [fo.Detection(label="b", bounding_box=[1.2, 0.1, 0.2, 0.2])]})
    empty = _video(fo, media / "clip.mp4", {3: []})
    dataset.add_samples([good, late, outside, empty])
    result = propagate(dataset, detections_field="dets", label_field="sam2", config=media / "pipeline.yaml",
                       store=tmp_path / "store")
    assert (result.mode, result.samples, result.unprompted) == ("detections", 1, 1), result.report()
    assert set(result.failed) == {late.id, outside.id}, result.report()
    late_det = late.frames[12]["dets"].detections[0].id
    assert f"detection {late_det} (a) on frame 12: the video has {FRAMES} frames" in result.failed[late.id]
    assert "(b) on frame 2: bounding_box [1.2, 0.1, 0.2, 0.2] lies outside the frame" in result.failed[outside.id]
    assert (empty.id, "skipped", "no detections in 'dets'") in [(o.video_id, o.status, o.reason)
                                                                for o in result.outcomes]
    late.reload()
    assert late.frames[1]["sam2"] is None  # a failed sample gets no labels

    good.reload()
    tracks = _tracks(good, "sam2")
    assert sorted(tracks) == list(range(FRAMES))
    matching = match_tracks(visible(CLIP.masks), tracks)
    assert (matching.recall, matching.duplicates) == (1.0, ()), matching.report()  # one track per shape
    assert {m.gt_id: m.track_id for m in matching.objects} == {0: 1, 1: 2}
    assert all(m.jf >= 0.5 for m in matching.objects), matching.report()
    labels = {(d.index, d.label) for frame in good.frames.values() for d in frame["sam2"].detections}
    assert labels == {(1, "shape0"), (2, "shape1")}  # class names from the detections, index stable

    # An image dataset (sample-level detections; a track seen on its one frame is kept), from the App operator
    # with the default pipeline config.
    import fiftyone.operators as foo
    from PIL import Image

    from pipelines.fiftyone import PLUGINS_DIR

    Image.fromarray(CLIP.frames[4]).save(tmp_path / "frame.png")
    images = fo.Dataset()
    image = fo.Sample(filepath=str(tmp_path / "frame.png"), metadata=image_metadata(str(tmp_path / "frame.png")),
                      dets=fo.Detections(detections=_noisy_detections(fo)[4]))
    images.add_sample(image)
    fo.config.plugins_dir = str(PLUGINS_DIR)
    run = foo.execute_operator(OPERATOR, ctx={"dataset": images, "params": {
        "mode": "detections", "detections_field": "dets", "label_field": "sam2"}})
    assert run.error is None, run.error
    assert (run.result["samples"], run.result["failed"]) == (1, {}), run.result
    image.reload()
    found = {d.index: (d.label, formats.instance_to_mask(d.bounding_box, d.mask, WIDTH, HEIGHT))
             for d in image["sam2"].detections}
    assert sorted((index, label) for index, (label, _) in found.items()) == [(1, "shape0"), (2, "shape1")]
    for k, (_, mask) in enumerate(found[i] for i in (1, 2)):
        truth = CLIP.masks[4, k]
        assert (mask & truth).sum() / (mask | truth).sum() >= 0.5


def test_with_no_field_the_command_labels_every_object_the_model_finds(fo, ray_cluster, media, tmp_path, capsys):
    from pipelines.cli import main

    dataset = fo.Dataset()
    sample = _video(fo, media / "clip.mp4")
    dataset.add_sample(sample)
    code = main(["fiftyone", "propagate", dataset.name, "--label-field", "auto", "--config",
                 str(media / "pipeline.yaml"), "--store", str(tmp_path / "store")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"1 samples labelled ({FRAMES} frames, mode everything), 0 failed;" in printed
    sample.reload()
    tracks = _tracks(sample, "auto")
    assert sorted(tracks) == list(range(FRAMES)) and any(tracks.values())
    assert match_tracks(visible(CLIP.masks), tracks).found >= 1  # at least one shape found and followed
    assert dataset.distinct("frames.auto.detections.label") == ["object"]  # no class: the sink's default


def test_mode_inputs_are_checked_before_any_work(fo, media, tmp_path, capsys):
    """Both fields, a Keypoints field as detections, a Serve app without prompts: one-line errors, exit 2; the App
    operator's form asks for the field its mode reads; the job id follows the mode and the detections, so a
    re-run with others tracks again."""
    import fiftyone.operators as foo
    from fiftyone.operators.executor import ExecutionContext

    from integrations.fiftyone.prompts import detection_jobs, everything_jobs
    from pipelines.cli import main
    from pipelines.fiftyone import PLUGINS_DIR
    from pipelines.fiftyone_propagate import propagate

    dataset = fo.Dataset()
    sample = _video(fo, media / "clip.mp4", {0: [_det(fo, (4, 4, 20, 20), "a")]})
    sample.frames[1]["clicks"] = fo.Keypoints(keypoints=[fo.Keypoint(points=[[0.5, 0.5]])])
    dataset.add_sample(sample)
    with pytest.raises(ValueError, match="a prompt field or a detections field, not both"):
        propagate(dataset, prompt_field="clicks", detections_field="dets")
    with pytest.raises(ValueError, match="'frames.clicks' .* detections to track must be Detections"):
        propagate(dataset, detections_field="clicks")
    for argv, message in (
            (["--prompt-field", "clicks", "--detections-field", "dets"], "not allowed with argument"),
            (["--detections-field", "clicks"], "detections to track must be Detections"),
            (["--serve-url", "http://127.0.0.1:9"], "runs on Ray replicas, not through a Serve app")):
        try:
            code = main(["fiftyone", "propagate", dataset.name, *argv])
        except SystemExit as exit_:  # argparse
            code = exit_.code
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err

    fo.config.plugins_dir = str(PLUGINS_DIR)
    offered = {"prompts": {"prompt_field": ["clicks", "dets"]}, "detections": {"detections_field": ["dets"]},
               "everything": {}}
    for mode, fields in offered.items():
        form = foo.get_operator(OPERATOR).resolve_input(ExecutionContext({"dataset_name": dataset.name,
                                                                          "params": {"mode": mode}}))
        asked = form.type.properties
        assert {n: asked[n].type.values for n in ("prompt_field", "detections_field") if n in asked} == fields, mode

    (job,) = detection_jobs(dataset, "dets", salt="model").jobs
    assert (job.mode, job.source_ref) == ("detections", {"sample_id": sample.id, "frames": FRAMES})
    (detection,) = job.detections
    assert detection.box == pytest.approx((4, 4, 20, 20)) and (detection.label, detection.score) == ("a", 1.0)
    (everything,) = everything_jobs(dataset, salt="model").jobs
    assert everything.mode == "everything" and everything.video_id != job.video_id
    sample.frames[1]["dets"].detections[0].bounding_box = formats.box_from_pixels((5, 4, 20, 20), WIDTH, HEIGHT)
    sample.save()
    assert detection_jobs(dataset, "dets", salt="model").jobs[0].video_id != job.video_id
