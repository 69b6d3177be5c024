"""Every notebook in notebooks/ runs top to bottom, its key numbers are right, and the
committed files carry no outputs.

Each notebook runs in a fresh `python3` kernel with notebooks/ as its working directory and
the repository root on PYTHONPATH (so it works without installing the project). Notebooks
added later are executed too; `EXPECTED` lists text that must appear in a notebook's
outputs, for the notebooks whose numbers are known.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# Text that a notebook's outputs must contain: its numbers, worked out by hand.
EXPECTED: dict[str, list[str]] = {
    "01_backprop_by_hand.ipynb": [
        "e = -6.0, d = 4.0, L = -8.0",
        "dL/da += dL/de * de/da = -2.0 * -3.0 = 6.0    (de/da = b)",
        "dL/db += dL/de * de/db = -2.0 * 2.0 = -4.0    (de/db = a)",
        "dL/da =   6.0   by hand:   6.0   ok",
        "dL/db =  -4.0   by hand:  -4.0   ok",
        "finite difference dL/da = 6.000000",
    ],
    "02_a_neuron.ipynb": [
        "n = 0.8814, o = 0.7071",
        "do/dweight[0] = 1.0000   by hand: 1.0000",
        "do/dx1 = -1.5000   by hand: -1.5000",
        "do/dbias = 0.5000   by hand: 0.5000",
        "do/dx1 += do/dv5 * dv5/dx1 = 0.5 * -3.0 = -1.5    (dv5/dx1 = weight[0])",
    ],
}


def output_text(notebook) -> str:
    """All text a notebook printed or displayed (stdout and text/plain, text/html, SVG)."""
    pieces = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                pieces.append(output["text"])
            for mime in ("text/plain", "text/html", "image/svg+xml"):
                data = output.get("data", {}).get(mime)
                if data:
                    pieces.append(data if isinstance(data, str) else "".join(data))
    return "\n".join(pieces)


def test_there_are_notebooks():
    names = {path.name for path in NOTEBOOKS}
    assert {"01_backprop_by_hand.ipynb", "02_a_neuron.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_and_shows_its_numbers(path, monkeypatch):
    pythonpath = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), pythonpath) if p))
    # A notebook may offer a fast mode for tests (a smaller training run, for instance).
    monkeypatch.setenv("CHAINRULE_FAST", "1")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    text = output_text(notebook)
    for expected in EXPECTED.get(path.name, []):
        assert expected in text, f"{path.name}: expected output {expected!r} not found"
    if path.name in ("01_backprop_by_hand.ipynb", "02_a_neuron.ipynb") and _has_dot():
        assert "<svg" in text  # the graphs rendered


def _has_dot() -> bool:
    import shutil

    return shutil.which("dot") is not None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{path.name} cell {index} has outputs: clear them"
        assert cell.execution_count is None, f"{path.name} cell {index} has an execution count"
