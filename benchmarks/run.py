"""The command: `python -m benchmarks [--quick] [--rounds N] [--only W2,W3] [--skip W6] [--json F]`.

One child process per engine (`worker.py`): chainrule, micrograd 0.1.0 and the float floor.
Rounds are interleaved: round 1 runs a case on A, B, C, round 2 on B, C, A, and so on, so a
slow drift of the machine (another process, thermal throttling) spreads over all engines
instead of landing on one. W4 (memory) runs once per engine in a fresh process, so memory an
earlier case freed cannot hide its growth.

Reported per case and engine: the median seconds of each phase, nodes per second, and the
ratio against micrograd taken round by round (micrograd's total / the engine's total in the
same round; the median of those). Every result is checked (see `workloads.py`); a failed
check prints FAIL and the command exits with status 1.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograd.files import atomic_write
from benchmarks import report, workloads
from benchmarks.workloads import ENGINES, REQUIRED_ENGINES, Case

ROOT = Path(__file__).resolve().parent.parent


class WorkerError(RuntimeError):
    """A worker process died or answered something unreadable."""


class Worker:
    """One engine's child process, spoken to in JSON lines."""

    def __init__(self, engine: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.engine = engine
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", engine],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        hello = self._read()
        self.available = hello.get("status") == "ready"
        self.reason = hello.get("reason", "")

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise WorkerError(f"{self.engine} worker exited with status {code} (see stderr above)")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def request(self, case: str, size: dict[str, int], first: bool) -> dict[str, Any]:
        """Run one round of `case` and return the worker's answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"case": case, "size": size, "first": first}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        """Close stdin (the worker then exits) and wait for it."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


@dataclass
class CaseResult:
    """All rounds of one case: answers per engine, in round order."""

    case: Case
    size: dict[str, int]
    rounds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    skipped: str = ""
    notes: list[str] = field(default_factory=list)


def engine_order(round_index: int, engines: tuple[str, ...]) -> list[str]:
    """Round r starts with engine r mod len(engines): A B C, then B C A, then C A B."""
    k = round_index % len(engines)
    return list(engines[k:] + engines[:k])


def run_timed_case(
    case: Case, size: dict[str, int], rounds: int, workers: dict[str, Worker], progress: bool
) -> CaseResult:
    """Interleaved rounds of one case on each of its engines."""
    engines = tuple(e for e in case.engines if workers[e].available)
    result = CaseResult(case, size, {e: [] for e in engines})
    result.notes.extend(
        f"{e} not available: {workers[e].reason}" for e in case.engines if e not in engines
    )
    if case.rounds is not None and case.rounds < rounds:
        result.notes.append(f"{case.rounds} rounds (of {rounds}): its slow engines take minutes")
        rounds = case.rounds
    for r in range(rounds):
        for engine in engine_order(r, engines):
            if progress:
                print(f"  {case.id} round {r + 1}/{rounds}: {engine}", file=sys.stderr, flush=True)
            answer = workers[engine].request(case.id, size, first=r == 0)
            if answer["status"] == "skipped":
                result.skipped = f"{engine}: {answer['reason']}"
                return result
            result.rounds[engine].append(answer)
            result.notes.extend(answer.get("notes", []))
    return result


def run_memory_case(case: Case, size: dict[str, int], progress: bool) -> CaseResult:
    """W4: one fresh process per engine, one measurement each."""
    result = CaseResult(case, size, {e: [] for e in case.engines})
    for engine in case.engines:
        if progress:
            print(f"  {case.id}: {engine} (fresh process)", file=sys.stderr, flush=True)
        worker = Worker(engine)
        try:
            result.rounds[engine].append(worker.request(case.id, size, first=True))
        finally:
            worker.close()
    return result


# -----------------------------------------------------------------------------------------
# Checks across engines, summaries
# -----------------------------------------------------------------------------------------


def compare(got: Any, want: Any, rel_tol: float, abs_tol: float) -> tuple[bool, str]:
    """Floats or equal-length lists of floats, elementwise math.isclose."""
    got_list = got if isinstance(got, list) else [got]
    want_list = want if isinstance(want, list) else [want]
    if len(got_list) != len(want_list):
        return False, f"length {len(got_list)} vs the floor's {len(want_list)}"
    worst, where = 0.0, -1
    for i, (g, w) in enumerate(zip(got_list, want_list)):
        if not math.isclose(g, w, rel_tol=rel_tol, abs_tol=abs_tol):
            err = abs(g - w) / max(abs(w), abs_tol)
            if where < 0 or not err <= worst:
                worst, where = err, i
    if where >= 0:
        return False, (
            f"item {where}: {got_list[where]!r} vs the floor's {want_list[where]!r} "
            f"(tol rel {rel_tol:.0e}, abs {abs_tol:.0e})"
        )
    return True, f"{len(got_list)} value(s) within rel {rel_tol:.0e}, abs {abs_tol:.0e}"


def case_checks(result: CaseResult) -> list[dict[str, Any]]:
    """Every check of a case: each engine's analytic checks (every round, reported once)
    and each engine's outputs against the floor's (every round)."""
    checks: list[dict[str, Any]] = []
    case = result.case
    reference_rounds = result.rounds.get(case.reference, [])
    reference = reference_rounds[0]["outputs"] if reference_rounds else None
    for engine, answers in result.rounds.items():
        for index, answer in enumerate(answers):
            if answer["status"] != "ok":
                checks.append(
                    {
                        "case": case.id,
                        "engine": engine,
                        "name": f"round {index + 1} ran",
                        "ok": False,
                        "detail": answer.get("error", answer.get("reason", "")),
                    }
                )
                continue
            for name, ok, detail in answer["checks"]:
                if index == 0 or not ok:
                    label = name if index == 0 else f"{name} (round {index + 1})"
                    checks.append(
                        {
                            "case": case.id,
                            "engine": engine,
                            "name": label,
                            "ok": ok,
                            "detail": detail,
                        }
                    )
            if reference is None or engine == case.reference:
                continue
            outputs = answer["outputs"]
            for key, got in outputs.items():
                if key not in reference:
                    continue
                want = reference[key]
                if _partial(case, engine, result.size):
                    # A run of fewer steps (or samples): its first losses and gradients can
                    # be compared, its final parameters cannot.
                    if key == "params" or _fewer_samples(case, engine, result.size):
                        continue
                    if key == "loss":
                        want = want[: len(got)]
                ok, detail = compare(got, want, case.rel_tol, case.abs_tol)
                if index == 0 or not ok:
                    label = f"{key} = {case.reference}'s" + (
                        "" if index == 0 else f" (round {index + 1})"
                    )
                    checks.append(
                        {
                            "case": case.id,
                            "engine": engine,
                            "name": label,
                            "ok": ok,
                            "detail": detail,
                        }
                    )
    return checks


def _partial(case: Case, engine: str, size: dict[str, int]) -> bool:
    from benchmarks import data

    return data.partial_steps(case.id, engine, size.get("steps", 0)) < size.get(
        "steps", 0
    ) or _fewer_samples(case, engine, size)


def _fewer_samples(case: Case, engine: str, size: dict[str, int]) -> bool:
    from benchmarks import data

    n = size.get("samples", size.get("points", 0))
    return data.partial_samples(case.id, engine, n) < n


def summarise(result: CaseResult) -> list[dict[str, Any]]:
    """One row per engine: median phases, nodes, nodes/s, ratios against micrograd and floor."""
    rows: list[dict[str, Any]] = []
    if result.skipped:
        return rows
    ok_rounds = {
        e: [a for a in answers if a["status"] == "ok"] for e, answers in result.rounds.items()
    }
    for engine, answers in ok_rounds.items():
        if not answers:
            continue
        row: dict[str, Any] = {"case": result.case.id, "engine": engine, "rounds": len(answers)}
        row["nodes"] = answers[0].get("nodes")
        if result.case.memory:
            row["memory"] = answers[0]["memory"]
            mine = answers[0]["memory"]["bytes_per_node"]
            theirs = ok_rounds.get("micrograd")
            if theirs:
                row["vs_micrograd"] = theirs[0]["memory"]["bytes_per_node"] / mine
            rows.append(row)
            continue
        phase_names = answers[0]["phases"].keys()
        row["phases"] = {p: statistics.median(a["phases"][p] for a in answers) for p in phase_names}
        total = row["phases"]["total"]
        row["nodes_per_second"] = row["nodes"] / total if row["nodes"] and total > 0 else None
        comparisons = (
            ("micrograd", "vs_micrograd"),
            (result.case.reference, "vs_floor"),
            ("values", "vs_values"),
            ("torch", "vs_torch"),
        )
        for other, key in comparisons:
            theirs = ok_rounds.get(other)
            if not theirs or other == engine:
                continue
            # Round by round: the same round's totals, then the median of the ratios.
            per_round = [
                t["phases"]["total"] / a["phases"]["total"] for a, t in zip(answers, theirs)
            ]
            row[key + "_per_round"] = per_round
            row[key] = statistics.median(per_round)
        if "micrograd" in ok_rounds and engine != "micrograd":
            # Per phase too (JSON only); a phase too short to time is left out.
            by_phase = {}
            for p in phase_names:
                ratios = [
                    t["phases"][p] / a["phases"][p]
                    for a, t in zip(answers, ok_rounds["micrograd"])
                    if a["phases"][p] > 0
                ]
                if ratios:
                    by_phase[p] = statistics.median(ratios)
            row["vs_micrograd_phases"] = by_phase
        rows.append(row)
    return rows


def evaluate_targets(
    rows: list[dict[str, Any]], preset: str, skipped: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The issue's targets against this run's chainrule figures."""
    by_case = {r["case"]: r for r in rows if r["engine"] == "chainrule"}
    skipped = skipped or {}
    out = []
    for target in workloads.TARGETS:
        row = by_case.get(target.case)
        status = f"skipped ({skipped[target.case]})" if target.case in skipped else "not run"
        entry: dict[str, Any] = {"target": target.text, "measured": None, "status": status}
        if row is not None:
            if target.kind == "ratio":
                measured = row.get("vs_micrograd")
                met = measured is not None and measured >= target.value
            elif target.kind == "vs_values":
                measured = row.get("vs_values")
                met = measured is not None and measured >= target.value
            elif target.kind == "torch_at_most":
                theirs = row.get("vs_torch")
                measured = None if not theirs else 1.0 / theirs
                met = measured is not None and measured <= target.value
            elif target.kind == "bytes":
                measured = row["memory"]["bytes_per_node"]
                met = measured <= target.value
            else:
                measured = row["phases"]["total"]
                met = measured < target.value
            entry["measured"] = measured
            entry["status"] = "met" if met else "not met"
            if preset != "full":
                entry["status"] = f"not judged: {preset} sizes (targets are for full sizes)"
        out.append(entry)
    return out


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none): other processes
    competing for the cores make absolute times noisy; interleaved ratios suffer less."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict[str, Any]:
    """Where and when: CPU, core count, Python, micrograd's version, the commit."""
    info: dict[str, Any] = {
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": platform.processor() or "",
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        info["micrograd"] = version("micrograd")
    except Exception:
        info["micrograd"] = None
    try:
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        info["commit"] = None
    return info


# -----------------------------------------------------------------------------------------
# The command
# -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="chainrule against micrograd 0.1.0 and the pure-Python float floor.",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds per case and engine (default 5; 2 with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes and 2 rounds: a smoke run well under a minute",
    )
    parser.add_argument(
        "--size",
        choices=workloads.PRESETS,
        default=None,
        help="size preset (default full; quick with --quick; tiny for tests)",
    )
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated case ids or prefixes, e.g. W2,W3 (W3 = W3.1, W3.10)",
    )
    parser.add_argument(
        "--skip",
        default=None,
        help="comma-separated case ids or prefixes to leave out, e.g. W6 (it takes minutes)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write all results here")
    parser.add_argument(
        "--markdown", type=Path, default=None, help="also write the figures as a Markdown table"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if args.size is None:
        args.size = "quick" if args.quick else "full"
    if args.rounds is None:
        args.rounds = 2 if args.quick or args.size != "full" else 5
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    try:
        args.cases = workloads.select(args.only)
        if args.skip:
            skipped = workloads.select(args.skip)
            args.cases = [c for c in args.cases if c not in skipped]
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the selected cases, print the table and the checks; 0 when every check is OK."""
    args = parse_args(argv)
    progress = not args.quiet
    load_at_start = load_average()
    results: list[CaseResult] = []
    timed = [c for c in args.cases if not c.memory]
    workers: dict[str, Worker] = {}
    try:
        if timed:
            for engine in ENGINES:
                workers[engine] = Worker(engine)
            missing = [
                w for w in workers.values() if not w.available and w.engine in REQUIRED_ENGINES
            ]
            if missing:
                for w in missing:
                    print(f"{w.engine}: not available: {w.reason}", file=sys.stderr)
                print("install the peer with: pip install -e '.[bench]'", file=sys.stderr)
                return 2
        for case in args.cases:
            size = case.sizes[args.size]
            if case.memory:
                results.append(run_memory_case(case, size, progress))
            else:
                results.append(run_timed_case(case, size, args.rounds, workers, progress))
    finally:
        for w in workers.values():
            w.close()

    rows = [row for r in results for row in summarise(r)]
    checks = [c for r in results for c in case_checks(r)]
    targets = evaluate_targets(
        rows, args.size, {r.case.id: r.skipped for r in results if r.skipped}
    )
    info = machine_info()
    info["load_average_start"] = load_at_start
    info["load_average_end"] = load_average()
    print(report.render(info, args, results, rows, checks, targets))
    payload = {
        "machine": info,
        "settings": {
            "rounds": args.rounds,
            "size": args.size,
            "cases": [c.id for c in args.cases],
        },
        "cases": [
            {
                "id": r.case.id,
                "label": r.case.describe(args.size),
                "size": r.size,
                "skipped": r.skipped,
                "notes": sorted(set(r.notes)),
            }
            for r in results
        ],
        "rows": rows,
        "checks": checks,
        "targets": targets,
    }
    # Through the project's one atomic-write helper: an interrupted run keeps the old files.
    if args.json is not None:
        text = json.dumps(payload, indent=1) + "\n"
        atomic_write(args.json, lambda f: f.write(text.encode("utf-8")))
    if args.markdown is not None:
        markdown = report.markdown(payload)
        atomic_write(args.markdown, lambda f: f.write(markdown.encode("utf-8")))
    failed = [c for c in checks if not c["ok"]]
    return 1 if failed else 0
