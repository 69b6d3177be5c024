"""The tape: record one sample's graph once, then replay it over a whole batch with numpy.

A training step through Value graphs builds the same graph again for every sample, node by
node. But for a network and a built-in loss that graph has the same shape for every sample:
only the numbers differ. So record it once, as a flat program, and run the program on arrays
that hold one number per sample (what a jaxpr in JAX, or a traced graph in PyTorch, is):

    >>> from autograd import Value, tape
    >>> w = Value(0.5, label="w")
    >>> t = tape.record(lambda v: (w * v[0] + v[1]).tanh(), [1.0, 2.0])
    >>> print(t)                                            # doctest: +NORMALIZE_WHITESPACE
    { lambda x0 x1 ; p0 .
      let t0 = mul p0 x0
          t1 = add t0 x1
          t2 = tanh t1
      in ( t2 ) }
    p0 = w
    >>> run = t.run([[1.0, 2.0], [3.0, -1.0]])             # two samples at once
    >>> run.outputs.shape, run.param_grads.shape
    ((2, 1), (1,))

The program is a list of rows `t_k = op(arguments)`, in topological order; an argument is
an input (`x_i`, one per feature of the sample: a column of the batch), a parameter (`p_j`,
a leaf Value the function read that is not an input: one number, broadcast over the batch),
an earlier row, or a plain number. Forward runs each row's op on whole columns; backward
runs the same rows in reverse, with the chain rule `grad[arg] += grad[row] * local` on
columns, and sums each parameter's gradient over the batch. Both use the op's entry in the
derivative table (`ops.py`): its array form where its float rule branches or calls math,
the float rule itself where it already works on arrays (add, sub, mul, neg; the derivatives
of div, exp, log, linear). Property tests prove the replay equal to the Value graph
(`tests/test_tape.py`).

**Fusion.** Rows of `linear` that read the same inputs with parameter weights (the neurons
of one layer) run as ONE matrix product; rows of one elementwise op over the columns of such
a block (the layer's activation, a loss's `z_j - t`) as one call on the matrix: the path from
one numpy call per row toward the hand-written floor. `print(tape)` shows the fused groups.

**The same graph for every sample, or an error.** A Python `if` on a Value's data makes the
graph depend on the sample; a replay of one sample's graph would be wrong for others.
`record` records on every example it is given (give several) and compares the programs:
different programs raise ValueError. Each recording's numbers are also compared with a
replay of the program on all examples at once, a check of the array forms on real data.

Read next: `nn/train.py`, whose `fit` uses this for nn models.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine import topological_order
from .grad_mode import enable_grad
from .ops import OPS, Op
from .value import Value

LINEAR = OPS["linear"]

__all__ = ["Tape", "TapeRun", "one_blas_thread", "record"]


def one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """A context in which numpy's BLAS (the fused layers' matrix products) uses one thread.

    A tape's products are small (a batch of a few thousand samples times a layer of tens of
    neurons): splitting each over cores costs more than it saves, and on a busy machine a
    thread waiting for a core makes it ten times slower (a 1347x64 @ 64x32 product measured
    2.0 ms on two threads under load, 0.2 ms on one). `nn.fit` trains inside this context.
    Uses threadpoolctl; without it, a context that changes nothing.
    """
    global _CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return contextlib.nullcontext()
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


_CONTROLLER: Any = None


# -----------------------------------------------------------------------------------------
# The program: rows of (op, arguments), before fusion
# -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One recorded operation: `slot out = op(*args)`.

    An argument is an `int` (a slot: an input, a parameter or an earlier row's output) or a
    `float` (a plain number the op was called with, the same for every sample).
    """

    op: Op
    out: int
    args: tuple[int | float, ...]

    def key(self) -> tuple[Any, ...]:
        # What two recordings must agree on: the op, and every argument with its kind.
        return (self.op.name, self.out, tuple((type(a).__name__, a) for a in self.args))


class _Recording:
    """One sample's graph as rows, with every slot's float value (to check replays)."""

    def __init__(
        self,
        fn: Callable[[list[Value]], Any],
        example: Sequence[float],
        names: Sequence[str],
        params: Sequence[Value] | None,
    ) -> None:
        inputs = [Value(float(x), label=name) for x, name in zip(example, names)]
        with enable_grad():
            result = fn(inputs)
        outputs = _as_outputs(result)
        slot: dict[Value, int] = {v: i for i, v in enumerate(inputs)}
        self.params: list[Value] = []
        # Leaves that are neither inputs nor parameters, when `params` is given: their values
        # are constants of the program (and part of what recordings must agree on).
        self.constants: dict[Value, float] = {}
        known = None if params is None else set(params)
        if params is not None:
            for p in params:
                if p not in slot:
                    slot[p] = len(slot)
                    self.params.append(p)
        order = topological_order(list(outputs))
        # Parameters found in the graph but not given come after the given ones, in the
        # order the graph first uses them.
        for node in order:
            if node.op is None and node not in slot:
                if known is None:
                    slot[node] = len(slot)
                    self.params.append(node)
                else:
                    self.constants[node] = node.data
        self.n_inputs = len(inputs)
        self.rows: list[Row] = []
        self.data: list[float] = [v.data for v in inputs] + [p.data for p in self.params]
        for node in order:
            if node.op is None:
                continue
            args = tuple(
                (
                    (slot[a] if a not in self.constants else self.constants[a])
                    if isinstance(a, Value)
                    else float(a)
                )
                for a in node.args
            )
            slot[node] = len(slot)
            self.rows.append(Row(node.op, slot[node], args))
            self.data.append(node.data)
        self.outputs: tuple[int | float, ...] = tuple(
            self.constants[o] if o in self.constants else slot[o] for o in outputs
        )

    def key(self) -> tuple[Any, ...]:
        return (
            self.n_inputs,
            tuple(id(p) for p in self.params),
            tuple(r.key() for r in self.rows),
            self.outputs,
        )


