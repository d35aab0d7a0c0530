"""Draw the toolbar and store icons (a shield with a check mark) as PNGs.

Run from the repository root with Pillow installed:
    .venv/bin/python extension/tools/make_icons.py
The PNGs are committed, so loading the extension needs no build step.
"""

from pathlib import Path

from PIL import Image, ImageDraw

SIZES = (16, 32, 48, 128)
PURPLE = (91, 33, 182, 255)
WHITE = (255, 255, 255, 255)


def draw(size: int) -> Image.Image:
    scale = 4  # draw large, then downsample for smooth edges
    n = size * scale
    img = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    m = n * 0.06
    # Shield: a rounded top and a point at the bottom.
    top, mid, bottom = m, n * 0.58, n - m
    d.rounded_rectangle([m, top, n - m, mid + n * 0.1], radius=n * 0.16, fill=PURPLE)
    d.polygon([(m, mid), (n - m, mid), (n / 2, bottom)], fill=PURPLE)
    w = max(scale * 2, int(n * 0.11))
    d.line([(n * 0.28, n * 0.48), (n * 0.44, n * 0.64), (n * 0.74, n * 0.3)], fill=WHITE, width=w, joint="curve")
    return img.resize((size, size), Image.LANCZOS)


def main() -> None:
    out = Path(__file__).resolve().parents[1] / "icons"
    out.mkdir(exist_ok=True)
    for size in SIZES:
        draw(size).save(out / f"icon-{size}.png", optimize=True)


if __name__ == "__main__":
    main()
