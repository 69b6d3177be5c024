"""The printed report: the timing table, W4's memory table, notes, checks and targets."""

from __future__ import annotations

from typing import Any

PHASES = (("build", "forward"), ("backward",), ("step",), ("total",), ("free",))


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:,.1f}" if ms >= 1 else f"{ms:.3f}"


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}x"


def _rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / 1e6:,.2f}M" if x >= 1e6 else f"{x / 1e3:,.0f}k"


def _phase_ratios(row: dict[str, Any]) -> str:
    """Per-phase ratios against micrograd, e.g. "2.44 / 0.81" (build or forward / backward)."""
    by_phase = row.get("vs_micrograd_phases")
    if not by_phase:
        return "-"
    first = by_phase.get("build", by_phase.get("forward"))
    parts = [f"{x:.2f}" if x is not None else "-" for x in (first, by_phase.get("backward"))]
    return " / ".join(parts)


def _table(header: list[str], lines: list[list[str]]) -> str:
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    out = [
        "  ".join(
            h.ljust(w) if i < 3 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))
        )
    ]
    out.append("  ".join("-" * w for w in widths))
    for line in lines:
        out.append(
            "  ".join(
                c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))
            )
        )
    return "\n".join(out)


def render(
    info: dict[str, Any],
    args: Any,
    results: list[Any],
    rows: list[dict[str, Any]],
    checks: list[dict[str, Any]],
    targets: list[dict[str, Any]],
) -> str:
    """Everything the command prints on stdout, as one string."""
    parts = [
        f"chainrule benchmarks  {info['date_utc']}  commit {info.get('commit') or '?'}",
        f"machine: {info['cpu']}, {info['nproc']} cores; {info['implementation']} "
        f"{info['python']}; micrograd {info.get('micrograd')}",
        f"sizes: {args.size}; rounds: {args.rounds} (medians; ratios are medians of per-round "
        "ratios)",
        f"load average (1, 5, 15 min) at start {info.get('load_average_start')}, "
        f"at end {info.get('load_average_end')}",
        "",
        "times in ms; 'x micrograd' = micrograd's total / this engine's (higher is faster), "
        "'fwd / bwd' the same for build/forward and backward;",
        "'x floor' = this engine's time / the float floor's (BC, DIGITS: numpy's); free = "
        "dropping the graph + gc.collect(), not in total;",
        "'x values' = chainrule's Value graphs' total / this engine's; 'x torch time' = this "
        "engine's time / torch's (float64, one thread)",
        "",
    ]
    labels = {r.case.id: r.case.describe(args.size) for r in results}
    timing_lines = []
    for row in rows:
        if "phases" not in row:
            continue
        ph = row["phases"]
        first = ph.get("build", ph.get("forward"))
        timing_lines.append(
            [
                row["case"],
                labels[row["case"]],
                row["engine"],
                _ms(first),
                _ms(ph.get("backward")),
                _ms(ph.get("step")),
                _ms(ph["total"]),
                _ms(ph.get("free")),
                f"{row['nodes']:,}" if row.get("nodes") else "-",
                _rate(row.get("nodes_per_second")),
                _ratio(row.get("vs_micrograd")),
                _phase_ratios(row),
                _ratio(1 / row["vs_floor"]) if row.get("vs_floor") else "-",
                _ratio(row.get("vs_values")),
                _ratio(1 / row["vs_torch"]) if row.get("vs_torch") else "-",
            ]
        )
    if timing_lines:
        header = [
            "case",
            "workload",
            "engine",
            "build/fwd",
            "backward",
            "step",
            "total",
            "free",
            "nodes",
            "nodes/s",
            "x micrograd",
            "fwd / bwd",
            "x floor",
            "x values",
            "x torch time",
        ]
        parts.append(_table(header, timing_lines))
        parts.append("")
    memory_lines = []
    for row in rows:
        if "memory" not in row:
            continue
        m = row["memory"]
        memory_lines.append(
            [
                row["case"],
                labels[row["case"]],
                row["engine"],
                f"{row['nodes']:,}",
                f"{m['bytes_per_node']:,.0f}",
                f"{m['bytes_per_node_with_backward']:,.0f}",
                f"{m['rss_bytes_per_node']:,.0f}",
                _ratio(row.get("vs_micrograd")),
            ]
        )
    if memory_lines:
        header = [
            "case",
            "workload",
            "engine",
            "nodes",
            "B/node",
            "B/node +backward",
            "RSS B/node",
            "x micrograd",
        ]
        parts.append("memory (tracemalloc peak of the build / nodes; RSS growth / nodes):")
        parts.append(_table(header, memory_lines))
        parts.append("")
    for r in results:
        if r.skipped:
            parts.append(f"{r.case.id} skipped: {r.skipped}")
        for note in sorted(set(r.notes)):
            parts.append(f"{r.case.id} note: {note}")
    parts.append("")
    parts.append("checks:")
    for c in checks:
        status = "OK  " if c["ok"] else "FAIL"
        parts.append(f"  {status} {c['case']:<6} {c['engine']:<10} {c['name']}: {c['detail']}")
    failed = sum(not c["ok"] for c in checks)
    parts.append(f"  {len(checks) - failed} OK, {failed} FAIL")
    parts.append("")
    parts.append("targets (the speed goals; chainrule's figures in this run):")
    for t in targets:
        parts.append(f"  {t['target']:<55} {_measured(t):>10}  {t['status']}")
    return "\n".join(parts)


