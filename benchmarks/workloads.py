"""What is measured: the cases, their sizes, their checks and the issue's targets.

A *case* is one row group of the table. Workloads W1-W6 come from issue 6; W3 gives two cases
(one training step, and ten), and the million-node chain is a case of its own. W6 runs on
chainrule's tape (what `nn.fit` uses); BC and DIGITS train on the bundled breast_cancer and
digits data (issue 11). Each case runs on every engine listed for it, in one process per
engine (see `run.py`).

Engines: `chainrule` (the engine; for the training cases its tape), `values` (chainrule's
Value graphs through `nn`, one per sample), `micrograd` 0.1.0, `torch` (float64, one thread;
where installed), `numpy` (written by hand: the floor of the training cases) and `floor` (the
same arithmetic on Python floats, hand-written reverse mode: the floor of W1-W6).

Every case checks its results, so a broken engine cannot look fast:
- analytic checks (`analytic_checks`), run in the engine's own process on the full results
  (for example W2's d(sum a_i b_i)/da_i = b_i for every i);
- cross-engine checks in the parent (`run.py`): every engine's values and gradients against the
  float floor's, which computes the same arithmetic by hand-written reverse mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from benchmarks import data

ENGINES = ("chainrule", "values", "micrograd", "torch", "numpy", "floor")
#: Engines a run cannot do without; the others are skipped where they are not installed.
REQUIRED_ENGINES = ("chainrule", "micrograd", "floor")
GRAPH_CASE_ENGINES = ("chainrule", "micrograd", "floor")
TRAINING_ENGINES = ("chainrule", "values", "micrograd", "torch", "numpy")
PRESETS = ("full", "quick", "tiny")


@dataclass(frozen=True)
class Case:
    """One benchmark case.

    Attributes:
        id: what `--only` selects by prefix (`W3` selects W3.1 and W3.10).
        label: a short description for the table; `{...}` fields are filled from the size.
        sizes: per preset (full, quick, tiny), the keyword sizes the engines receive.
        engines: the engines that run it (the million-node chain skips micrograd).
        rel_tol, abs_tol: tolerance of the cross-engine comparison against the reference.
        memory: True for W4, measured once per engine in a fresh process.
        reference: the engine whose outputs every other engine's are compared with.
        rounds: at most this many rounds (the slowest cases), None for the command's.
    """

    id: str
    label: str
    sizes: dict[str, dict[str, int]]
    engines: tuple[str, ...] = GRAPH_CASE_ENGINES
    rel_tol: float = 1e-9
    abs_tol: float = 1e-12
    memory: bool = False
    reference: str = "floor"
    rounds: int | None = None

    def describe(self, preset: str) -> str:
        """The label with this preset's sizes filled in."""
        return self.label.format(**{k: f"{v:,}" for k, v in self.sizes[preset].items()})


CASES: tuple[Case, ...] = (
    Case(
        "W1",
        "deep chain, {n} x (y*1.0001+0.5)",
        {"full": {"n": 100_000}, "quick": {"n": 20_000}, "tiny": {"n": 1_500}},
        rel_tol=1e-12,
    ),
    Case(
        "W2",
        "wide: pairwise sum of {n} products",
        {"full": {"n": 50_000}, "quick": {"n": 10_000}, "tiny": {"n": 67}},
    ),
    Case(
        "W3.1",
        "MLP 2-16-16-1, {points} points, {steps} step",
        {
            "full": {"points": 100, "steps": 1},
            "quick": {"points": 30, "steps": 1},
            "tiny": {"points": 6, "steps": 1},
        },
    ),
    Case(
        "W3.10",
        "MLP 2-16-16-1, {points} points, {steps} steps",
        {
            "full": {"points": 100, "steps": 10},
            "quick": {"points": 30, "steps": 3},
            "tiny": {"points": 6, "steps": 2},
        },
        rel_tol=1e-8,
        abs_tol=1e-10,
    ),
    Case(
        "W5",
        "transcendental, {n} leaves",
        {"full": {"n": 2_222}, "quick": {"n": 1_000}, "tiny": {"n": 20}},
    ),
    Case(
        "W6",
        "training via nn, {points} points, {steps} steps",
        {
            "full": {"points": 100, "steps": 100},
            "quick": {"points": 30, "steps": 5},
            "tiny": {"points": 6, "steps": 2},
        },
        engines=(*TRAINING_ENGINES, "floor"),
        rel_tol=1e-7,
        abs_tol=1e-9,
    ),
    Case(
        "BC",
        "breast_cancer {samples}x30, 30-16-16-1, bce, {steps} steps",
        {
            "full": {"samples": 569, "steps": 100},
            "quick": {"samples": 200, "steps": 5},
            "tiny": {"samples": 12, "steps": 2},
        },
        engines=TRAINING_ENGINES,
        rel_tol=1e-7,
        abs_tol=1e-9,
        reference="numpy",
        rounds=3,
    ),
    Case(
        "DIGITS",
        "digits {samples}x64, 64-32-10, cross-entropy, {steps} steps",
        {
            "full": {"samples": 1797, "steps": 100},
            "quick": {"samples": 300, "steps": 5},
            "tiny": {"samples": 12, "steps": 2},
        },
        engines=TRAINING_ENGINES,
        rel_tol=1e-7,
        abs_tol=1e-9,
        reference="numpy",
        rounds=3,
    ),
    Case(
        "CHAIN",
        "chain of {nodes} nodes",
        {"full": {"nodes": 1_000_000}, "quick": {"nodes": 100_000}, "tiny": {"nodes": 4_000}},
        engines=("chainrule", "floor"),
        rel_tol=1e-12,
    ),
    Case(
        "W4",
        "memory: W2's graph, {n} products",
        {"full": {"n": 50_000}, "quick": {"n": 10_000}, "tiny": {"n": 67}},
        memory=True,
    ),
)


