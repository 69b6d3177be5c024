"""The benchmark harness stays runnable and its checks stay able to fail.

Runs every case's *checks* at tiny sizes (in process, and once end to end through
`python -m benchmarks --size tiny`); no timing is asserted anywhere.
"""

from __future__ import annotations

import itertools
import json
import math

import pytest

from benchmarks import data, run, worker, workloads
from benchmarks.engines import floor, graph

pytest.importorskip("micrograd", reason="the benchmarks' peer; pip install -e '.[bench]'")

TINY = {case.id: case.sizes["tiny"] for case in workloads.CASES}
TRAINING = ("W6", "BC", "DIGITS")
TIMED = [c.id for c in workloads.CASES if not c.memory and c.id not in TRAINING]


@pytest.fixture(scope="module")
def floor_answers() -> dict[str, dict]:
    return {
        case.id: worker.handle("floor", None, {"case": case.id, "size": TINY[case.id]})
        for case in workloads.CASES
        if "floor" in case.engines
    }


@pytest.mark.parametrize("engine", ["chainrule", "micrograd", "floor"])
@pytest.mark.parametrize("case", [*TIMED, "W4"])
def test_case_checks_pass_at_tiny_size(engine, case, floor_answers):
    if engine == "micrograd" and case == "CHAIN":
        pytest.skip("the million-node chain is measured on chainrule and the floor only")
    eng = worker.load_engine(engine)
    answer = worker.handle(engine, eng, {"case": case, "size": TINY[case], "first": True})
    assert answer["status"] == "ok"
    assert answer["checks"], "every case checks something"
    for name, ok, detail in answer["checks"]:
        assert ok, f"{engine} {case}: {name}: {detail}"
    if engine != "floor":
        spec = next(c for c in workloads.CASES if c.id == case)
        for key, value in answer["outputs"].items():
            ok, detail = run.compare(
                value, floor_answers[case]["outputs"][key], spec.rel_tol, spec.abs_tol
            )
            assert ok, f"{engine} {case} {key}: {detail}"
    assert answer["nodes"] > 0


@pytest.mark.parametrize("case", TRAINING)
def test_training_cases_agree_across_engines_at_tiny_size(case):
    # Every engine of a training case: its own checks (the tape's first-step gradients equal
    # the Value graphs' within 1e-12), and its outputs against the reference engine's.
    spec = next(c for c in workloads.CASES if c.id == case)
    engines = [e for e in spec.engines if e != "torch" or _has_torch()]
    answers = {}
    for engine in engines:
        eng = worker.load_engine(engine)
        answer = worker.handle(engine, eng, {"case": case, "size": TINY[case], "first": True})
        assert answer["status"] == "ok", answer.get("error")
        answers[engine] = [answer]
    checks = run.case_checks(run.CaseResult(spec, TINY[case], answers))
    failed = [c for c in checks if not c["ok"]]
    assert not failed, failed
    names = {(c["engine"], c["name"]) for c in checks}
    assert ("chainrule", "first-step grads = Value graphs'") in names
    assert ("chainrule", f"loss = {spec.reference}'s") in names


def test_a_tape_gradient_off_by_1e_11_fails_the_check():
    out = {"loss": [1.0], "grad0": [1.0, -2.0], "grad0_values": [1.0, -2.0 * (1 + 1e-11)]}
    failed = [n for n, ok, _ in workloads.analytic_checks("BC", {}, out) if not ok]
    assert failed == ["first-step grads = Value graphs'"]
    out["grad0_values"] = [1.0, -2.0 * (1 + 1e-13)]
    assert all(ok for _, ok, _ in workloads.analytic_checks("BC", {}, out))


def test_partial_runs_are_extrapolated_and_said_so():
    from benchmarks.engines import training

    size = {"samples": 1797, "steps": 100}
    note = training.extrapolation_note("DIGITS", "micrograd", size)
    assert note == (
        "micrograd runs 1 of the 100 steps on 200 of the 1,797 samples; its times are scaled "
        "by 898.50 to the full run (extrapolated)"
    )
    assert training.extrapolation_note("DIGITS", "chainrule", size) is None