def markdown(payload: dict[str, Any]) -> str:
    """The figures of a run (the `--json` payload) as Markdown, for benchmarks/README.md."""
    info = payload["machine"]
    settings = payload["settings"]
    labels = {c["id"]: c["label"] for c in payload["cases"]}
    lines = [
        f"Recorded {info['date_utc']} at commit `{info.get('commit')}`: {info['cpu']}, "
        f"`nproc` = {info['nproc']}, {info['implementation']} {info['python']}, micrograd "
        f"{info.get('micrograd')}; sizes `{settings['size']}`, {settings['rounds']} rounds; "
        f"load average (1, 5, 15 min) {info.get('load_average_start')} at the start, "
        f"{info.get('load_average_end')} at the end.",
        "",
        "| case | workload | engine | build/fwd ms | backward ms | step ms | total ms | free ms "
        "| nodes | nodes/s | x micrograd | fwd / bwd x micrograd | x floor | x values "
        "| x torch time |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in payload["rows"]:
        if "phases" not in row:
            continue
        ph = row["phases"]
        cells = [
            row["case"],
            labels[row["case"]],
            row["engine"],
            _ms(ph.get("build", ph.get("forward"))),
            _ms(ph.get("backward")),
            _ms(ph.get("step")),
            _ms(ph["total"]),
            _ms(ph.get("free")),
            f"{row['nodes']:,}" if row.get("nodes") else "-",
            _rate(row.get("nodes_per_second")),
            _ratio(row.get("vs_micrograd")),
            _phase_ratios(row),
            _ratio(1 / row["vs_floor"]) if row.get("vs_floor") else "-",
            _ratio(row.get("vs_values")),
            _ratio(1 / row["vs_torch"]) if row.get("vs_torch") else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    memory = [r for r in payload["rows"] if "memory" in r]
    if memory:
        lines += [
            "",
            "| case | engine | nodes | bytes/node (tracemalloc) | with backward | RSS bytes/node "
            "| x micrograd |",
            "|---|---|--:|--:|--:|--:|--:|",
        ]
        for row in memory:
            m = row["memory"]
            lines.append(
                f"| {row['case']} | {row['engine']} | {row['nodes']:,} | "
                f"{m['bytes_per_node']:,.0f} | {m['bytes_per_node_with_backward']:,.0f} | "
                f"{m['rss_bytes_per_node']:,.0f} | {_ratio(row.get('vs_micrograd'))} |"
            )
    notes = [f"{c['id']}: {n}" for c in payload["cases"] for n in c["notes"]] + [
        f"{c['id']} skipped: {c['skipped']}" for c in payload["cases"] if c["skipped"]
    ]
    if notes:
        lines.append("")
        lines += [f"- {n}" for n in notes]
    failed = sum(not c["ok"] for c in payload["checks"])
    lines += ["", f"Checks: {len(payload['checks']) - failed} OK, {failed} FAIL.", ""]
    lines += ["| target | measured (chainrule) | status |", "|---|--:|---|"]
    for t in payload["targets"]:
        lines.append(f"| {t['target']} | {_measured(t)} | {t['status']} |")
    return "\n".join(lines) + "\n"


def _measured(target: dict[str, Any]) -> str:
    """A target's measured figure in its unit: bytes, seconds, or a ratio to micrograd."""
    m = target["measured"]
    if m is None:
        return "-"
    if "bytes" in target["target"]:
        return f"{m:,.0f} B"
    if "< 3 s" in target["target"]:
        return f"{m:,.2f} s"
    if "torch" in target["target"]:
        return f"{m:,.2f}x torch's time"
    return f"{m:,.2f}x"