def select(only: str | None) -> list[Case]:
    """The cases whose id starts with one of the comma-separated prefixes (all when None).

    Raises:
        ValueError: a prefix matches no case (the message lists the ids).
    """
    if not only:
        return list(CASES)
    chosen: list[Case] = []
    for prefix in (p.strip().upper() for p in only.split(",") if p.strip()):
        matches = [c for c in CASES if c.id == prefix or c.id.startswith(prefix + ".")]
        if not matches:
            ids = ", ".join(c.id for c in CASES)
            raise ValueError(f"--only: no case {prefix!r}; the cases are {ids}")
        chosen.extend(m for m in matches if m not in chosen)
    return [c for c in CASES if c in chosen]


@dataclass(frozen=True)
class Target:
    """A figure the issue asks for; informative, never a failure of the run."""

    case: str
    # "ratio" (x micrograd, at least), "vs_values" (x chainrule's Value graphs, at least),
    # "torch_at_most" (times torch's time, at most), "bytes" (per node, at most),
    # "seconds" (at most)
    kind: str
    value: float
    text: str


# Issue 10's targets for the engine written for reading (training speed is the tape's).
TARGETS = (
    Target("W1", "ratio", 5.0, "W1 total >= 5x micrograd (raised recursion limit)"),
    Target("W2", "ratio", 4.0, "W2 total >= 4x micrograd"),
    Target("W3.10", "ratio", 5.0, "W3 10 steps >= 5x micrograd"),
    Target("W5", "ratio", 8.0, "W5 total >= 8x micrograd"),
    Target("W6", "ratio", 1000.0, "W6 training (tape) >= 1000x micrograd"),
    Target("BC", "vs_values", 150.0, "breast_cancer training >= 150x Value graphs"),
    Target("DIGITS", "vs_values", 150.0, "digits training >= 150x Value graphs"),
    Target("DIGITS", "torch_at_most", 3.0, "digits training within 3x torch (1 thread)"),
    Target("W4", "bytes", 240.0, "W4 <= 240 bytes per node (tracemalloc)"),
    Target("CHAIN", "seconds", 3.0, "chain of 1,000,000 nodes, forward + backward < 3 s"),
)


# -----------------------------------------------------------------------------------------
# Analytic checks: run in the engine's process on its full results
# -----------------------------------------------------------------------------------------

Check = tuple[str, bool, str]


def max_rel_error(got: list[float], want: list[float], floor: float = 1e-300) -> float:
    """max_i |got_i - want_i| / max(|want_i|, floor); inf when the lengths differ."""
    if len(got) != len(want):
        return math.inf
    worst = 0.0
    for g, w in zip(got, want):
        err = abs(g - w) / max(abs(w), floor)
        if not err <= worst:  # also catches NaN
            worst = err if not math.isnan(err) else math.inf
    return worst


def _within(name: str, err: float, tol: float) -> Check:
    return (name, err <= tol, f"max rel error {err:.2e} (tol {tol:.0e})")


