"""Checks of the built site that a reader would notice (used by scripts/screenshots.sh).

``check_site.py HTML_DIR PAGE...``: each page exists, links the theme's stylesheet, shows
only images that exist, and has no raw Markdown left (a fence or a MyST directive rendered as
text means a page was not parsed). ``check_site.py --screenshots PNG...``: each screenshot is
a picture with content, not a blank page.
"""

import re
import sys
from pathlib import Path


def check_page(root, page):
    path = root / page
    if not path.is_file():
        return [f"{page}: missing"]
    html = path.read_text(encoding="utf-8")
    problems = []
    if "pydata-sphinx-theme" not in html:
        problems.append(f"{page}: the theme's stylesheet is not linked")
    for src in re.findall(r'<img[^>]+src="([^"]+)"', html):
        if not src.startswith(("http:", "https:", "data:")) and \
                not (path.parent / src.split("#")[0]).is_file():
            problems.append(f"{page}: image {src} does not exist")
    text = re.sub(r"<(pre|code)[^>]*>.*?</\1>", "", html, flags=re.S)
    for raw in ("```", "{toctree}", "{eval-rst}"):
        if raw in text:
            problems.append(f"{page}: raw Markdown {raw!r} in the page")
    return problems


def check_screenshot(png):
    from PIL import Image  # matplotlib's dependency

    image = Image.open(png).convert("L")
    low, high = image.getextrema()
    colours = len(image.getcolors(maxcolors=1 << 16) or range(1 << 16))
    if high - low < 50 or colours < 20:
        return [f"{png}: looks blank ({colours} grey levels)"]
    return []


def main(argv):
    if argv[:1] == ["--screenshots"]:
        problems = [p for png in argv[1:] for p in check_screenshot(png)]
    else:
        root = Path(argv[0])
        problems = [p for page in argv[1:] for p in check_page(root, page)]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
