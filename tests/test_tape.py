"""The tape (autograd/tape.py) against the Value graph, and the table's array forms against
its float rules.

- Every op's array form (or its float rule, where that works on arrays) equals the float rule
  element by element, values and local derivatives, on random batches of 2 to 40 samples
  and on the special points (kinks, zeros, NaN, inf); a batch of one would hide a wrong form.
- A tape replay equals the Value graph, per sample, on random expression DAGs and on an MLP
  with every built-in loss: outputs, input gradients and parameter gradients (summed).
- Recording refuses what it cannot replay: non-Value outputs, a graph that depends on the
  data, an op without an array form. Domain errors and overflows in a replay name the op,
  the value and the sample.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autograd
import nn
from autograd import OPS, Op, Value, apply, tape
from autograd.testing import expressions

# -----------------------------------------------------------------------------------------
# Array forms = float rules
# -----------------------------------------------------------------------------------------

wide = st.floats(-1e3, 1e3, allow_nan=False)
small = st.floats(-30.0, 30.0, allow_nan=False)
positive = st.floats(1e-300, 1e300)
nonzero = wide.filter(lambda x: abs(x) > 1e-3)
exponent = st.floats(-5.0, 5.0)
integer_exponent = st.integers(-4, 4).map(float)
slope = st.floats(0.0, 1.0)

#: For every op of the table: strategies of its arguments (one per argument; n-ary ops get
#: three or five). A new op must be added here, or the coverage test below fails.
DOMAINS: dict[str, list[st.SearchStrategy[float]]] = {
    "add": [wide, wide],
    "sub": [wide, wide],
    "mul": [wide, wide],
    "div": [wide, nonzero],
    "neg": [wide],
    "pow": [st.floats(1e-3, 100.0), exponent],
    "abs": [wide],
    "maximum": [small, small],
    "minimum": [small, small],
    "exp": [st.floats(-745.0, 709.0)],
    "log": [positive],
    "sqrt": [st.floats(0.0, 1e300)],
    "tanh": [wide],
    "sigmoid": [wide],
    "relu": [wide],
    "leaky_relu": [wide, slope],
    "elu": [wide, slope],
    "ndtr": [small],
    "gelu": [small],
    "softplus": [wide],
    "sin": [wide],
    "cos": [wide],
    "sum": [wide, wide, wide],
    "logsumexp": [wide, wide, wide],
    "linear": [wide, wide, wide, wide, wide],
}

#: Points where a branching rule turns, and the IEEE specials, per argument position.
SPECIALS = [0.0, -0.0, 1.0, -1.0, 20.0, -20.0, 1e-300, -1e-300, 700.0, -800.0]
NONFINITE = [math.inf, -math.inf, math.nan]


#: Local derivatives that are sums of larger terms which cancel, compared to the terms' size:
#: gelu'(x) = Phi(x) + x phi(x), with Phi in [0, 1] and |x phi(x)| <= 0.25 (they cancel to 0
#: near x = -0.75). Everywhere else a derivative is compared relative to itself, so a
#: saturated one (tanh'(20) = 1.7e-17) must be exact to rounding.
GRAD_SCALE = {"gelu": 1.0}


def test_every_op_of_the_table_has_a_domain_here():
    assert set(DOMAINS) == set(OPS)


def _float_rule(op: Op, columns: list[np.ndarray]):
    """The float forward and local derivatives of `op`, sample by sample."""
    outs, grads = [], []
    for i in range(len(columns[0])):
        args = [float(c[i]) for c in columns]
        out = op.forward(*args)
        outs.append(out)
        grads.append([float(op.local_grad(j, out, args)) for j in range(len(args))])
    return np.array(outs), np.array(grads).T


def _array_rule(op: Op, columns: list[np.ndarray]):
    fwd = op.array_forward or op.forward
    with np.errstate(all="ignore"):
        out = np.asarray(fwd(*columns), dtype=np.float64)
        grads = [
            np.broadcast_to(tape._array_local(op, j, out, columns), out.shape)
            for j in range(len(columns))
        ]
    return out, np.array(grads)


def _assert_same(got: np.ndarray, want: np.ndarray, what: str, scale=None) -> None:
    """Equal to rounding: numpy's exp, log1p, tanh may differ from libm's by an ulp, and a
    quotient or sum of such values by a few: within 8e-16 (4 ulp) of `scale` (default each
    value itself; for a forward, its largest operand too, as logsumexp's m + log1p(s)
    cancels). NaN equals NaN."""
    scale = np.abs(want) if scale is None else np.maximum(np.abs(want), scale)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    with np.errstate(invalid="ignore"):
        close = np.abs(got - want) <= 8e-16 * scale
    assert np.all(same | close), (
        f"{what}: got {got[~(same | close)][:3]}, want {want[~(same | close)][:3]}"
    )


@pytest.mark.parametrize("name", sorted(OPS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(2, 40))
def test_array_form_equals_float_rule_on_random_batches(name, data, n):
    op = OPS[name]
    columns = [
        np.array(data.draw(st.lists(s, min_size=n, max_size=n)), dtype=np.float64)
        for s in DOMAINS[name]
    ]
    if name == "pow" and data.draw(st.booleans()):
        # A negative base with an integer exponent: defined, and a branch of its own.
        columns = [
            -columns[0],
            np.array(data.draw(st.lists(integer_exponent, min_size=n, max_size=n))),
        ]
    want_out, want_grads = _float_rule(op, columns)
    got_out, got_grads = _array_rule(op, columns)
    operands = np.max(np.where(np.isnan(columns), 0.0, np.abs(np.array(columns))), axis=0)
    _assert_same(got_out, want_out, f"{name} forward", operands)
    _assert_same(got_grads, want_grads, f"{name} local derivatives", GRAD_SCALE.get(name))


@pytest.mark.parametrize("name", sorted(OPS))
def test_array_form_equals_float_rule_at_special_points(name):
    op = OPS[name]
    k = len(DOMAINS[name])
    points = SPECIALS + NONFINITE
    rng = np.random.default_rng(0)
    # Every special point in every position, with the other arguments drawn from the specials.
    columns = [np.array(points * 3) for _ in range(k)]
    for c in columns[1:]:
        rng.shuffle(c)
    if name in ("leaky_relu", "elu"):
        columns[1] = np.full(len(columns[0]), 0.2)
    keep = []
    for i in range(len(columns[0])):
        try:
            with np.errstate(all="ignore"):
                op.forward(*[float(c[i]) for c in columns])
        except (ValueError, ZeroDivisionError, OverflowError):
            continue  # outside the domain: the error tests below cover these
        keep.append(i)
    columns = [c[keep] for c in columns]
    want_out, want_grads = _float_rule(op, columns)
    got_out, got_grads = _array_rule(op, columns)
    operands = np.max(np.where(np.isnan(columns), 0.0, np.abs(np.array(columns))), axis=0)
    _assert_same(got_out, want_out, f"{name} forward", operands)
    _assert_same(got_grads, want_grads, f"{name} local derivatives")


@pytest.mark.parametrize(
    ("name", "args", "error", "message"),
    [
        (
            "log",
            ([2.0, 1.0, 3.0, -1.0],),
            ValueError,
            "log: input must be > 0, got -1.0 at sample 3",
        ),
        ("log", ([2.0, 0.0],), ValueError, "log: input must be > 0, got 0.0 at sample 1"),
        ("sqrt", ([4.0, -2.5],), ValueError, "sqrt: input must be >= 0, got -2.5 at sample 1"),
        (
            "exp",
            ([1.0, 710.0],),
            OverflowError,
            "exp: result overflows float64, got input 710.0 at sample 1",
        ),
        (
            "div",
            ([1.0, 2.0], [3.0, 0.0]),
            ZeroDivisionError,
            "div: division by zero, got 2.0 / 0.0 at sample 1",
        ),
        (
            "pow",
            ([0.0, 2.0], [-1.0, 2.0]),
            ZeroDivisionError,
            "pow: zero to a negative power, got 0.0 ** -1.0 at sample 0",
        ),
        (
            "pow",
            ([4.0, -8.0], [0.5, 0.5]),
            ValueError,
            "pow: a negative base needs an integer exponent, got -8.0 ** 0.5 at sample 1",
        ),
        (
            "pow",
            ([2.0, 10.0], [3.0, 400.0]),
            OverflowError,
            "pow: result overflows float64, got 10.0 ** 400.0 at sample 1",
        ),
    ],
)
def test_array_domain_errors_name_op_value_and_sample(name, args, error, message):
    op = OPS[name]
    columns = [np.array(a) for a in args]
    with pytest.raises(error, match="^" + message.replace("*", r"\*").replace(".", r"\.") + "$"):
        with np.errstate(all="ignore"):
            op.array_forward(*columns)
    # The float rule raises the same error for that sample.
    bad = int(message.rsplit(" ", 1)[1])
    with pytest.raises(error):
        op.forward(*[float(c[bad]) for c in columns])


# -----------------------------------------------------------------------------------------
# Tape = Value graph
# -----------------------------------------------------------------------------------------


def _value_graph(fn, X, params):
    """Per sample: the outputs and input gradients of output 0; parameter grads summed."""
    outs, in_grads = [], []
    for p in params:
        p.grad = 0.0
    for row in X:
        leaves = [Value(float(x)) for x in row]
        result = fn(leaves)
        result = [result] if isinstance(result, Value) else list(result)
        result[0].backward()
        outs.append([r.data for r in result])
        in_grads.append([v.grad for v in leaves])
    return np.array(outs), np.array(in_grads), np.array([p.grad for p in params])


def _assert_close(got, want, what, rtol=1e-12):
    scale = np.max(np.abs(want)) if np.size(want) else 0.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale + 1e-300, err_msg=what)


def _nearby_points(expr, rng, n):
    """`n` points near the expression's own (the graph is the same at every point; an op
    taken past a domain edge is dropped with its point)."""
    base = np.array(expr.values)
    points = base + rng.normal(scale=1e-3, size=(n, len(base))) * (1.0 + np.abs(base))
    good = []
    for p in points:
        try:
            expr(*p.tolist())
        except (ValueError, ZeroDivisionError, OverflowError):
            continue
        good.append(p)
    return np.array([base, *good])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expr=expressions(names=("a", "b", "c", "d"), max_ops=8),
    seed=st.integers(0, 2**32 - 1),
    n_params=st.integers(0, 2),
)
def test_tape_equals_value_graph_on_random_expressions(expr, seed, n_params):
    # Some leaves are parameters (one number for every sample), the rest inputs.
    rng = np.random.default_rng(seed)
    n_leaves = len(expr.names)
    n_params = min(n_params, n_leaves - 1)
    params = [Value(v) for v in expr.values[:n_params]]
    n_in = n_leaves - n_params

    def fn(v):
        return expr(*params, *v)

    X = _nearby_points(expr, rng, 6)[:, n_params:]
    X = np.unique(X, axis=0) if n_in else X
    t = tape.record(fn, *X, params=params)
    run = t.run(X, input_grads=True)
    outs, in_grads, p_grads = _value_graph(fn, X, params)
    _assert_close(run.outputs, outs, "outputs")
    _assert_close(run.input_grads, in_grads, "input gradients")
    _assert_close(run.param_grads, p_grads, "parameter gradients")


LOSSES = {
    "hinge": lambda out, y: nn.hinge_loss(out, y[0], reduction="sum"),
    "bce": lambda out, y: nn.binary_cross_entropy_with_logits(out, y[0], reduction="sum"),
    "mse": lambda out, y: nn.mse_loss(out, y, reduction="sum"),
    "cross_entropy": lambda out, y: nn.cross_entropy(out, y, reduction="sum"),
}


def _labels(loss, rng, n, k):
    if loss == "hinge":
        return rng.choice([-1.0, 1.0], size=(n, 1))
    if loss == "bce":
        return rng.choice([0.0, 1.0], size=(n, 1))
    if loss == "mse":
        return rng.normal(size=(n, k))
    return np.eye(k)[rng.integers(0, k, size=n)]


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu", "gelu"])
def test_tape_equals_value_graph_for_every_builtin_loss(loss, activation):
    rng = np.random.default_rng(hash((loss, activation)) % 2**32)
    k = 1 if loss in ("hinge", "bce") else 3
    model = nn.MLP(4, [6, 5, k], activation=activation, seed=1)
    params = model.parameters()
    n = 25
    X = np.hstack([rng.normal(scale=2.0, size=(n, 4)), _labels(loss, rng, n, k)])

    def fn(v):
        out = model(v[:4])
        outs = [out] if isinstance(out, Value) else out
        return [LOSSES[loss](out, v[4:]), *outs]

    t = tape.record(fn, *X[:5], params=params)
    assert any(isinstance(s, tape._LinearBlock) for s in t.steps)  # the layers are fused
    run = t.run(X, input_grads=True)
    outs, in_grads, p_grads = _value_graph(fn, X, params)
    _assert_close(run.outputs, outs, "outputs")
    _assert_close(run.input_grads, in_grads, "input gradients (features and labels)")
    _assert_close(run.param_grads, p_grads, "parameter gradients")


def test_seed_averages_the_gradient_as_a_mean_loss():
    model = nn.MLP(2, [3, 1], seed=0)
    X = np.array([[0.5, -1.0, 1.0], [2.0, 0.25, -1.0], [-1.5, 1.5, 1.0]])

    def fn(v):
        return nn.hinge_loss(model(v[:2]), v[2], reduction="sum")

    t = tape.record(fn, *X, params=model.parameters())
    run = t.run(X, seed=1.0 / len(X))
    model.zero_grad()
    nn.hinge_loss([model(r[:2].tolist()) for r in X], X[:, 2].tolist()).backward()
    _assert_close(run.param_grads, [p.grad for p in model.parameters()], "mean")


def test_replay_reads_the_parameters_current_values():
    w = Value(2.0)
    t = tape.record(lambda v: w * v[0], [3.0])
    assert t.run([[3.0]]).outputs[0, 0] == 6.0
    w.data = 5.0
    assert t.run([[3.0]]).outputs[0, 0] == 15.0
    assert t.run([[3.0]], params=[7.0]).outputs[0, 0] == 21.0


# -----------------------------------------------------------------------------------------
# What a tape shows
# -----------------------------------------------------------------------------------------


def test_print_lists_the_program_like_a_jaxpr():
    w = Value(0.5, label="w")
    t = tape.record(lambda v: (w * v[0] + v[1]).tanh(), [1.0, 2.0])
    assert str(t) == (
        "{ lambda x0 x1 ; p0 .\n"
        "  let t0 = mul p0 x0\n"
        "      t1 = add t0 x1\n"
        "      t2 = tanh t1\n"
        "  in ( t2 ) }\n"
        "p0 = w"
    )
    assert repr(t) == "Tape(2 inputs, 1 params, 3 rows, 3 steps of which 0 fused, 1 outputs)"


def test_print_shows_a_layer_as_one_fused_step():
    model = nn.MLP(2, [16, 1], seed=0)
    t = tape.record(lambda v: model(v), [0.5, 1.0], [1.0, -2.0], params=model.parameters())
    text = str(t)
    assert "linear[16x2] x=[x0 x1]" in text
    assert "relu[16]" in text
    assert "linear[1x16]" in text
    assert text.count("\n") < 12  # 16 neurons, a handful of lines
    assert "p0 = layers.0.weight[0, 0]" in text


# -----------------------------------------------------------------------------------------
# What cannot be recorded
# -----------------------------------------------------------------------------------------


def test_a_graph_that_depends_on_the_data_is_refused():
    def fn(v):
        x = v[0]
        return x.relu() if x > 0 else -x  # a Python `if` on a Value

    tape.record(fn, [1.0], [2.0])  # the same branch: the same program
    with pytest.raises(ValueError, match=r"the graph depends on the data: example 0 and example 1"):
        tape.record(fn, [1.0], [-2.0])


def test_a_label_used_as_an_index_is_refused():
    def fn(v):
        logits = [v[0] * 2.0, v[0] * 3.0]
        return autograd.logsumexp(logits) - logits[int(v[1].data)]

    with pytest.raises(ValueError, match="depends on the data"):
        tape.record(fn, [1.0, 0.0], [1.0, 1.0])


def test_a_constant_taken_from_the_data_is_refused():
    with pytest.raises(ValueError, match="depends on the data"):
        tape.record(lambda v: v[0] * v[0].data, [1.0], [2.0])


def test_a_non_value_output_is_refused():
    with pytest.raises(TypeError, match="output 1 is a float, not a Value"):
        tape.record(lambda v: [v[0] * 2.0, 3.0], [1.0])
    with pytest.raises(TypeError, match="must return a Value or a sequence of Values, got float"):
        tape.record(lambda v: 1.0, [1.0])
    with pytest.raises(ValueError, match="at least one example"):
        tape.record(lambda v: v[0])


def test_an_op_without_an_array_form_is_refused():
    cube = Op(
        "cube", "cube", 1, lambda x: math.pow(x, 3.0), (lambda out, x: 3.0 * x * x,), ("3 {0}**2",)
    )
    with pytest.raises(TypeError, match="op 'cube' has no array form"):
        tape.record(lambda v: apply(cube, v[0]), [2.0], [3.0])


# -----------------------------------------------------------------------------------------
# Errors in a replay
# -----------------------------------------------------------------------------------------


def test_a_domain_error_in_a_replay_names_op_value_and_sample():
    t = tape.record(lambda v: (v[0] * 2.0).log(), [1.0])
    with pytest.raises(
        ValueError,
        match=r"^log: input must be > 0, got -4\.0 at sample 2 \(tape row 't1 = log t0'\)$",
    ):
        t.run([[1.0], [3.0], [-2.0]])
    with pytest.raises(ValueError, match=r"got -4\.0 at sample 12 "):
        t.run([[1.0], [3.0], [-2.0]], index=np.array([10, 11, 12]))


def test_an_overflow_in_a_replay_names_op_and_sample_as_the_value_graph_does():
    t = tape.record(lambda v: v[0].exp(), [1.0])
    with pytest.raises(
        OverflowError, match=r"exp: result overflows float64, got input 800\.0 at sample 1"
    ):
        t.run([[1.0], [800.0]])
    t = tape.record(lambda v: v[0] * v[1], [1.0, 1.0])
    with pytest.raises(
        OverflowError,
        match=r"^mul: result inf is not finite for finite input\(s\) 1e\+200, 1e\+200 at sample 1",
    ):
        t.run([[1.0, 2.0], [1e200, 1e200]])
    with pytest.raises(OverflowError, match=r"mul: result inf is not finite"):
        Value(1e200) * Value(1e200)  # the Value graph's message, for comparison


def test_nan_or_inf_given_as_input_propagates_as_ieee_says():
    t = tape.record(lambda v: v[0] * 2.0 + 1.0, [1.0])
    out = t.run([[math.nan], [math.inf], [1.0]]).outputs[:, 0]
    assert math.isnan(out[0]) and out[1] == math.inf and out[2] == 3.0


def test_a_zero_factor_gives_exactly_zero_in_the_backward_pass():
    # sqrt'(0) is inf, but maximum(x, 0) does not change with x < 0: the gradient is 0.
    t = tape.record(lambda v: autograd.maximum(v[0], 0.0).sqrt(), [-2.0])
    g = t.run([[-2.0], [-1.0], [4.0]], input_grads=True).input_grads
    assert g.tolist() == [[0.0], [0.0], [0.25]]


def test_replay_checks_its_inputs():
    t = tape.record(lambda v: v[0] + v[1], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 2\), got \(3, 1\)"):
        t.run(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="example 1 has 1 values, example 0 has 2"):
        tape.record(lambda v: v[0], [1.0, 2.0], [1.0])


@pytest.mark.parametrize(
    "logits",
    [
        (1e12, 1e12, 1e12),
        (1e16, 1e16 + 2.0),
        (-1e16, -1e16 + 4.0, -1e16 - 4.0),
        (0.0, -40.0),
        (0.0, 40.0, 40.0),
        (0.0, -800.0, 800.0),
        (3.0, -1.0, 0.5, 2.0),
    ],
)
def test_one_hot_cross_entropy_is_as_precise_as_the_index_form(logits):
    # The form a tape records (one-hot labels, no index) against the class-index form, which
    # shifts by the largest logit: the same loss and gradients, to rounding, also where the
    # target's gradient is tiny (-exp(-40)) and at logits near 1e16.
    for target in range(len(logits)):
        xs = [Value(x) for x in logits]
        by_index = nn.cross_entropy(xs, target)
        g_index = autograd.grad(by_index, xs)
        ys = [Value(x) for x in logits]
        one_hot = [1.0 if j == target else 0.0 for j in range(len(logits))]
        by_label = nn.cross_entropy(ys, one_hot)
        g_label = autograd.grad(by_label, ys)
        assert math.isclose(by_label.data, by_index.data, rel_tol=1e-15), (target, logits)
        for a, b in zip(g_label, g_index):
            assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300), (target, logits, a, b)
