"""Draw data/samples/shapes.png: three flat-coloured shapes on a textured background.

Deterministic (fixed seed), so re-running it reproduces the committed file.
Shapes: an ellipse around (150, 120), a polygon around (360, 110), a rectangle around (260, 290).
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

WIDTH, HEIGHT = 512, 384
OUT = Path(__file__).resolve().parents[1] / "data" / "samples" / "shapes.png"


def textured_background(rng: np.random.Generator) -> Image.Image:
    # Smooth low-frequency blotches plus fine grain: enough texture that a segmenter
    # cannot just threshold, yet it compresses to a small PNG.
    blotches = rng.uniform(90, 170, size=(12, 16, 3)).astype(np.uint8)
    base = Image.fromarray(blotches).resize((WIDTH, HEIGHT), Image.BICUBIC)
    base = base.filter(ImageFilter.GaussianBlur(8))
    grain = rng.integers(-2, 3, size=(HEIGHT, WIDTH, 1))
    pixels = np.asarray(base, dtype=np.int16) + grain
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def main() -> None:
    rng = np.random.default_rng(0)
    image = textured_background(rng)
    draw = ImageDraw.Draw(image)
    draw.ellipse((80, 60, 220, 180), fill=(220, 50, 40))
    draw.polygon([(360, 40), (440, 120), (400, 190), (300, 170), (290, 90)], fill=(40, 90, 210))
    draw.rectangle((180, 240, 340, 340), fill=(250, 200, 30))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    image.save(OUT, optimize=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
