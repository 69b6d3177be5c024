"""The child process: runs one engine's cases on request and answers in JSON.

`python -m benchmarks.worker ENGINE` reads one JSON request per line on stdin and writes one
JSON answer per line on stdout; anything else the code prints goes to stderr. The parent
(`run.py`) keeps one such process per engine, so garbage one engine leaves behind (micrograd's
reference cycles wait for the cyclic collector) never slows another engine's rounds.

A request: {"case": "W2", "size": {"n": 50000}, "first": true}. `first` asks for the
node count and the once-only notes (micrograd's RecursionError at the default limit).
An answer: {"status": "ok", "phases": {...}, "outputs": {...}, "checks": [[name, ok, detail]],
"nodes": int or null, "notes": [...]}, or {"status": "skipped", "reason": ...}, or
{"status": "error", "error": traceback}.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
import traceback
import tracemalloc
from collections.abc import Callable
from typing import Any

from benchmarks import data, workloads
from benchmarks.engines import floor, graph
from benchmarks.engines.chainrule_engine import Skipped

#: Recursion limit and thread stack for micrograd's recursive topological sort (W1, W5).
DEEP_RECURSION_LIMIT = 1_000_000
DEEP_STACK_BYTES = 512 * 1024 * 1024


def load_engine(name: str) -> graph.GraphEngine | None:
    """The adapter for a graph engine; None for the floors and torch.

    Raises:
        ImportError: the engine's package is not installed (torch, micrograd).
    """
    if name in ("chainrule", "values"):
        from benchmarks.engines import chainrule_engine

        return chainrule_engine.engine()
    if name == "micrograd":
        from benchmarks.engines import micrograd_engine

        return micrograd_engine.engine()
    if name == "torch":
        import torch  # noqa: F401  (only to say whether it is installed)

        return None
    if name in ("floor", "numpy"):
        return None
    raise ValueError(f"unknown engine {name!r}; the engines are {', '.join(workloads.ENGINES)}")


def in_deep_thread(fn: Callable[[], Any], recursion_limit: int | None) -> Any:
    """Run `fn` in a thread with a 512 MiB stack, at `recursion_limit` if given.

    micrograd's topological sort recurses once per node: a 200,000-node chain needs a raised
    limit, and a big stack so that the deep recursion cannot overflow the C stack.
    """
    result: dict[str, Any] = {}

    def target() -> None:
        old = sys.getrecursionlimit()
        if recursion_limit is not None:
            sys.setrecursionlimit(recursion_limit)
        try:
            result["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            result["error"] = exc
        finally:
            sys.setrecursionlimit(old)

    previous = threading.stack_size(DEEP_STACK_BYTES)
    try:
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(previous)
    if "error" in result:
        raise result["error"]
    return result["value"]


#: Cases whose graphs are deeper than Python's default recursion limit allows micrograd:
#: W1's chain, and W5's built-in `sum` over 2,222 terms (a chain of 2,222 additions).
DEFAULT_LIMIT_PROBES = ("W1", "W5")


def default_limit_note(name: str, eng: graph.GraphEngine, case: str, size: dict[str, int]) -> str:
    """Run `case` once, untimed, at Python's default recursion limit; say what happened."""
    limit = sys.getrecursionlimit()
    try:
        run_case(name, eng, case, size)
    except RecursionError:
        note = f"{name} raises RecursionError at the default recursion limit ({limit})"
    else:
        note = f"{name} completes at the default recursion limit ({limit})"
    gc.collect()  # a graph with reference cycles: free it now, not in a timed round
    return note


def run_case(
    name: str, eng: graph.GraphEngine | None, case: str, size: dict[str, int]
) -> graph.Run:
    """One timed run of `case` on this engine, in the calling thread."""
    if case in ("W1", "CHAIN"):
        n = size["n"] if case == "W1" else size["nodes"] // 2
        return floor.chain(n) if eng is None else graph.chain(eng, n)
    if case == "W2":
        return floor.wide(size["n"]) if eng is None else graph.wide(eng, size["n"])
    if case in ("W3.1", "W3.10"):
        if eng is None:
            return floor.mlp(size["points"], size["steps"])
        return graph.mlp(eng, size["points"], size["steps"])
    if case == "W5":
        return (
            floor.transcendental(size["n"]) if eng is None else graph.transcendental(eng, size["n"])
        )
    if case in ("W6", "BC", "DIGITS"):
        from benchmarks.engines import training

        if case == "W6" and name == "floor":
            return floor.mlp(size["points"], size["steps"])
        if case == "W6" and name == "micrograd":
            from benchmarks.engines import micrograd_engine

            return micrograd_engine.train_with_nn(size["points"], size["steps"])
        result = training.run(name, case, size)
        if name == "chainrule":
            # The tape's first-step gradients against the Value graphs' (untimed).
            result.outputs["grad0_values"] = _value_graph_gradients(case, size)
        return result
    raise ValueError(f"unknown case {case!r}")


_VALUE_GRADIENTS: dict[str, list[float]] = {}


