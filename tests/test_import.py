"""The import names `autograd` and `nn` resolve to this repository's packages.

PyPI's unrelated HIPS `autograd` package has the same import name; if it shadowed ours, every
other test would be testing the wrong library.
"""

from __future__ import annotations

from pathlib import Path

import autograd
import nn

REPO = Path(__file__).resolve().parent.parent


def test_autograd_is_this_repos_package() -> None:
    assert autograd.__file__ is not None
    path = Path(autograd.__file__).resolve()
    assert path == REPO / "autograd" / "__init__.py"
    assert hasattr(autograd, "Value") and hasattr(autograd, "OPS")


def test_nn_is_this_repos_package() -> None:
    assert nn.__file__ is not None
    assert Path(nn.__file__).resolve() == REPO / "nn" / "__init__.py"
