"""`sam2-ray segment` run as a user runs it: a subprocess on the shipped sample image."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "samples" / "shapes.png"  # 512 x 384, red ellipse around (150, 120)


def sam2_ray(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def segmented(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("out")
    return sam2_ray("segment", SAMPLE, "--point", "150,120", "--out", out), out


def test_segment_writes_a_binary_mask_and_an_overlay_of_the_image_size(segmented):
    result, out = segmented
    assert result.returncode == 0, result.stderr
    mask = Image.open(out / "shapes_mask.png")
    overlay = Image.open(out / "shapes_overlay.png")
    assert (mask.mode, mask.size) == ("L", (512, 384))
    assert (overlay.mode, overlay.size) == ("RGB", (512, 384))
    assert set(np.unique(np.asarray(mask))) <= {0, 255}
    assert "predicted IoU" in result.stdout


def test_the_bundled_model_segments_the_clicked_shape(segmented):
    """No model, no checkpoint: the shipped trained model, which finds the red ellipse under the click."""
    result, out = segmented
    assert "random weights" not in result.stderr
    mask = np.asarray(Image.open(out / "shapes_mask.png")) > 0
    red = np.all(np.asarray(Image.open(SAMPLE).convert("RGB")) == (220, 50, 40), axis=-1)
    assert red[120, 150] and mask[120, 150]
    assert (mask & red).sum() / (mask | red).sum() > 0.8


def test_a_model_without_checkpoint_warns_and_is_reproducible_with_its_seed(tmp_path):
    runs = []
    for out in (tmp_path / "a", tmp_path / "b"):
        runs.append(sam2_ray("segment", SAMPLE, "--point", "150,120", "--model", "sam2.1_hiera_t", "--out", out))
        assert runs[-1].returncode == 0, runs[-1].stderr
    assert "random weights" in runs[0].stderr
    assert (tmp_path / "a" / "shapes_mask.png").read_bytes() == (tmp_path / "b" / "shapes_mask.png").read_bytes()


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.png", "--point", "1,1"], "image not found"),
        ([SAMPLE, "--point", "10,abc"], "expected X,Y"),
        ([SAMPLE, "--box", "1,2,3"], "expected X0,Y0,X1,Y1"),
        ([SAMPLE, "--point", "600,100"], "outside the 512x384 image"),
        ([SAMPLE], "at least one point or a box"),
        ([SAMPLE, "--point", "1,1", "--checkpoint", "missing.pt"], "checkpoint not found"),
        ([SAMPLE, "--point", "1,1", "--model", "sam3_hiera_t"], "unknown model config"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_code_2(args, message, tmp_path, capsys):
    """In this process (main() is what the console script calls): a traceback would fail the test as an error;
    argparse's own errors exit with 2 too."""
    from pipelines.cli import main

    try:
        code = main(["segment", *map(str, args), "--out", str(tmp_path)])
    except SystemExit as exit:
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err


def test_checkpoint_by_path_infers_the_model(tmp_path):
    import torch

    from sam2.build_sam import build_sam2

    ckpt = tmp_path / "sam2_hiera_tiny.pt"
    torch.save({"model": build_sam2("sam2_hiera_t", device="cpu").state_dict()}, ckpt)
    result = sam2_ray("segment", SAMPLE, "--box", "100,60,220,180", "--checkpoint", ckpt, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "random weights" not in result.stderr
    assert (tmp_path / "shapes_mask.png").is_file()
