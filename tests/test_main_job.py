"""The README's first command, run as a newcomer runs it: the bundled sample videos auto-labelled on a
private local Ray with the bundled model, leaving a store, overlay videos and contact sheets to open."""

from __future__ import annotations

import json
import re
import subprocess

import av
import numpy as np
from PIL import Image

from pipelines.evaluate import evaluate_masks
from pipelines.samples import write_samples
from sam2.data.davis import read_label_png
from sam2_ray.masklet_store import MaskletStore
from tests.support.paths import REPO

SAMPLES = REPO / "data" / "samples"
SETUP = "bash scripts/setup.sh && "


def first_command() -> str:
    """The first bash block of the README, less the set-up the test session has already done."""
    block = re.search(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), re.S).group(1)
    assert block.startswith(SETUP), block
    return block[len(SETUP):]


def test_the_readme_main_job_labels_the_bundled_samples_into_files_to_open(tmp_path):
    for shipped in ("data", ".venv"):  # the command's relative paths, from a folder of the test's own
        (tmp_path / shipped).symlink_to(REPO / shipped)
    run = subprocess.run(["bash", "-c", first_command()], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    manifest = [json.loads(line) for line in (SAMPLES / "videos.jsonl").read_text().splitlines()]
    videos = [entry["video_id"] for entry in manifest]
    assert f"{len(videos)} done, 0 failed" in run.stdout
    assert "store: outputs/masklets" in run.stdout and "in outputs/masklets/renders (" in run.stdout

    store = MaskletStore(tmp_path / "outputs" / "masklets")
    assert store.done() == set(videos)
    assert sorted(p.name for p in (store.root / "tmp").iterdir()) == []
    for entry in manifest:
        video_id = entry["video_id"]
        with av.open(str(SAMPLES / entry["uri"])) as source:
            size = (source.streams.video[0].width, source.streams.video[0].height)
            frames = sum(1 for _ in source.decode(video=0))
        with av.open(str(store.root / "renders" / f"{video_id}.mp4")) as overlay:
            drawn = [f.to_ndarray(format="rgb24") for f in overlay.decode(video=0)]
        assert len(drawn) == frames and drawn[0].shape[1::-1] == size
        with Image.open(store.root / "renders" / f"{video_id}.png") as sheet:
            assert sheet.width > size[0] and sheet.height > size[1]
        assert {row.obj_id for row in store.rows(video_id)} == {p["obj_id"] for p in entry["prompts"]}

    # The bundled model tracks the samples well enough to be worth looking at (measured 0.53 J&F).
    score = evaluate_masks(SAMPLES / "gt", store.root, pred_format="store").score
    assert score.jf > 0.4, score


def test_the_bundled_samples_are_what_the_samples_command_generates(tmp_path):
    manifest = write_samples(tmp_path)
    assert manifest.read_text() == (SAMPLES / "videos.jsonl").read_text()
    for entry in (json.loads(line) for line in manifest.read_text().splitlines()):
        shipped, generated = SAMPLES / "gt" / entry["video_id"], tmp_path / "gt" / "Annotations" / entry["video_id"]
        names = sorted(p.name for p in shipped.glob("*.png"))
        assert names == sorted(p.name for p in generated.glob("*.png"))
        for name in names:
            np.testing.assert_array_equal(read_label_png(shipped / name), read_label_png(generated / name))
