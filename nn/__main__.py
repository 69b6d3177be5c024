"""`python -m nn`: the same as the `chainrule` command (see `cli.py`)."""

import sys

from .cli import main

sys.exit(main())