def _value_graph_gradients(case: str, size: dict[str, int]) -> list[float]:
    from benchmarks.engines import training

    key = json.dumps([case, size], sort_keys=True)
    if key not in _VALUE_GRADIENTS:
        _VALUE_GRADIENTS[key] = training.value_graph_gradients(case, size)
    return _VALUE_GRADIENTS[key]


def rss_bytes() -> int:
    """Resident set size now, from /proc/self/statm (Linux); 0 where it is unavailable."""
    try:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def measure_memory(eng: graph.GraphEngine | None, n: int) -> dict[str, Any]:
    """W4: bytes per node of W2's graph, leaves made beforehand and not counted.

    Two builds: one watched by RSS (fresh process, so freed memory is not reused), one by
    tracemalloc (exact Python allocations; its own bookkeeping is not counted in its peak).
    Both divide by the nodes the build made.
    """
    if eng is None:
        a_f, b_f = data.vectors(n)

        def build() -> Any:
            return floor.wide_forward(a_f, b_f)

        def finish(built: Any) -> dict[str, Any]:
            grad_a, grad_b = floor.wide_backward(built, a_f, b_f)
            return {"value": built[-1][0], "grad_a": grad_a, "grad_b": grad_b}

        def count(built: Any) -> int:
            return 2 * n - 1
    else:
        a, b = graph.wide_leaves(eng, n)

        def build() -> Any:
            return graph.wide_build(a, b)

        def finish(built: Any) -> dict[str, Any]:
            built.backward()
            return graph.wide_outputs(built, a, b)

        def count(built: Any) -> int:
            return graph.count_nodes(eng, [built], a + b)

    gc.collect()
    before = rss_bytes()
    built = build()
    rss_growth = rss_bytes() - before
    nodes = count(built)
    del built
    gc.collect()

    tracemalloc.start()
    built = build()
    _, peak_build = tracemalloc.get_traced_memory()
    outputs = finish(built)
    _, peak_backward = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "nodes": nodes,
        "outputs": outputs,
        "memory": {
            "bytes_per_node": peak_build / nodes,
            "bytes_per_node_with_backward": peak_backward / nodes,
            "rss_bytes_per_node": rss_growth / nodes,
        },
    }


def handle(name: str, eng: graph.GraphEngine | None, request: dict[str, Any]) -> dict[str, Any]:
    """Answer one request (see the module docstring)."""
    case, size, first = request["case"], request["size"], request.get("first", False)
    notes: list[str] = []
    if case == "W4":
        measured = measure_memory(eng, size["n"])
        outputs = measured["outputs"]
        answer = {"phases": {}, "nodes": measured["nodes"], "memory": measured["memory"]}
    else:
        deep = eng is not None and eng.raise_recursion_limit
        if first and deep and case in DEFAULT_LIMIT_PROBES:
            assert eng is not None
            notes.append(default_limit_note(name, eng, case, size))
        if first and case in ("BC", "DIGITS"):
            from benchmarks.engines import training

            note = training.extrapolation_note(case, name, size)
            if note:
                notes.append(note)
        gc.collect()  # start every round from a clean heap
        # Every engine runs in the same kind of thread; only micrograd's limit is raised.
        limit = DEEP_RECURSION_LIMIT if deep else None
        run = in_deep_thread(lambda: run_case(name, eng, case, size), limit)
        phases = dict(run.phases)
        phases["total"] = sum(run.phases.values())
        nodes = run.nodes
        if first and nodes is None and eng is not None:
            nodes = graph.count_nodes(eng, run.roots, run.inputs) * run.graphs
        outputs = run.outputs
        # Freeing the graph: reference counting for an acyclic graph, the cyclic collector
        # for one with reference cycles. Reported, not part of the total.
        t0 = time.perf_counter()
        del run
        gc.collect()
        phases["free"] = time.perf_counter() - t0
        answer = {"phases": phases, "nodes": nodes}
    checks = workloads.analytic_checks(case, size, outputs)
    for key in ("grad0_values", "grad0_numpy"):
        outputs.pop(key, None)  # checked here; not an output to compare across engines
    answer.update(
        status="ok",
        outputs=workloads.trim(outputs),
        checks=[list(c) for c in checks],
        notes=notes,
    )
    return answer


def main(argv: list[str] | None = None) -> int:
    """Serve requests for one engine until stdin closes."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m benchmarks.worker ENGINE", file=sys.stderr)
        return 2
    name = args[0]
    protocol = sys.stdout
    sys.stdout = sys.stderr  # only answers go to the protocol stream
    try:
        eng = load_engine(name)
    except ImportError as exc:
        protocol.write(json.dumps({"status": "unavailable", "reason": str(exc)}) + "\n")
        protocol.flush()
        return 1
    protocol.write(json.dumps({"status": "ready", "engine": name}) + "\n")
    protocol.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            answer = handle(name, eng, request)
        except Skipped as exc:
            answer = {"status": "skipped", "reason": str(exc)}
        except Exception:
            answer = {"status": "error", "error": traceback.format_exc()}
        protocol.write(json.dumps(answer) + "\n")
        protocol.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
