"""A screenshot of the FiftyOne App showing masks propagated by `propagate` on a generated video.

    .venv/bin/python scripts/fiftyone_app_screenshot.py [--checkpoint outputs/train/mini/last.pt] \
        [--out docs/screenshots/fiftyone_app.png]

A private mongod, one generated video (256 x 192) with box prompts on frames 1 and 41 only, the
mini model on a local Ray (random weights unless --checkpoint), J&F against the generator's
ground truth, then the App on 127.0.0.1 and headless Chromium (`apt-get install chromium`) opening
the sample's modal (`?id=<sample id>`), which plays from frame 1 with the masks drawn.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fiftyone_clips import ground_truth, video_sample  # noqa: E402
from tests.support.fiftyone_db import fiftyone_test_database  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def screenshot(url: str, out: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium on PATH (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                        f"--user-data-dir={profile}", "--window-size=1600,1000", "--hide-scrollbars",
                        "--virtual-time-budget=20000", f"--screenshot={out}", url],
                       check=True, capture_output=True, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint")
    parser.add_argument("--model", default="sam2.1_hiera_mini")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots/fiftyone_app.png"))
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    fo = fiftyone_test_database()
    from integrations.fiftyone import evaluate_masklets
    from pipelines.fiftyone_propagate import propagate
    from sam2.data.synthetic import ClipSpec, generate_clip

    folder = Path(tempfile.mkdtemp(prefix="sam2-fo-app-"))
    clip = generate_clip(20_000_001, ClipSpec(num_frames=48, height=192, width=256, min_objects=3, max_objects=3))
    dataset = fo.Dataset("sam2_demo", overwrite=True)
    sample = video_sample(fo, clip, folder / "demo.mp4", keyframes=(0, 40))
    dataset.add_sample(sample)
    result = propagate(dataset, prompt_field="prompts", label_field="sam2", model=args.model,
                       checkpoint=args.checkpoint, segmentation_field="sam2_seg")
    print(result.report())
    dataset.set_values("frames.gt", {sample.id: ground_truth(fo, clip)}, key_field="id")
    print(evaluate_masklets(dataset, "sam2", "gt", eval_key="demo").report())
    port = free_port()
    session = fo.launch_app(dataset, remote=True, address="127.0.0.1", port=port, auto=False)
    try:
        wait_for(f"http://127.0.0.1:{port}/")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        screenshot(f"http://127.0.0.1:{port}/datasets/{dataset.name}?id={sample.id}", args.out.resolve())
        print(f"screenshot: {args.out}")
    finally:
        session.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