def _has_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def test_wide_sum_with_odd_levels_matches_the_floor():
    # 37 products: levels of odd length carry their last item up, in both implementations.
    eng = worker.load_engine("chainrule")
    engine_run = graph.wide(eng, 37)
    floor_run = floor.wide(37)
    a, b = data.vectors(37)
    assert engine_run.outputs["value"] == pytest.approx(
        math.fsum(x * y for x, y in zip(a, b)), rel=1e-12
    )
    assert engine_run.outputs["value"] == floor_run.outputs["value"]
    assert engine_run.outputs["grad_a"] == floor_run.outputs["grad_a"] == b


def test_floor_mlp_node_count_equals_chainrule_graph():
    eng = worker.load_engine("chainrule")
    engine_run = graph.mlp(eng, points=4, steps=1)
    nodes = graph.count_nodes(eng, engine_run.roots, engine_run.inputs)
    assert floor.mlp_ops(4) == nodes


def test_micrograd_recursion_error_is_reported_not_hidden():
    eng = worker.load_engine("micrograd")
    note = worker.default_limit_note("micrograd", eng, "W1", {"n": 1_500})
    assert "raises RecursionError" in note
    # The timed rounds run with the limit raised, and complete.
    answer = worker.handle("micrograd", eng, {"case": "W1", "size": {"n": 1_500}})
    assert answer["status"] == "ok" and all(ok for _, ok, _ in answer["checks"])


def test_a_wrong_gradient_fails_the_analytic_check():
    size = {"n": 8}
    a, b = data.vectors(8)
    good = {"value": math.fsum(x * y for x, y in zip(a, b)), "grad_a": b, "grad_b": a}
    assert all(ok for _, ok, _ in workloads.analytic_checks("W2", size, good))
    bad = dict(good, grad_a=[g * (1 + 1e-9) for g in b])
    failed = [name for name, ok, _ in workloads.analytic_checks("W2", size, bad) if not ok]
    assert failed == ["grad a_i = b_i"]


def test_a_result_differing_from_the_floor_fails_the_cross_check():
    case = next(c for c in workloads.CASES if c.id == "W3.1")
    ok_answer = {"status": "ok", "checks": [], "outputs": {"loss": [0.5], "grads": [1.0, 2.0]}}
    bad_answer = {"status": "ok", "checks": [], "outputs": {"loss": [0.5], "grads": [1.0, 2.001]}}
    result = run.CaseResult(case, {}, {"floor": [ok_answer], "chainrule": [bad_answer]})
    checks = run.case_checks(result)
    failed = [c["name"] for c in checks if not c["ok"]]
    assert failed == ["grads = floor's"]
    assert "item 1" in next(c["detail"] for c in checks if not c["ok"])


def test_an_engine_error_is_a_failed_check():
    case = next(c for c in workloads.CASES if c.id == "W2")
    result = run.CaseResult(case, {}, {"chainrule": [{"status": "error", "error": "Boom"}]})
    [check] = run.case_checks(result)
    assert not check["ok"] and check["detail"] == "Boom"


def test_only_selects_by_prefix_and_rejects_unknown_ids():
    assert [c.id for c in workloads.select("W3,w1")] == ["W1", "W3.1", "W3.10"]
    with pytest.raises(ValueError, match=r"no case .W9.*W1, W2"):
        workloads.select("W9")


def test_skip_leaves_cases_out():
    args = run.parse_args(["--skip", "W6,W3", "--quick"])
    assert [c.id for c in args.cases] == ["W1", "W2", "W5", "BC", "DIGITS", "CHAIN", "W4"]
    assert args.rounds == 2 and args.size == "quick"


def test_rounds_rotate_the_engine_order():
    engines = ("a", "b", "c")
    assert [run.engine_order(r, engines) for r in range(4)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
    ]


