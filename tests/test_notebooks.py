"""Every notebook in notebooks/ runs top to bottom, its key numbers are right, and the
committed files carry no outputs.

Each notebook runs in a fresh `python3` kernel with notebooks/ as its working directory and
the repository root on PYTHONPATH (so it works without installing the project). Notebooks
added later are executed too; `EXPECTED` lists text that must appear in a notebook's
outputs, for the notebooks whose numbers are known.
"""

from __future__ import annotations

import base64
import os
import re
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
        "dL/da += dL/de * ∂e/∂a = -2.0 * -3.0 = 6.0    (∂e/∂a = b)",
        "dL/db += dL/de * ∂e/∂b = -2.0 * 2.0 = -4.0    (∂e/∂b = a)",
        "dL/dd += dL/dL * ∂L/∂d = 1.0 * -2.0 = -2.0    (∂L/∂d = f)",
        "dL/da =   6.0   by hand:   6.0   ok",
        "dL/db =  -4.0   by hand:  -4.0   ok",
        "finite difference dL/da = 6.000000",
    ],
    "02_a_neuron.ipynb": [
        "n = 0.8814, o = 0.7071",
        "do/dweight[0] = 1.0000   by hand: 1.0000",
        "do/dx1 = -1.5000   by hand: -1.5000",
        "do/dbias = 0.5000   by hand: 0.5000",
        "do/dx1 += do/dv5 * ∂v5/∂x1 = 0.5 * -3.0 = -1.5    (∂v5/∂x1 = weight[0])",
    ],
    # Run in fast mode (60 points, 30 epochs); the accuracy is checked in `check_training`.
    "03_training_an_mlp.ipynb": [
        "fast mode: True; 60 points, 30 epochs",
        "X: shape (60, 2), y: 30 points of class 0, 30 of class 1",
        "337 parameters, e.g. layers.0.weight[0, 0] = 0.2739",
        "step 0: loss ",
        "after 30 epochs: final training loss ",
        "one sample through MLP 2-3-1: loss ",
        "27 values in the graph",
    ],
    "04_property_testing_derivatives.ipynb": [
        # d/dx log cosh x = tanh x
        "x =   0.5: d/dx log_cosh = 0.462117157260, tanh(x) = 0.462117157260, gradcheck: True",
        # the wrong softsign rule: caught, both inputs in the table
        "GradcheckError",
        "gradcheck: analytic and numeric derivatives differ for 2 of 2",
        "MISMATCH",
        "gradgradcheck: True",
        # relu(1 - x) at x = 1: one-sided slopes -1 and 0, relu'(0) = 0 gives 0
        "gradcheck at the kink: True",
        "KinkWarning: gradcheck: a kink lies within the finite-difference step",
        "kink (one-sided -1 .. 0)",
        # tanh(0.5) and 1 - tanh(0.5)**2
        "f'(0.5)  = 0.462117157260",
        "f''(0.5) = 0.786447732966",
        # the Hessian of x**2 y + sin(xy) at (1, 2): 4 - 4 sin 2, 2 + cos 2 - 2 sin 2, -sin 2
        "[[ 0.36281  -0.234742]\n [-0.234742 -0.909297]]",
        "log_cosh: 40 random expressions, first and second derivatives: all passed",
        "hypothesis found a counterexample:",
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
    assert {
        "01_backprop_by_hand.ipynb",
        "02_a_neuron.ipynb",
        "03_training_an_mlp.ipynb",
        "04_property_testing_derivatives.ipynb",
    } <= names


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
        check_stepper_widget(notebook)
    if path.name == "03_training_an_mlp.ipynb":
        check_training(notebook, text)


def check_stepper_widget(notebook) -> None:
    """The last cell shows the stepper widget at step 0, after a static picture of it for
    viewers without widgets (GitHub, nbviewer, a restarted kernel)."""
    outputs = notebook.cells[-1].outputs
    mimes = [set(o.get("data", {})) for o in outputs]
    assert any("application/vnd.jupyter.widget-view+json" in m for m in mimes), mimes
    fallback = next(
        o["data"]["text/html"]
        for o in outputs
        if "chainrule-stepper-fallback" in o.get("data", {}).get("text/html", "")
    )
    assert "step 0 of " in fallback and "<script" not in fallback
    # The picture is an image (a sanitiser keeps it where it would remove inline SVG).
    found = re.search(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', fallback)
    assert found and base64.b64decode(found.group(1)).startswith(b"<svg")
    # The fallback comes first: the widget hides it while it runs.
    assert "text/html" in mimes[0]


def check_training(notebook, text: str) -> None:
    """Notebook 03 trained the moons model well and showed its two plots and a graph."""
    found = re.search(r"final training accuracy (\d\.\d+)", text)
    assert found, "03: no final training accuracy printed"
    # 59 of 60 points right in fast mode (0.983), 100 of 100 in full mode.
    assert float(found.group(1)) >= 0.95
    hand = [float(v) for v in re.findall(r"step \d: loss (\d+\.\d+)", text)]
    assert len(hand) == 5 and hand[-1] < hand[0]  # the loop by hand lowered the loss
    pngs = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert len(pngs) == 2  # the loss curve and the decision boundary
    if _has_dot():
        assert "<svg" in text and "layers.0.weight[2, 1]" in text  # the sample's graph


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
