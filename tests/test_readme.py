"""The README's property-testing example runs as written.

The fenced Python block under the heading "Property-testing your own derivatives" is
executed, and every `test_*` function it defines is called.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import settings

README = Path(__file__).resolve().parent.parent / "README.md"
HEADING = "## Property-testing your own derivatives"


def _block_under(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(heading) + len(heading)
    next_heading = re.search(r"^#{1,2} ", text[start:], flags=re.MULTILINE)
    section = text[start : start + next_heading.start()] if next_heading else text[start:]
    match = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert match, f"no python block under {heading!r}"
    return match.group(1)


def test_readme_property_test_runs():
    namespace: dict = {"__name__": "readme_example"}
    # The example's @settings inherit from the profile loaded when it runs: a derandomized
    # one, so this test is deterministic like the rest of the suite.
    previous = getattr(settings, "_current_profile", None) or "default"
    settings.register_profile("readme-example", derandomize=True, database=None)
    settings.load_profile("readme-example")
    try:
        exec(compile(_block_under(HEADING), str(README), "exec"), namespace)
    finally:
        settings.load_profile(previous)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert tests, "the README example defines no test"
    for test in tests:
        test()