def chain_closed_form(x0: float, n: int) -> tuple[float, float]:
    """y_n and dy_n/dx0 for y_{k+1} = r*y_k + c: r^n x0 + c (r^n - 1)/(r - 1), and r^n."""
    r, c = data.CHAIN_FACTOR, data.CHAIN_OFFSET
    rn = r**n
    return rn * x0 + c * (rn - 1.0) / (r - 1.0), rn


def w5_reference(xs: list[float]) -> tuple[float, list[float]]:
    """W5's value, math.fsum of log(exp(tanh x) + sigmoid(x)^2 + 1), and its derivative.

    d/dx = (exp(t) (1 - t^2) + 2 s^2 (1 - s)) / (exp(t) + s^2 + 1), t = tanh x, s = sigmoid x.
    """
    terms, grads = [], []
    for x in xs:
        t = math.tanh(x)
        s = 1.0 / (1.0 + math.exp(-x))
        e = math.exp(t)
        u = e + s * s + 1.0
        terms.append(math.log(u))
        grads.append((e * (1.0 - t * t) + 2.0 * s * s * (1.0 - s)) / u)
    return math.fsum(terms), grads


def analytic_checks(case_id: str, size: dict[str, int], out: dict[str, Any]) -> list[Check]:
    """Checks of one engine's full outputs against closed forms (none for W3/W6: see run.py)."""
    checks: list[Check] = []
    if case_id in ("W1", "CHAIN"):
        n = size["n"] if case_id == "W1" else size["nodes"] // 2
        value, grad = chain_closed_form(data.CHAIN_START, n)
        tol = 1e-7 if n > 200_000 else 1e-8  # rounding of n multiply-adds, about n * 1e-16
        checks.append(_within("value = closed form", max_rel_error([out["value"]], [value]), tol))
        checks.append(_within("grad = 1.0001**n", max_rel_error([out["grad"]], [grad]), tol))
    elif case_id in ("W2", "W4"):
        a, b = data.vectors(size["n"])
        exact = math.fsum(x * y for x, y in zip(a, b))
        scale = math.fsum(abs(x * y) for x, y in zip(a, b))
        err = abs(out["value"] - exact) / scale
        checks.append(("value = fsum(a*b)", err <= 1e-12, f"error/sum|a*b| {err:.2e}"))
        checks.append(_within("grad a_i = b_i", max_rel_error(out["grad_a"], b), 1e-15))
        checks.append(_within("grad b_i = a_i", max_rel_error(out["grad_b"], a), 1e-15))
    elif case_id == "W5":
        value, grads = w5_reference(data.transcendental_inputs(size["n"]))
        checks.append(_within("value = fsum(terms)", max_rel_error([out["value"]], [value]), 1e-12))
        checks.append(_within("grad = analytic", max_rel_error(out["grad"], grads), 1e-12))
    elif case_id in ("W3.1", "W3.10", "W6", "BC", "DIGITS"):
        finite = all(math.isfinite(v) for v in out["loss"])
        checks.append(("loss finite", finite, f"losses {out['loss'][:3]}..."))
        if "grad0_numpy" in out:
            err = max_rel_error(out["grad0"], out["grad0_numpy"], GRAD_FLOOR * _scale(out))
            checks.append(_within("first-step grads = numpy's, same samples", err, GRAD_TOL))
        if "grad0_values" in out:
            err = max_rel_error(out["grad0"], out["grad0_values"], GRAD_FLOOR * _scale(out))
            checks.append(_within("first-step grads = Value graphs'", err, GRAD_TOL))
    return checks


#: Gradients of one step must equal the Value graphs' to this relative tolerance (issue 11);
#: an entry smaller than GRAD_FLOOR times the largest is compared relative to that.
GRAD_TOL = 1e-12
GRAD_FLOOR = 1e-3


def _scale(out: dict[str, Any]) -> float:
    return max((abs(g) for g in out["grad0"]), default=1.0)


def trim(outputs: dict[str, Any], keep: int = 400) -> dict[str, Any]:
    """Outputs small enough to send to the parent: long lists keep every k-th element."""
    trimmed: dict[str, Any] = {}
    for key, v in outputs.items():
        if isinstance(v, list) and len(v) > keep:
            stride = -(-len(v) // keep)
            v = v[::stride]
        trimmed[key] = v
    return trimmed
