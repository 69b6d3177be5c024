"""The README's examples run as written.

The fenced Python block under the heading "Property-testing your own derivatives" is
executed, and every `test_*` function it defines is called. The stepper example under
"Step through the backward pass" runs after the drawing example it continues, and prints
exactly what the README says it prints.
"""

from __future__ import annotations

import linecache
import re
import shlex
from pathlib import Path

import pytest
from hypothesis import settings

from autograd.draw import COLOURS, dot_available
from autograd.draw_cli import main as draw_main

README = Path(__file__).resolve().parent.parent / "README.md"
HEADING = "## Property-testing your own derivatives"
STEPPER = "### Step through the backward pass"


def _section(heading: str) -> str:
    """The README text from `heading` to the next heading of the same or a higher level."""
    text = README.read_text(encoding="utf-8")
    start = text.index(heading) + len(heading)
    level = len(heading) - len(heading.lstrip("#"))
    next_heading = re.search(rf"^#{{1,{level}}} ", text[start:], flags=re.MULTILINE)
    return text[start : start + next_heading.start()] if next_heading else text[start:]


def _block_under(heading: str) -> str:
    match = re.search(r"```python\n(.*?)```", _section(heading), flags=re.DOTALL)
    assert match, f"no python block under {heading!r}"
    return match.group(1)


def _printed_under(heading: str) -> str:
    """The plain fenced block after "prints" under `heading`: what the example prints."""
    match = re.search(r"^prints\n\n```\n(.*?)```", _section(heading), flags=re.DOTALL | re.M)
    assert match, f"no 'prints' block under {heading!r}"
    return match.group(1)


def _compiled(heading: str):
    """The block under `heading`, compiled under a name of its own whose source is the block.

    Hypothesis reads a test's source (inspect.getsource) to seed it; compiled under the
    README's own path, that lookup read the README's first lines instead of the block, which
    Python 3.13's tokenizer rejects ("unterminated string literal").
    """
    source = _block_under(heading)
    name = f"<README.md: {heading.lstrip('# ')}>"
    linecache.cache[name] = (len(source), None, source.splitlines(keepends=True), name)
    return compile(source, name, "exec")


def test_readme_property_test_runs():
    namespace: dict = {"__name__": "readme_example"}
    # The example's @settings inherit from the profile loaded when it runs: a derandomized
    # one, so this test is deterministic like the rest of the suite.
    previous = getattr(settings, "_current_profile", None) or "default"
    settings.register_profile("readme-example", derandomize=True, database=None)
    settings.load_profile("readme-example")
    try:
        exec(_compiled(HEADING), namespace)
    finally:
        settings.load_profile(previous)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert tests, "the README example defines no test"
    for test in tests:
        test()


@pytest.mark.skipif(not dot_available(), reason="the drawing example renders a PNG with `dot`")
def test_readme_stepper_example_prints_what_it_claims(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the drawing example writes graph and graph.png
    namespace: dict = {"__name__": "readme_example"}
    # The stepper example continues the drawing example (it steps through its `y`).
    exec(_compiled("## See the graph"), namespace)
    assert (tmp_path / "graph.png").read_bytes().startswith(b"\x89PNG")
    capsys.readouterr()
    exec(_compiled(STEPPER), namespace)
    printed = capsys.readouterr().out
    assert printed == _printed_under(STEPPER)
    assert "dL/dx += dL/dv3 * ∂v3/∂x = 0.1807 * -2.0 = -0.3614    (∂v3/∂x = w)" in printed
    # The line is true of the engine too: x.grad is the -0.3614 it adds up to.
    namespace["stepper"].run()
    assert round(namespace["x"].grad, 4) == -0.3614


def test_readme_picture_command_draws_what_the_legend_says(tmp_path):
    # The legend under the picture: blue boxes are inputs, green ones parameters.
    section = _section("## See the graph")
    assert "Blue boxes are inputs, green ones parameters" in section
    match = re.search(r"```bash\n(chainrule draw .*?)\n```", section)
    assert match, "no `chainrule draw` command under 'See the graph'"
    args = shlex.split(match.group(1))[2:]
    output = args.index("-o") + 1
    assert args[output] == "graph.png"  # a scratch path: the example never writes into docs/
    args[output] = str(tmp_path / "graph.dot")
    assert draw_main(args) == 0
    dot = (tmp_path / "graph.dot").read_text()
    fill = dict(re.findall(r'label="\{(\w+)\|data [^"]*" fillcolor=(\w+)', dot))
    assert fill == {"x": COLOURS["leaf"], "w": COLOURS["parameter"], "b": COLOURS["parameter"]}


def test_readme_thirty_seconds_prints_what_it_claims(capsys):
    # The first example a reader runs: its printed gradients must be the engine's, digit for digit.
    exec(_compiled("## Thirty seconds"), {"__name__": "readme_example"})
    assert capsys.readouterr().out == _printed_under("## Thirty seconds")