def _as_outputs(result: Any) -> tuple[Value, ...]:
    items = (result,) if isinstance(result, Value) else result
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(
            f"tape.record: the function must return a Value or a sequence of Values, got "
            f"{type(result).__name__}"
        ) from None
    if not items:
        raise ValueError("tape.record: the function returned no outputs")
    for i, item in enumerate(items):
        if not isinstance(item, Value):
            raise TypeError(
                f"tape.record: output {i} is a {type(item).__name__}, not a Value: a tape "
                "replays Value graphs (wrap a constant output as Value(c))"
            )
    return items


def _first_difference(a: _Recording, b: _Recording) -> str:
    """A sentence saying where two recordings' programs part."""
    if tuple(map(id, a.params)) != tuple(map(id, b.params)):
        return "they read different parameters"
    for ra, rb in zip(a.rows, b.rows):
        if ra.key() != rb.key():
            return f"row {_row_text(ra, a.n_inputs, len(a.params))!r} became " + repr(
                _row_text(rb, b.n_inputs, len(b.params))
            )
    if len(a.rows) != len(b.rows):
        return f"one has {len(a.rows)} rows, the other {len(b.rows)}"
    return "their outputs differ"


# -----------------------------------------------------------------------------------------
# Steps: what a replay runs. A row, or a fused group of rows.
# -----------------------------------------------------------------------------------------


class _Env:
    """The arrays of one replay: every slot's value and, on the way back, its gradient.

    A slot's value is a column of shape (n,), a plain float (a parameter, a constant, or a
    row computed from those only), or a column of a block: the (n, k) matrix a fused step
    makes. Gradients are kept the same way; a block's gradient is one (n, k) matrix whose
    columns are the slots' gradients.
    """

    def __init__(self, n: int, n_slots: int) -> None:
        self.n = n
        self.vals: list[Any] = [None] * n_slots
        self.grads: list[Any] = [None] * n_slots
        self.blocks: dict[int, np.ndarray] = {}  # block id -> value matrix (n, k)
        self.block_grads: dict[int, np.ndarray] = {}  # block id -> gradient matrix (n, k)
        self.param_grads: np.ndarray = np.zeros(0)
        self.param_values: np.ndarray = np.zeros(0)
        self.index: np.ndarray | None = None  # sample numbers to name in messages


@dataclass
class _Program:
    """Everything a step needs to know about slots."""

    n_inputs: int
    n_params: int
    n_slots: int
    names: list[str]
    # slot -> (block id, column) for the outputs of fused steps and for the inputs (block -1)
    home: dict[int, tuple[int, int]] = field(default_factory=dict)
    block_slots: dict[int, tuple[int, ...]] = field(default_factory=dict)
    needs_grad: list[bool] = field(default_factory=list)

    def is_param(self, s: int) -> bool:
        return self.n_inputs <= s < self.n_inputs + self.n_params

    def matrix(self, env: _Env, slots: Sequence[int]) -> np.ndarray:
        """The values of `slots` as an (n, len(slots)) matrix (a view when they are a block)."""
        first = self.home.get(slots[0])
        if first is not None:
            bid, col = first
            block = self.block_slots[bid]
            if tuple(slots) == block[col : col + len(slots)]:
                return env.blocks[bid][:, col : col + len(slots)]
        return np.column_stack([np.broadcast_to(env.vals[s], (env.n,)) for s in slots])

    def add_grad(self, env: _Env, s: int, g: Any) -> None:
        """grad[s] += g, for one slot; a parameter's gradient is summed over the batch."""
        if self.is_param(s):
            env.param_grads[s - self.n_inputs] += np.sum(g) if np.ndim(g) else g * env.n
            return
        home = self.home.get(s)
        if home is not None:
            bid, col = home
            gm = env.block_grads.get(bid)
            if gm is None:
                gm = env.block_grads[bid] = np.zeros((env.n, len(self.block_slots[bid])))
            gm[:, col] += g
            return
        old = env.grads[s]
        env.grads[s] = g if old is None else old + g

    def add_grad_matrix(self, env: _Env, slots: Sequence[int], g: np.ndarray) -> None:
        """grad[slots[j]] += g[:, j] for every j, one matrix addition when they are a block."""
        first = self.home.get(slots[0])
        if first is not None:
            bid, col = first
            block = self.block_slots[bid]
            if tuple(slots) == block[col : col + len(slots)]:
                gm = env.block_grads.get(bid)
                if gm is None and len(slots) == len(block):
                    # The first gradient of the whole block: kept as it is (a copy when it
                    # is a read-only view), not added to zeros.
                    owned = isinstance(g, np.ndarray) and g.flags.owndata and g.flags.writeable
                    env.block_grads[bid] = g if owned else np.array(g, dtype=np.float64)
                    return
                if gm is None:
                    gm = env.block_grads[bid] = np.zeros((env.n, len(block)))
                gm[:, col : col + len(slots)] += g
                return
        for j, s in enumerate(slots):
            if self.needs_grad[s]:
                self.add_grad(env, s, g[:, j])

    def grad_of(self, env: _Env, s: int) -> Any:
        home = self.home.get(s)
        if home is not None:
            gm = env.block_grads.get(home[0])
            return None if gm is None else gm[:, home[1]]
        return env.grads[s]