def test_ratio_is_the_median_of_per_round_ratios():
    case = next(c for c in workloads.CASES if c.id == "W2")

    def answer(total):
        return {"status": "ok", "phases": {"build": total, "total": total}, "nodes": 10}

    result = run.CaseResult(
        case,
        {},
        {
            "chainrule": [answer(1.0), answer(2.0), answer(1.0)],
            "micrograd": [answer(3.0), answer(2.0), answer(10.0)],
        },
    )
    rows = {r["engine"]: r for r in run.summarise(result)}
    assert rows["chainrule"]["vs_micrograd_per_round"] == [3.0, 1.0, 10.0]
    assert rows["chainrule"]["vs_micrograd"] == 3.0


def test_command_end_to_end_at_tiny_size(tmp_path, capsys):
    out = tmp_path / "bench.json"
    md = tmp_path / "bench.md"
    argv = ["--size", "tiny", "--rounds", "1", "--quiet", "--json", str(out), "--markdown", str(md)]
    status = run.main(argv)
    printed = capsys.readouterr().out
    assert status == 0, printed
    payload = json.loads(out.read_text())
    assert payload["checks"] and all(c["ok"] for c in payload["checks"])
    reported = {(r["case"], r["engine"]) for r in payload["rows"]}
    for case in workloads.CASES:
        skipped = next(c["skipped"] for c in payload["cases"] if c["id"] == case.id)
        if not skipped:
            # torch runs where it is installed (the parity Python), and is left out elsewhere.
            expected = {(case.id, e) for e in case.engines if e != "torch" or _has_torch()}
            assert expected <= reported
    assert "| W2 | wide: pairwise sum of 67 products | chainrule |" in md.read_text()
    assert "checks:" in printed and "0 FAIL" in printed and "  FAIL " not in printed


class _FakeNN:
    """The `nn` API W6 assumes (the README's names), built on autograd for this test only,
    so W6's chainrule code is exercised before the real `nn` lands."""

    class MLP:
        def __init__(self, nin, nouts):
            from autograd import Value

            sizes = [nin, *nouts]
            self.layers = [
                ([[Value(0.0) for _ in range(i)] for _ in range(o)], [Value(0.0) for _ in range(o)])
                for i, o in itertools.pairwise(sizes)
            ]

        def parameters(self):
            return [p for w, b in self.layers for p in [*(v for row in w for v in row), *b]]

        def zero_grad(self):
            for p in self.parameters():
                p.grad = 0.0

        def load_state_dict(self, state):
            for i, (w, b) in enumerate(self.layers):
                for row, values in zip(w, state[f"layers.{i}.weight"]):
                    for p, v in zip(row, values):
                        p.data = float(v)
                for p, v in zip(b, state[f"layers.{i}.bias"]):
                    p.data = float(v)

        def state_dict(self):
            import numpy as np

            state = {}
            for i, (w, b) in enumerate(self.layers):
                state[f"layers.{i}.weight"] = np.array([[p.data for p in row] for row in w])
                state[f"layers.{i}.bias"] = np.array([p.data for p in b])
            return state

        def __call__(self, x):
            return graph.mlp_forward(self.layers, x)

    @staticmethod
    def hinge_loss(scores, targets):
        import autograd

        return autograd.mean((1 - y * s).relu() for s, y in zip(scores, targets))

    class SGD:
        def __init__(self, params, lr):
            self.params, self.lr = list(params), lr

        def step(self):
            for p in self.params:
                p.data -= self.lr * p.grad


def test_w6_chainrule_code_runs_against_the_assumed_nn_api(monkeypatch):
    import sys

    from benchmarks.engines import chainrule_engine

    monkeypatch.setitem(sys.modules, "nn", _FakeNN)
    got = chainrule_engine.train_with_nn(points=6, steps=3)
    want = floor.mlp(points=6, steps=3)
    for key in ("loss", "params"):
        ok, detail = run.compare(got.outputs[key], want.outputs[key], 1e-9, 1e-12)
        assert ok, f"{key}: {detail}"


def test_w6_is_skipped_while_nn_lacks_the_api(monkeypatch):
    import sys
    import types

    from benchmarks.engines import chainrule_engine

    monkeypatch.setitem(sys.modules, "nn", types.ModuleType("nn"))
    with pytest.raises(chainrule_engine.Skipped, match=r"nn\.MLP"):
        chainrule_engine.train_with_nn(points=6, steps=1)
