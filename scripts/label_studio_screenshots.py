"""Screenshots of Label Studio's editor showing our pre-annotations: an image task with its brush
mask and a video task with its track (docs/screenshots/). Not a test: it needs a browser.

    .venv/bin/python scripts/label_studio_screenshots.py [--out docs/screenshots]

Needs Debian's chromium (/usr/bin/chromium) and Playwright in the Label Studio venv
(`.venv-labelstudio/bin/pip install playwright==1.65.2`; its own browser download is not used).
Starts a Label Studio server as the tests do, pre-annotates one generated image and one generated
video with the bundled mini model (random weights: the masks show the plumbing, not quality),
then drives headless Chromium from the Label Studio venv through the login form to each task.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from label_studio_sdk import LabelStudio  # noqa: E402

from integrations.label_studio.connection import LabelStudioConnection  # noqa: E402
from pipelines.preannotate import preannotate  # noqa: E402
from sam2.data.mp4 import write_mp4  # noqa: E402
from sam2.data.synthetic import ClipSpec, generate_clip  # noqa: E402
from tests.support.label_studio import PASSWORD, TOKEN, USER, VENV, start_server  # noqa: E402

IMAGE_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image"><Label value="object" background="#0000ff"/></RectangleLabels>
  <BrushLabels name="mask" toName="image"><Label value="object" background="#00ff00"/></BrushLabels>
</View>"""
VIDEO_CONFIG = """<View>
  <Labels name="labels" toName="video"><Label value="object" background="#ff8800"/></Labels>
  <Video name="video" value="$video" framerate="10.0"/>
  <VideoRectangle name="track" toName="video"/>
</View>"""
MV = "sam2-ray-screenshot"

BROWSER = r"""
import json, sys
from playwright.sync_api import sync_playwright
url, user, password, shots = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(url + "/user/login/")
    page.fill("input[name=email]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    for path, out, frame in shots:
        page.goto(url + path)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(6000)  # the editor renders masks and video frames after loading
        if frame:  # video: type the frame number into the editor's frame counter
            page.get_by_text("of 20").first.click()
            for _ in range(3):
                page.keyboard.press("Backspace")
            page.keyboard.type(str(frame))
            page.keyboard.press("Enter")
            page.wait_for_timeout(1500)
        page.screenshot(path=out)
    browser.close()
"""


def box_of(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server = start_server(tmp / "ls")
        try:
            sdk = LabelStudio(base_url=server.url, api_key=TOKEN)
            connection = LabelStudioConnection(server.url, TOKEN)
            clip = generate_clip(20_000_001, ClipSpec(num_frames=20, max_objects=2))
            h, w = clip.frames.shape[1:3]

            image = sdk.projects.create(title="image pre-annotation", label_config=IMAGE_CONFIG)
            buffer = io.BytesIO()
            Image.fromarray(clip.frames[0]).save(buffer, format="PNG")
            [image_task] = connection.upload(image.id, [("frame.png", buffer.getvalue(), "image/png")])
            x0, y0, x1, y1 = box_of(clip.masks[0][0])
            sdk.annotations.create(id=image_task, result=[{
                "id": "prompt", "from_name": "box", "to_name": "image", "type": "rectanglelabels",
                "original_width": w, "original_height": h, "image_rotation": 0,
                "value": {"x": x0 / w * 100, "y": y0 / h * 100, "width": (x1 - x0) / w * 100,
                          "height": (y1 - y0) / h * 100, "rotation": 0, "rectanglelabels": ["object"]}}])

            video = sdk.projects.create(title="video pre-annotation", label_config=VIDEO_CONFIG)
            write_mp4(clip.frames, tmp / "clip.mp4", fps=10)
            [video_task] = connection.upload(video.id, [("clip.mp4", (tmp / "clip.mp4").read_bytes(), "video/mp4")])
            tracks = []
            for i, mask in enumerate(clip.masks[0]):
                x0, y0, x1, y1 = box_of(mask)
                tracks.append({"id": f"o{i}", "from_name": "track", "to_name": "video", "type": "videorectangle",
                               "value": {"framesCount": 20, "duration": 2.0, "labels": ["object"], "sequence": [
                                   {"frame": 1, "enabled": True, "rotation": 0, "time": 0.1, "x": x0 / w * 100,
                                    "y": y0 / h * 100, "width": (x1 - x0) / w * 100,
                                    "height": (y1 - y0) / h * 100}]}})
            sdk.annotations.create(id=video_task, result=tracks)

            # seed 5: random weights whose mask on this clip is neither empty nor the whole frame
            (tmp / "pipeline.yaml").write_text(yaml.safe_dump({"model": {"config": "sam2.1_hiera_mini", "seed": 5}}))
            for project in (image, video):
                result = preannotate(server.url, TOKEN, project.id, model_version=MV, config=tmp / "pipeline.yaml",
                                     store=tmp / "store", cache=tmp / "cache", progress=False)
                print(result.report())
                # show our predictions (not the prompts) when a task opens
                sdk.projects.update(id=project.id, model_version=MV, show_collab_predictions=True)
                for annotation in sdk.annotations.list(id=result.written[0]):
                    sdk.annotations.delete(id=annotation.id)

            shots = [(f"/projects/{image.id}/data?task={image_task}", str(args.out / "label_studio_image.png"), 0),
                     (f"/projects/{video.id}/data?task={video_task}", str(args.out / "label_studio_video.png"), 6)]
            subprocess.run([str(VENV / "bin" / "python"), "-c", BROWSER, server.url, USER, PASSWORD,
                            json.dumps(shots)], check=True)
        finally:
            server.stop()
    for _, path, _ in shots:
        with Image.open(path) as shot:  # a 256-colour palette: a fifth of the size, same look
            shot.convert("RGB").quantize(256).save(path, optimize=True)
        print(f"screenshot: {path}")


if __name__ == "__main__":
    main()