def _array_local(op: Op, i: int, out: Any, args: Sequence[Any]) -> Any:
    """d(out)/d(args[i]) on arrays: the op's array rule for argument i where it has one, else
    its float rule (which works on arrays); `Op.local_grad`'s lookup, on the array rules."""
    rules = op.array_local_grads or op.local_grads
    rule = rules[i] if i < len(rules) else rules[-1]
    if type(rule) is float:  # a constant derivative
        return rule
    return rule(out, *args) if op.arity is not None else rule(i, out, args)


def _all_finite(x: Any) -> bool:
    """Whether every element is finite: one sum (finite exactly when they all are, unless
    the sum overflows, which the full check then sorts out), no boolean array."""
    return bool(np.isfinite(np.sum(x))) or bool(np.all(np.isfinite(x)))


def _times(g: Any, local: Any) -> Any:
    """g * local; a zero factor gives exactly zero even against inf or NaN (as backward does)."""
    product = g * local
    if _all_finite(product):
        return product
    return np.where((np.asarray(g) == 0.0) | (np.asarray(local) == 0.0), 0.0, product)


class _RowStep:
    """One row, run on columns: the op's array form (or its float rule, where that works)."""

    def __init__(self, row: Row, prog: _Program) -> None:
        self.row = row
        self.forward_fn = row.op.array_forward or row.op.forward
        self.slots = [a for a in row.args if type(a) is int]

    def args(self, env: _Env) -> list[Any]:
        return [env.vals[a] if type(a) is int else a for a in self.row.args]

    def forward(self, env: _Env, prog: _Program) -> None:
        args = self.args(env)
        out = _call_forward(self.forward_fn, args, self.row, prog, env)
        env.vals[self.row.out] = out

    def backward(self, env: _Env, prog: _Program) -> None:
        g = prog.grad_of(env, self.row.out)
        if g is None:
            return
        args = self.args(env)
        out = env.vals[self.row.out]
        for i, a in enumerate(self.row.args):
            if type(a) is int and prog.needs_grad[a]:
                # Only the derivatives needed: none with respect to a plain number.
                local = _array_local(self.row.op, i, out, args)
                if type(local) is float and local == 0.0:
                    continue  # a zero local derivative contributes nothing
                prog.add_grad(env, a, _times(g, local))


class _LinearBlock:
    """Rows `t_j = linear(b_j, w_j1..w_jm, x_1..x_m)` reading the same x: one matrix product.

    Forward: Z = X @ W.T + b, with X the (n, m) inputs, W the (k, m) weights, b the k biases.
    Backward: dX = G @ W, dW = G.T @ X (summed over the batch), db = G summed over the batch.
    """

    def __init__(self, bid: int, rows: list[Row], prog: _Program) -> None:
        self.bid = bid
        self.rows = rows
        self.outs = tuple(r.out for r in rows)
        m = (len(rows[0].args) - 1) // 2
        self.m = m
        self.xs = tuple(int(a) for a in rows[0].args[m + 1 :])
        # Weights and biases: parameter slots, or plain numbers (kept as they are).
        self.w_args = [r.args[1 : m + 1] for r in rows]
        self.b_args = [r.args[0] for r in rows]
        self.w_index, self.w_mask, self.w_const = _param_table(self.w_args, prog)
        self.b_index, self.b_mask, self.b_const = _param_table([[b] for b in self.b_args], prog)
        self._ranges: dict[int, bool] = {}  # per index table: its slots a consecutive range
        self.w_unique = len(set(self.w_index[self.w_mask].tolist())) == int(self.w_mask.sum())
        self.b_unique = len(set(self.b_index[self.b_mask].tolist())) == int(self.b_mask.sum())

    def forward(self, env: _Env, prog: _Program) -> None:
        X = prog.matrix(env, self.xs)
        W = self._gather(env, prog, self.w_index, self.w_mask, self.w_const)
        b = self._gather(env, prog, self.b_index, self.b_mask, self.b_const)[:, 0]
        Z = X @ W.T + b
        if not _all_finite(Z):
            _report_nonfinite(Z, [X, W, b], LINEAR, self.rows, prog, env)
        env.blocks[self.bid] = Z
        for j, s in enumerate(self.outs):
            env.vals[s] = Z[:, j]

    def _gather(
        self, env: _Env, prog: _Program, index: np.ndarray, mask: np.ndarray, const: np.ndarray
    ) -> np.ndarray:
        key = id(index)
        if key not in self._ranges:
            self._ranges[key] = bool(mask.all() and index.size and _is_range(index))
        if self._ranges[key]:
            # A layer's weights are consecutive parameters, row by row: a view, no copy.
            start = int(index.flat[0])
            return env.param_values[start : start + index.size].reshape(index.shape)
        if not mask.any():
            return const  # weights that are all plain numbers
        values = env.param_values[index]
        return np.where(mask, values, const) if not mask.all() else values

    def backward(self, env: _Env, prog: _Program) -> None:
        G = env.block_grads.get(self.bid)
        if G is None:
            return
        X = prog.matrix(env, self.xs)
        W = self._gather(env, prog, self.w_index, self.w_mask, self.w_const)
        if not _all_finite(G):
            # Rare (the run is diverging): apply the zero-factor rule term by term.
            terms = G[:, :, None] * W[None]
            dX: np.ndarray | None = np.where((G[:, :, None] == 0) | (W[None] == 0), 0.0, terms).sum(
                axis=1
            )
            dW = np.where(
                (G[:, :, None] == 0) | (X[:, None, :] == 0), 0.0, G[:, :, None] * X[:, None, :]
            )
            dW = dW.sum(axis=0)
        else:
            dX = G @ W if any(prog.needs_grad[s] for s in self.xs) else None
            dW = G.T @ X
        db = G.sum(axis=0)
        pg = env.param_grads
        for index, mask, unique, grad in (
            (self.w_index, self.w_mask, self.w_unique, dW),
            (self.b_index[:, 0], self.b_mask[:, 0], self.b_unique, db),
        ):
            if unique:  # each weight used once in the block: one fancy-indexed addition
                pg[index[mask]] += grad[mask]
            else:
                np.add.at(pg, index[mask], grad[mask])
        if dX is not None:
            prog.add_grad_matrix(env, self.xs, dX)


