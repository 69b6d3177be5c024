"""Shared test hooks: a test's own report, for fixtures that keep evidence of a failure."""

from __future__ import annotations

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # The browser tests' fixtures read `item.report_call` to screenshot a failed test.
    report = yield
    if report.when == "call":
        item.report_call = report
    return report
