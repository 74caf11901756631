"""docs/deep_losses.md lists every registered loss and miner (and the wrappers) with the
paper of its class's References and a line on when to use it."""

import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGE = DOCS / "deep_losses.md"
BASELINES = {"AllTuplesMiner", "RandomMiner"}  # no paper: the baselines miners are judged by


def _first_reference(cls):
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from registry_tables import _first_reference as first
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    return first(cls)[0]


def glance_rows(text, header):
    """Rows (lists of cells) of the table whose header starts with ``| header |``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def paper_marker(reference):
    """What the paper cell must contain: the quoted title, else the first cited surname."""
    quoted = re.search(r'"([^"]+)"', reference)
    if quoted:
        return quoted.group(1)
    return re.search(r"([A-Z][a-z]+),", reference).group(1)


def missing_from_page(text, registry, header):
    """Problems of the page's table for ``registry`` (name -> class); empty when complete."""
    rows = {row[0].strip("`"): row for row in glance_rows(text, header)}
    problems = []
    for name, cls in registry.items():
        row = rows.get(name)
        if row is None:
            problems.append(f"{name}: no row")
            continue
        _, klass, paper, when = row
        if klass != f"`{cls.__name__}`":
            problems.append(f"{name}: class cell {klass!r}, expected `{cls.__name__}`")
        reference = _first_reference(cls)
        if reference is None:
            if cls.__name__ not in BASELINES:
                problems.append(f"{name}: {cls.__name__} has no References")
        elif paper_marker(reference) not in paper:
            problems.append(f"{name}: paper cell lacks {paper_marker(reference)!r}")
        if len(when.split()) < 5:
            problems.append(f"{name}: no 'when to use it' line")
    return problems


@pytest.mark.parametrize("registry, header", [("losses", "loss"), ("miners", "miner")])
def test_every_registered_loss_and_miner_has_a_row(registry, header):
    from skmetric.deep import losses, miners

    registry = {"losses": losses.LOSSES, "miners": miners.MINERS}[registry]
    text = PAGE.read_text(encoding="utf-8")
    assert missing_from_page(text, registry, header) == []


def test_wrappers_have_a_row_with_their_paper():
    from skmetric.deep.losses import CrossBatchMemory, MultipleLosses, SelfSupervisedLoss

    rows = {row[0].strip("`"): row
            for row in glance_rows(PAGE.read_text(encoding="utf-8"), "wrapper")}
    for cls in (CrossBatchMemory, MultipleLosses, SelfSupervisedLoss):
        _, paper, when = rows[cls.__name__]
        reference = _first_reference(cls)
        assert reference is None or paper_marker(reference) in paper
        assert len(when.split()) >= 5


def test_the_check_catches_a_missing_row_a_wrong_paper_and_an_empty_line():
    from skmetric.deep.losses import LOSSES

    text = PAGE.read_text(encoding="utf-8")
    assert missing_from_page(text, LOSSES, "loss") == []
    no_row = "\n".join(line for line in text.splitlines()
                       if not line.startswith("| `supcon` |"))
    assert missing_from_page(no_row, LOSSES, "loss") == ["supcon: no row"]
    wrong = text.replace('"Supervised Contrastive Learning"', '"Contrastive Learning"', 1)
    assert missing_from_page(wrong, LOSSES, "loss") == [
        "supcon: paper cell lacks 'Supervised Contrastive Learning'"]
    empty = re.sub(r"(\| `supcon` \|[^\n]*\| )[^|\n]+ \|\n", r"\1 |\n", text)
    assert missing_from_page(empty, LOSSES, "loss") == ["supcon: no 'when to use it' line"]
    # a registered loss without a row (e.g. one added later) is reported
    assert missing_from_page(text, {**LOSSES, "new_loss": LOSSES["supcon"]}, "loss") == [
        "new_loss: no row"]
