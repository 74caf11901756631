"""Regenerate the result tables of benchmarks/README.md from the recorded runs.

Each ``<!-- results: NAME -->`` ... ``<!-- /results: NAME -->`` block of the README is
replaced by the tables of ``benchmarks/results/NAME.json`` (written by ``SCRIPT.py
--record``), headed by the line that says when, on what machine, under what load and with
which library versions the run was measured, followed by its agreement checks and notes.
Prose outside the blocks is left alone.

    python benchmarks/render_readme.py            # rewrite README.md in place
    python benchmarks/render_readme.py --check    # exit 1 if README.md is out of date
"""

import argparse
import json
import re
import sys
from pathlib import Path

from _common import RESULTS, describe, markdown_table

README = Path(__file__).resolve().parent / "README.md"
BLOCK = re.compile(r"(<!-- results: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results: "
                   r"(?P=name) -->)", re.S)


def section(data):
    """The markdown of one recorded run."""
    parts = [f"_{describe(data)}. Command: `{data['command']}`._", ""]
    for table in data["tables"]:
        parts += [f"**{table['title']}**" + (f" — {table['caption']}" if table.get("caption")
                                              else ""), "",
                  markdown_table(table["columns"], table["rows"]), ""]
    checks = data["checks"]
    if checks:
        n = len(checks)
        parts.append(f"{n} agreement check{'s' if n != 1 else ''} passed before the ratios "
                     "were printed, e.g. " + "; ".join(
                         f"{c['what']}: {c['detail']}" for c in checks[:3]) + ".")
        parts.append("")
    for note in data.get("notes", []):
        parts += [f"Note: {note}", ""]
    return "\n".join(parts)


def render(readme=README, results=RESULTS, check=False):
    """Rewrite the blocks of ``readme``; return the names rendered (or out of date)."""
    text = readme.read_text()
    done = []

    def replace(match):
        path = Path(results) / f"{match['name']}.json"
        if not path.exists():
            return match.group(0)
        done.append(match["name"])
        return match.group(1) + section(json.loads(path.read_text())) + match.group(4)

    new = BLOCK.sub(replace, text)
    if check:
        return [] if new == text else done
    readme.write_text(new)
    return done


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    names = render(check=args.check)
    if args.check and names:
        print(f"README.md is out of date for {names}; run benchmarks/render_readme.py")
        sys.exit(1)
    print(f"rendered: {', '.join(names) or 'nothing'}")


if __name__ == "__main__":
    main()