def _is_range(index: np.ndarray) -> bool:
    flat = index.ravel()
    return bool(np.array_equal(flat, np.arange(flat[0], flat[0] + flat.size)))


def _param_table(
    args: Sequence[Sequence[int | float]], prog: _Program
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a (k, m) table of arguments: slot numbers, which are slots, and the constants."""
    index = np.array([[a if type(a) is int else 0 for a in row] for row in args], dtype=np.intp)
    mask = np.array([[type(a) is int for a in row] for row in args], dtype=bool)
    const = np.array([[0.0 if type(a) is int else a for a in row] for row in args])
    # env.param_values is indexed by parameter number: shift slots to start at 0.
    index = np.where(mask, index - prog.n_inputs, 0)
    return index, mask, const


class _MapBlock:
    """Rows `t_j = op(a_1j, a_2j, ...)` of one elementwise op computed as one call on (n, k)
    matrices: at each argument position either every row reads a column of one block (the
    j-th row its j-th column: a layer's relu, `z_j - t`), or every row reads the same
    argument (a column, broadcast as (n, 1), or a plain number)."""

    def __init__(self, bid: int, rows: list[Row]) -> None:
        self.bid = bid
        self.rows = rows
        self.op = rows[0].op
        self.outs = tuple(r.out for r in rows)
        # Per argument: the slots of the rows (varying), or None where all rows share it.
        self.ins: list[tuple[int, ...] | None] = []
        for i, a in enumerate(rows[0].args):
            column = tuple(r.args[i] for r in rows)
            shared = all(c == a and type(c) is type(a) for c in column)
            self.ins.append(None if shared else tuple(int(c) for c in column))
        self.shared = rows[0].args
        self.forward_fn = self.op.array_forward or self.op.forward

    def slots_read(self) -> set[int]:
        read = {a for a, ins in zip(self.shared, self.ins) if ins is None and type(a) is int}
        return read | {s for ins in self.ins if ins is not None for s in ins}

    def args(self, env: _Env, prog: _Program) -> list[Any]:
        out: list[Any] = []
        for a, ins in zip(self.shared, self.ins):
            if ins is not None:
                out.append(prog.matrix(env, ins))
            elif type(a) is int:
                v = env.vals[a]
                out.append(v[:, None] if np.ndim(v) == 1 else v)
            else:
                out.append(a)
        return out

    def forward(self, env: _Env, prog: _Program) -> None:
        args = self.args(env, prog)
        out = _call_forward(self.forward_fn, args, self.rows[0], prog, env, self)
        out = np.broadcast_to(out, (env.n, len(self.outs)))
        env.blocks[self.bid] = out
        for j, s in enumerate(self.outs):
            env.vals[s] = out[:, j]

    def backward(self, env: _Env, prog: _Program) -> None:
        G = env.block_grads.get(self.bid)
        if G is None:
            return
        args = self.args(env, prog)
        out = env.blocks[self.bid]
        for i, (a, ins) in enumerate(zip(self.shared, self.ins)):
            if ins is not None:
                if any(prog.needs_grad[s] for s in ins):
                    local = _array_local(self.op, i, out, args)
                    prog.add_grad_matrix(env, ins, _times(G, local))
            elif type(a) is int and prog.needs_grad[a]:
                # One column read by every row: its gradient is the sum over the rows.
                local = _array_local(self.op, i, out, args)
                prog.add_grad(env, a, np.broadcast_to(_times(G, local), G.shape).sum(axis=1))


def _call_forward(
    fn: Callable[..., Any],
    args: list[Any],
    row: Row,
    prog: _Program,
    env: _Env,
    block: _MapBlock | None = None,
) -> Any:
    """Run one forward, turning a failure into a message that names the row and the sample."""
    where = f"tape row {_row_text(row, prog.n_inputs, prog.n_params, prog.names)!r}"
    try:
        out = fn(*args)
    except (ValueError, ZeroDivisionError, OverflowError) as e:
        raise type(e)(f"{_with_sample(str(e), env)} ({where})") from None
    except TypeError as e:
        raise TypeError(
            f"tape: op {row.op.name!r} has no array form: its float rule fails on arrays "
            f"({e}); give the op an array_forward in ops.py, or use the Value graph"
        ) from None
    if not _all_finite(out):
        rows = block.rows if block is not None else [row]
        _report_nonfinite(out, args, row.op, rows, prog, env)
    return out


def _with_sample(message: str, env: _Env) -> str:
    """Array forms name the position in the batch; say the sample number when one is known."""
    if env.index is None:
        return message
    head, sep, pos = message.rpartition("at sample ")
    if sep and pos.split()[0].isdigit():
        k = int(pos.split()[0])
        return f"{head}at sample {int(env.index[k])}"
    return message


def _report_nonfinite(
    out: Any, args: list[Any], op: Op, rows: list[Row], prog: _Program, env: _Env
) -> None:
    """Raise OverflowError where finite inputs gave a non-finite result (as the Value path)."""
    out = np.asarray(out)
    finite_in = np.ones(out.shape[0], dtype=bool)
    for a in args:
        arr = np.asarray(a)
        if arr.ndim == 0:
            finite_in &= bool(np.isfinite(arr))
        elif arr.shape[0] == out.shape[0] and arr.ndim <= 2:
            fin = np.isfinite(arr)
            finite_in &= fin if fin.ndim == 1 else fin.all(axis=1)
        else:  # weights of a linear block: not per sample
            finite_in &= bool(np.all(np.isfinite(arr)))
    bad_out = ~np.isfinite(out) if out.ndim == 1 else ~np.isfinite(out).all(axis=1)
    bad = bad_out & finite_in
    if not bad.any():
        return  # NaN or inf came in: it propagates, as IEEE says
    k = int(np.argmax(bad))
    col = 0
    if out.ndim == 2:
        col = int(np.argmax(~np.isfinite(out[k])))
    row = rows[min(col, len(rows) - 1)]
    sample = k if env.index is None else int(env.index[k])
    value = out[k] if out.ndim == 1 else out[k, col]
    shown = []
    for a in row.args[:3]:
        if type(a) is int:
            v = env.param_values[a - prog.n_inputs] if prog.is_param(a) else env.vals[a]
            shown.append(repr(float(np.asarray(v)[k] if np.ndim(v) else v)))
        else:
            shown.append(repr(a))
    if len(row.args) > 3:
        shown.append(f"... ({len(row.args)} inputs)")
    raise OverflowError(
        f"{op.name}: result {float(value)!r} is not finite for finite input(s) "
        f"{', '.join(shown)} at sample {sample} (tape row "
        f"{_row_text(row, prog.n_inputs, prog.n_params, prog.names)!r})"
    )


# -----------------------------------------------------------------------------------------
# Fusion: which rows become one step
# -----------------------------------------------------------------------------------------


def _reads(step: Any) -> set[int]:
    if isinstance(step, _RowStep):
        return set(step.slots)
    if isinstance(step, _LinearBlock):
        reads = set(step.xs)
        reads |= {int(a) for w in step.w_args for a in w if type(a) is int}
        return reads | {int(b) for b in step.b_args if type(b) is int}
    return step.slots_read()


def _in_order(steps: list[Any], prog: _Program) -> bool:
    """Whether every step reads only inputs, parameters and what steps before it made."""
    ready = set(range(prog.n_inputs + prog.n_params))
    for step in steps:
        if not _reads(step) <= ready:
            return False
        ready |= {step.row.out} if isinstance(step, _RowStep) else set(step.outs)
    return True


def _fuse(rows: list[Row], prog: _Program, maps_too: bool = True) -> list[Any]:
    """The steps of a replay: rows, with a layer's linear rows and its activations fused."""

    # 1. linear rows whose weights and bias are parameters or plain numbers, grouped by the
    #    slots they read. All rows of a group read the same, already computed, inputs, so
    #    the group can run where its first row was.
    def fusable_linear(r: Row) -> bool:
        if r.op is not LINEAR or len(r.args) < 3:
            return False
        m = (len(r.args) - 1) // 2
        return all(type(a) is not int or prog.is_param(a) for a in r.args[: m + 1]) and all(
            type(a) is int for a in r.args[m + 1 :]
        )

    groups: dict[Any, list[Row]] = {}
    for r in rows:
        if fusable_linear(r):
            m = (len(r.args) - 1) // 2
            groups.setdefault(("linear", r.args[m + 1 :]), []).append(r)
    first_of: dict[int, tuple[str, Any]] = {}
    member: set[int] = set()
    next_block = 0
    linear_block_of: dict[int, int] = {}  # row out slot -> block id
    planned: dict[Any, int] = {}
    for key, group in groups.items():
        bid = next_block
        next_block += 1
        planned[key] = bid
        prog.block_slots[bid] = tuple(r.out for r in group)
        for j, r in enumerate(group):
            prog.home[r.out] = (bid, j)
            linear_block_of[r.out] = bid
            member.add(r.out)
        first_of[group[0].out] = ("linear", key)
    # 2. rows of one elementwise op (fixed arity) that read, at each argument, either the
    #    same thing or a column of one block: the layer's activation, a loss's `z_j - t`.
    #    Rows are taken in order; a row joins the open group of its key (op, and per
    #    argument the block it reads or the shared argument) unless it reads that group's
    #    own output. A group of one is a plain row after all.
    block_of = {s: bid for s, (bid, _) in prog.home.items()}
    maps: dict[int, list[Row]] = {}
    if not maps_too:
        rows_to_group: list[Row] = []
    else:
        rows_to_group = rows
    open_group: dict[Any, int] = {}
    group_of: dict[int, int] = {}  # row out slot -> tentative group
    next_group = 0
    for r in rows_to_group:
        if r.op.arity is None or r.out in member:
            continue
        parts: list[Any] = []
        for a in r.args:
            if type(a) is int and (a in block_of or a in group_of):
                parts.append(("block", block_of.get(a, ("group", group_of.get(a)))))
            else:
                parts.append(("same", type(a).__name__, a))
        if all(p[0] == "same" for p in parts):
            continue  # reads no block: nothing to fuse with
        key = (r.op.name, tuple(parts))
        gid = open_group.get(key)
        reads_own = gid is not None and any(
            type(a) is int and group_of.get(a) == gid for a in r.args
        )
        if gid is None or reads_own:
            gid = open_group[key] = next_group
            next_group += 1
            maps[gid] = []
        maps[gid].append(r)
        group_of[r.out] = gid
    for gid, group in maps.items():
        if len(group) < 2:
            continue
        bid = next_block
        next_block += 1
        prog.block_slots[bid] = tuple(r.out for r in group)
        for j, r in enumerate(group):
            prog.home[r.out] = (bid, j)
            member.add(r.out)
        planned[("map", gid)] = bid
        first_of[group[0].out] = ("map", gid)
    steps: list[Any] = []
    for r in rows:
        if r.out in first_of:
            kind, key = first_of[r.out]
            if kind == "linear":
                steps.append(_LinearBlock(planned[key], groups[key], prog))
            else:
                steps.append(_MapBlock(planned[("map", key)], maps[key]))
        elif r.out not in member:
            steps.append(_RowStep(r, prog))
    return steps


# -----------------------------------------------------------------------------------------
# The tape
# -----------------------------------------------------------------------------------------


@dataclass
class TapeRun:
    """What one replay returns.

    Attributes:
        outputs: shape (n_samples, n_outputs): every output of the function, per sample.
        param_grads: shape (n_params,): d(sum_i seed_i * output[seed_output]_i)/d(param),
            summed over the batch (empty when only forward was run).
        input_grads: shape (n_samples, n_inputs), per sample (None unless asked for).
    """

    outputs: np.ndarray
    param_grads: np.ndarray
    input_grads: np.ndarray | None = None


class Tape:
    """A recorded program (see the module docstring); made by `record`.

    Attributes:
        n_inputs: the length of one sample.
        params: the parameter Values, in slot order (`p0`, `p1`, ...).
        rows: the program before fusion, in topological order.
        outputs: one slot (or plain number) per output of the function.
        steps: what a replay runs: rows and fused groups of rows.
    """

    def __init__(self, rec: _Recording, input_names: Sequence[str]) -> None:
        self.n_inputs = rec.n_inputs
        self.params: tuple[Value, ...] = tuple(rec.params)
        self.rows: tuple[Row, ...] = tuple(rec.rows)
        self.outputs = rec.outputs
        self.input_names = list(input_names)
        n_slots = self.n_inputs + len(self.params) + len(self.rows)
        names = (
            [f"x{i}" for i in range(self.n_inputs)]
            + [f"p{j}" for j in range(len(self.params))]
            + [f"t{k}" for k in range(len(self.rows))]
        )
        self._prog = _Program(self.n_inputs, len(self.params), n_slots, names)
        # The inputs are a block too (id -1): a layer reading x0..x(m-1) reads a view of X.
        self._prog.block_slots[-1] = tuple(range(self.n_inputs))
        for i in range(self.n_inputs):
            self._prog.home[i] = (-1, i)
        self.steps = _fuse(list(self.rows), self._prog)
        if not _in_order(self.steps, self._prog):  # pragma: no cover - a safety net
            self._prog.home = {i: (-1, i) for i in range(self.n_inputs)}
            self._prog.block_slots = {-1: tuple(range(self.n_inputs))}
            self.steps = _fuse(list(self.rows), self._prog, maps_too=False)
        # Rows are named t0, t1, ... in the order the steps compute them, so a fused layer's
        # outputs have consecutive names.
        k = 0
        for step in self.steps:
            for s in (step.row.out,) if isinstance(step, _RowStep) else step.outs:
                self._prog.names[s] = f"t{k}"
                k += 1
        # The parameters read one by one (by unfused rows, or as outputs); a fused layer
        # reads its weights from the array of all parameter values instead.
        read = {a for st in self.steps if isinstance(st, _RowStep) for a in st.slots}
        read |= {a for st in self.steps if isinstance(st, _LinearBlock) for a in st.xs}
        read |= {a for st in self.steps if isinstance(st, _MapBlock) for a in st.slots_read()}
        read |= {o for o in self.outputs if type(o) is int}
        self._scalar_params = sorted(s for s in read if self._prog.is_param(s))
        self._needs: dict[bool, list[bool]] = {}

    # -- running ------------------------------------------------------------------------

    def _needs_grad(self, inputs: bool) -> list[bool]:
        """Which slots a backward pass must hand gradients to: those computed from a
        parameter (or from an input, when input gradients are asked for)."""
        if inputs not in self._needs:
            needs = [inputs] * self.n_inputs + [True] * len(self.params)
            needs += [False] * len(self.rows)
            for r in self.rows:
                needs[r.out] = any(type(a) is int and needs[a] for a in r.args)
            self._needs[inputs] = needs
        return self._needs[inputs]

    def run(
        self,
        X: Any,
        params: Any = None,
        *,
        backward: bool = True,
        seed: float | np.ndarray = 1.0,
        output: int = 0,
        input_grads: bool = False,
        index: np.ndarray | None = None,
    ) -> TapeRun:
        """Replay the program on a batch: forward, and backward from one output.

        Args:
            X: shape (n_samples, n_inputs): one sample per row.
            params: the parameters' values, shape (n_params,); default: each parameter
                Value's current `.data` (so a replay after an optimiser step uses the new
                weights).
            backward: also run the backward pass (False: forward only).
            seed: d(loss)/d(output) for each sample, a number or shape (n_samples,): 1.0
                sums the output over the batch, 1/n averages it.
            output: which output to differentiate (default the first).
            input_grads: also return per-sample gradients of the inputs.
            index: sample numbers to name in error messages (default 0..n-1).
        Returns:
            A `TapeRun`.
        Raises:
            ValueError, ZeroDivisionError, OverflowError: an op's domain error, or a
                non-finite result from finite inputs, naming the op, the value, the
                sample and the tape row (as the Value graph would raise them).
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(
                f"Tape.run: X must have shape (n_samples, {self.n_inputs}), got {X.shape}"
            )
        n = X.shape[0]
        prog = self._prog
        env = _Env(n, prog.n_slots)
        env.index = index
        if params is None:
            pv = np.array([p.data for p in self.params], dtype=np.float64)
        else:
            pv = np.asarray(params, dtype=np.float64).reshape(-1)
            if pv.shape != (len(self.params),):
                raise ValueError(
                    f"Tape.run: params must have {len(self.params)} values, got {pv.shape[0]}"
                )
        env.param_values = pv
        env.blocks[-1] = X
        for i in range(self.n_inputs):
            env.vals[i] = X[:, i]
        for s in self._scalar_params:
            env.vals[s] = pv[s - self.n_inputs]  # a numpy scalar: array forms work on it
        with np.errstate(all="ignore"):
            for step in self.steps:
                step.forward(env, prog)
            outputs = np.column_stack(
                [np.broadcast_to(env.vals[o] if type(o) is int else o, (n,)) for o in self.outputs]
            )
            if not backward:
                return TapeRun(outputs, np.zeros(0))
            prog.needs_grad = self._needs_grad(input_grads)
            env.param_grads = np.zeros(len(self.params))
            root = self.outputs[output]
            if type(root) is int and prog.needs_grad[root]:
                prog.add_grad(
                    env, root, np.broadcast_to(np.asarray(seed, dtype=float), (n,)).copy()
                )
                for step in reversed(self.steps):
                    step.backward(env, prog)
        grads_in = None
        if input_grads:
            grads_in = np.zeros((n, self.n_inputs))
            gm = env.block_grads.get(-1)
            if gm is not None:
                grads_in += gm
        return TapeRun(outputs, env.param_grads, grads_in)

    def forward(self, X: Any, params: Any = None, chunk: int = 65536) -> np.ndarray:
        """The outputs on a batch, shape (n_samples, n_outputs), `chunk` samples at a time
        (memory grows with the chunk, not with the batch)."""
        X = np.asarray(X, dtype=np.float64)
        parts = [
            self.run(X[i : i + chunk], params, backward=False).outputs
            for i in range(0, max(len(X), 1), chunk)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.outputs)))

    # -- display --------------------------------------------------------------------------

    def __str__(self) -> str:
        prog = self._prog
        names = prog.names
        lines = [
            "{ lambda "
            + " ".join(names[: self.n_inputs])
            + " ; "
            + _abbrev([names[self.n_inputs + j] for j in range(len(self.params))])
            + " ."
        ]
        body: list[str] = []
        for step in self.steps:
            if isinstance(step, _RowStep):
                body.append(_row_text(step.row, self.n_inputs, len(self.params), names))
            elif isinstance(step, _LinearBlock):
                outs = _abbrev([names[s] for s in step.outs])
                xs = _abbrev([names[s] for s in step.xs])
                ws = _abbrev(
                    [names[int(a)] if type(a) is int else repr(a) for w in step.w_args for a in w]
                )
                bs = _abbrev([names[int(b)] if type(b) is int else repr(b) for b in step.b_args])
                body.append(
                    f"[{outs}] = linear[{len(step.outs)}x{step.m}] x=[{xs}] w=[{ws}] b=[{bs}]"
                )
            else:
                outs = _abbrev([names[s] for s in step.outs])
                args = [
                    "[" + _abbrev([names[s] for s in ins]) + "]"
                    if ins is not None
                    else names[a]
                    if type(a) is int
                    else repr(a)
                    for a, ins in zip(step.shared, step.ins)
                ]
                body.append(f"[{outs}] = {step.op.name}[{len(step.outs)}] " + " ".join(args))
        if body:
            lines.append("  let " + body[0])
            lines.extend("      " + b for b in body[1:])
        outs = " ".join(names[o] if type(o) is int else repr(o) for o in self.outputs)
        lines.append(f"  in ( {outs} ) }}")
        labelled = [f"p{j} = {p.label}" for j, p in enumerate(self.params) if p.label]
        if labelled:
            lines.append(_abbrev_lines(labelled))
        return "\n".join(lines)

    def __repr__(self) -> str:
        fused = sum(1 for s in self.steps if not isinstance(s, _RowStep))
        return (
            f"Tape({self.n_inputs} inputs, {len(self.params)} params, {len(self.rows)} rows, "
            f"{len(self.steps)} steps of which {fused} fused, {len(self.outputs)} outputs)"
        )


def _row_text(row: Row, n_inputs: int, n_params: int, names: Sequence[str] | None = None) -> str:
    """`t3 = mul p0 x1`: a row as `print(tape)` shows it (`names`: the tape's slot names)."""

    def name(a: int | float) -> str:
        if type(a) is not int:
            return repr(a)
        if names is not None:
            return names[a]
        if a < n_inputs:
            return f"x{a}"
        if a < n_inputs + n_params:
            return f"p{a - n_inputs}"
        return f"t{a - n_inputs - n_params}"

    return f"{name(row.out)} = {row.op.name} " + " ".join(name(a) for a in row.args)


def _abbrev(names: list[str], keep: int = 6) -> str:
    """A long list as its first and last few names: `p0 p1 p2 ... p47 (48)`."""
    if len(names) <= keep:
        return " ".join(names)
    return " ".join(names[: keep // 2]) + " ... " + " ".join(names[-2:]) + f" ({len(names)})"


def _abbrev_lines(lines: list[str], keep: int = 6) -> str:
    if len(lines) <= keep:
        return "\n".join(lines)
    return "\n".join([*lines[: keep // 2], f"... ({len(lines) - keep // 2 - 1} more)", lines[-1]])


def record(
    fn: Callable[[list[Value]], Any],
    *examples: Sequence[float],
    params: Sequence[Value] | None = None,
    input_names: Sequence[str] | None = None,
    rtol: float = 1e-10,
) -> Tape:
    """Record `fn` on one sample as a flat program, checked on every example given.

    Args:
        fn: takes the sample as a list of input Values and returns a Value or a sequence
            of Values (for training: the loss first, then the model's outputs). It may
            read other Values (a model's weights): they become the tape's parameters.
        examples: one or more samples, each a sequence of `n_inputs` numbers. `fn` is
            recorded on each; give several, so a graph that depends on the data is caught.
        params: the parameters, in the order `TapeRun.param_grads` should use (a model's
            `parameters()`). Leaf Values `fn` reads that are not among them are constants of
            the program. Default: every leaf that is not an input, in order of first use.
        input_names: labels for the input Values (default `x0`, `x1`, ...).
        rtol: how close the replay on all examples must come to each recording, relative
            to the largest magnitude on the value's way from the inputs (a guard against a
            wrong array form; the property tests prove them equal to the float rules).
    Returns:
        A `Tape`.
    Raises:
        TypeError: `fn` returns something other than Values, or uses an op without an
            array form.
        ValueError: no examples, examples of different lengths, or recordings that give
            different programs (the graph depends on the data: a Python `if` on a Value,
            or a label used as an index), or a replay that disagrees with a recording.
    """
    if not examples:
        raise ValueError("tape.record: give at least one example sample")
    rows_ = [np.asarray(e, dtype=np.float64).reshape(-1) for e in examples]
    n_inputs = len(rows_[0])
    for i, r in enumerate(rows_):
        if len(r) != n_inputs:
            raise ValueError(
                f"tape.record: example {i} has {len(r)} values, example 0 has {n_inputs}"
            )
    names = list(input_names) if input_names is not None else [f"x{i}" for i in range(n_inputs)]
    recordings = [_Recording(fn, r.tolist(), names, params) for r in rows_]
    first = recordings[0]
    for i, rec in enumerate(recordings[1:], start=1):
        if rec.key() != first.key():
            raise ValueError(
                f"tape.record: the graph depends on the data: example 0 and example {i} give "
                f"different programs ({_first_difference(first, rec)}). A Python `if` on a "
                "Value, or a label used as an index, changes the graph from sample to sample; "
                "write it branch-free (relu, maximum, labels as inputs) or use the Value graph "
                "(fit(..., engine='values'))"
            )
    tape = Tape(first, names)
    _check_replay(tape, recordings, np.stack(rows_), rtol)
    return tape


def _check_replay(tape: Tape, recordings: list[_Recording], X: np.ndarray, rtol: float) -> None:
    """Replay every slot on all examples at once and compare with each recording's floats."""
    prog = tape._prog
    env = _Env(len(X), prog.n_slots)
    pv = np.array([p.data for p in tape.params], dtype=np.float64)
    env.param_values = pv
    env.blocks[-1] = X
    for i in range(tape.n_inputs):
        env.vals[i] = X[:, i]
    for s in tape._scalar_params:
        env.vals[s] = pv[s - tape.n_inputs]
    with np.errstate(all="ignore"):
        for step in tape.steps:
            step.forward(env, prog)
    data = np.array([rec.data for rec in recordings])  # (examples, slots)
    # Each value is compared relative to the largest magnitude on its way from the inputs:
    # a sum in another order (a fused layer's matrix product) differs by the rounding of its
    # terms, and that difference travels on through the rows after it.
    with np.errstate(invalid="ignore"):
        scales = np.where(np.isnan(data), 0.0, np.abs(data))
    for row in tape.rows:
        s = row.out
        got = np.broadcast_to(env.vals[s], (len(X),))
        want = data[:, s]
        slots = [a for a in row.args if type(a) is int]
        if slots:
            scales[:, s] = np.maximum(scales[:, s], scales[:, slots].max(axis=1))
        scale = scales[:, s]
        same = (got == want) | (np.isnan(got) & np.isnan(want))
        close = np.abs(got - want) <= rtol * scale + 1e-300
        if not np.all(same | close):
            k = int(np.argmax(~(same | close)))
            text = _row_text(row, tape.n_inputs, len(tape.params), prog.names)
            raise ValueError(
                f"tape.record: the replay of row {text!r} "
                f"gives {float(got[k])!r} on example {k}, its recording {float(want[k])!r}: "
                f"the array form of {row.op.name!r} disagrees with its float rule"
            )
