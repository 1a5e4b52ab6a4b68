"""The results as a Markdown table (printed by ``make bench``; ``benchmarks.docs_page`` puts it in
docs/benchmarks.md)."""

from __future__ import annotations

from typing import Any

from benchmarks.contention import TARGET_WORST_GET_MS


def _n(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if (isinstance(value, float) and value >= 100) or isinstance(value, int):
        return f"{value:,.0f}{unit}"
    return f"{value:,.1f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def _r(value: Any) -> str:
    return "" if value is None else f"{value:.2f}"


def _met(entry: dict[str, Any]) -> str:
    if "met" not in entry:
        return ""
    return "yes" if entry["met"] else "**no**"


def _problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    if "error" in entry:
        return "error: " + str(entry["error"]).strip().splitlines()[-1]
    if "skipped" in entry:
        return "skipped: " + str(entry["skipped"])
    return None


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, ...]] = []
    m = results.get("machine", {})
    dm = results.get("dispatch_memory")
    if dm is not None:
        if (p := _problem(dm)) is not None:
            rows.append(("dispatch_memory", p, "", "", "", ""))
        else:
            anchor = f"transitions {_n(dm['transitions_eps'])} ev/s"
            if dm.get("python_statemachine_eps"):
                anchor += f"; python-statemachine {_n(dm['python_statemachine_eps'])} ev/s"
            rows.append(("dispatch_memory", f"{_n(dm['regflow_eps'])} ev/s", anchor,
                         f"{dm['ratio']:.2f}", _r(dm.get("ratio_cpu")), "≥ 0.5", _met(dm)))
    for key, store in (("step_sqlite", "SQLite"), ("step_postgresql", "PostgreSQL")):
        st = results.get(key)
        if st is None:
            continue
        if (p := _problem(st)) is not None:
            rows.append((key, p, "", "", "", ""))
            continue
        rows.append((key, f"{_n(st['regflow_eps'])} ev/s",
                     f"raw-SQL floor ({store}, regflow's {len(st['statements'])} statements, "
                     f"prepared) {_n(st['floor_eps'])} tx/s", f"{st['ratio']:.2f}",
                     _r(st.get("ratio_cpu")), "≥ 0.5", _met(st)))
        pg = st.get("pgbench")
        if isinstance(pg, dict) and "tps" in pg:
            rows.append(("pgbench TPC-B, 1 client (anchor)", f"{_n(pg['tps'])} tx/s",
                         f"scale {pg['scale']}, {pg['seconds']} s; latency {pg['latency_ms']} ms",
                         "", "", "", ""))
    reg = results.get("registration")
    if reg is not None:
        if (p := _problem(reg)) is not None:
            rows.append(("registration", p, "", "", "", ""))
        for store in ("sqlite", "postgresql"):
            entry = reg.get(store)
            if entry is None:
                continue
            if (p := _problem(entry)) is not None:
                rows.append((f"registration ({store})", p, "", "", "", ""))
                continue
            for hasher in ("fast", "argon2"):
                run = entry[hasher]
                rows.append((f"registration ({store}, {hasher})", f"{_n(run['per_s'])} reg/s",
                             f"{run['count']} in {run['seconds']} s", "", "", "", ""))
    gr = results.get("growth")
    if gr is not None:
        if (p := _problem(gr)) is not None:
            rows.append(("growth", p, "", "", "", ""))
        else:
            big = f"{gr['sizes'][1] // 1000}k"
            for store in ("memory", "sqlite"):
                g = gr[store]
                mark = "≤ 1.2" if store == gr["ratio_of"] else "(≤ 1.2)"
                rows.append((
                    f"growth ({store}) send p50 / p99",
                    f"{big}: {_n(g[f'p50_us_{big}'])} / {_n(g[f'p99_us_{big}'])} µs",
                    f"1k: {_n(g['p50_us_1k'])} / {_n(g['p99_us_1k'])} µs",
                    f"{g['ratio']:.2f}", _r(g.get("ratio_cpu")), mark,
                    _met(gr) if store == gr["ratio_of"] else ""))
            for store in ("memory", "sqlite"):
                s = gr[store]["sweep"]
                rows.append((f"sweep ({store}) {s['due']} due",
                             f"{big}: {_n(s[f'ms_{big}'])} ms", f"1k: {_n(s['ms_1k'])} ms",
                             f"{s['ratio']:.2f}", "", "", ""))
    ht = results.get("http")
    if ht is not None:
        if (p := _problem(ht)) is not None:
            rows.append(("http (postgresql)", p, "", "", "", ""))
        else:
            check = "I1–I4 ok" if ht["invariants"]["ok"] else "I1–I4 FAILED"
            for hasher in ("fast", "argon2"):
                run = ht[hasher]
                rows.append((f"http ({run['clients']} clients, serve, {hasher})",
                             f"{_n(run['registrations_per_s'])} reg/s; p50/p95/p99 "
                             f"{_n(run['p50_ms'])}/{_n(run['p95_ms'])}/{_n(run['p99_ms'])} ms",
                             f"errors {run['errors']}; {run['registrations']} in {run['seconds']} s; "
                             + check, "", "", "0 errors", "yes" if run["errors"] == 0 else "**no**"))
            fl = ht["floor"]
            against = "" if ht.get("floor_ratio") is None else f"{ht['floor_ratio']:.3f}"
            rows.append(("http floor (constant JSON, same routes)",
                         f"{_n(fl['requests_per_s'])} req/s; p50/p99 {_n(fl['p50_ms'])}/"
                         f"{_n(fl['p99_ms'])} ms", f"regflow (fast) {_n(ht['fast']['requests_per_s'])} "
                         "req/s", against, "", "", ""))
    sc = results.get("scaling")
    if sc is not None:
        if (p := _problem(sc)) is not None:
            rows.append(("scaling (postgresql)", p, "", "", "", ""))
        else:
            check = "I1–I4 ok" if sc["invariants"]["ok"] else "I1–I4 FAILED"
            most = max(int(k) for k in sc["processes"])
            rows.append(("scaling (serve processes, fast)",
                         f"{most} procs {_n(sc[f'per_s_{most}'])} reg/s",
                         "; ".join(f"{k} proc{'s' if int(k) > 1 else ''} {_n(sc[f'per_s_{k}'])}"
                                   for k in sc["processes"] if int(k) != most) + "; errors "
                         f"{sc['errors']}; {check}"
                         + (f"; CPU ceiling {sc['ratio_ceiling']:.2f}×"
                            if sc.get("ratio_ceiling") else ""),
                         f"{sc['ratio']:.2f}", "", "≥ 1.6", _met(sc)))
    ct = results.get("contention")
    if ct is not None:
        if (p := _problem(ct)) is not None:
            rows.append(("contention", p, "", "", "", ""))
        for store in ("sqlite", "postgresql"):
            entry = ct.get(store)
            if entry is None:
                continue
            if (p := _problem(entry)) is not None:
                rows.append((f"contention ({store})", p, "", "", "", ""))
                continue
            loaded = entry["three_processes"]
            rows.append((
                f"contention ({store}, 3 procs) reader's get worst / p99",
                f"{_n(entry['worst_get_ms'])} / {_n(loaded['reader']['p99_ms'])} ms",
                f"alone: {_n(entry['worst_get_alone_ms'])} / {_n(entry['reader_alone']['p99_ms'])} ms; "
                f"writers' worst {_n(loaded['registrar']['worst_ms'])} / "
                f"{_n(loaded['guesser']['worst_ms'])} ms; errors {entry['errors_reaching_callers']}",
                "", "", f"≤ {TARGET_WORST_GET_MS:g} ms", "met" if entry["met"] else "NOT MET"))
    jr = results.get("journal_report")
    if jr is not None:
        if (p := _problem(jr)) is not None:
            rows.append(("journal_report", p, "", "", "", ""))
        generated = jr.get("generated", {})
        for store in ("sqlite", "postgresql"):
            entry = jr.get(store)
            if not isinstance(entry, dict) or "day_s" not in entry:
                continue
            rows.append((
                f"journal_report ({store}) one day / whole journal",
                f"{entry['day_s'] * 1000:,.0f} / {entry['whole_s'] * 1000:,.0f} ms",
                f"{_n(generated.get('rows', 0))} rows, {_n(generated.get('flows', 0))} flows, "
                f"{round(1 / entry['day_rows_share'])} days; CPU (this process) "
                f"{entry['day_cpu_s'] * 1000:,.0f} / {entry['whole_cpu_s'] * 1000:,.0f} ms",
                "", "", "", ""))
    og = results.get("oracle_gap")
    if og is not None:
        if (p := _problem(og)) is not None:
            rows.append(("oracle_gap", p, "", "", "", ""))
        else:
            before = og["before"]
            rows.append((
                "oracle_gap (reset, HTTP)",
                f"registered {og['registered']['median_ms']:.1f} / unregistered "
                f"{og['unregistered']['median_ms']:.1f} ms (median, {og['samples']} each); "
                f"gap {og['gap_ms']:+.1f} ms",
                f"before: {before['registered_median_ms']} / {before['unregistered_median_ms']} "
                f"ms, gap {before['gap_ms']:+.1f} ms", "", "", "", ""))
    mu = results.get("mutation")
    if mu is not None:
        if (p := _problem(mu)) is not None:
            rows.append(("mutation (built-in flows)", p, "", "", "", ""))
        else:
            sampled = f", every {mu['sample']}th" if mu.get("sample", 1) > 1 else ""
            low = mu["lowest_score"]
            rows.append((f"mutation ({len(mu['flows'])} built-in flows{sampled}, {mu['jobs']} jobs)",
                         f"{_n(mu['mutants'])} mutants in {mu['seconds']:.1f} s "
                         f"({mu['mutants_per_s']:.1f}/s)",
                         f"{mu['survived']} survived; lowest score {low['score']:.1f}% ({low['flow']})",
                         "", "", mu["target"], "" if mu.get("met") is None else _met(mu)))
    if "import_ms" in results:
        detail = results.get("import_detail", {})
        rows.append(("import_ms", f"{_n(results['import_ms'])} ms",
                     f"bare python {_n(detail.get('bare_python_ms'))} ms; engine ready "
                     f"{_n(detail.get('engine_ready_ms'))} ms", "", "", "≤ 150", _met(detail)))
    elif "import_detail" in results:
        rows.append(("import_ms", _problem(results["import_detail"]) or "", "", "", "", "", ""))

    header = ("benchmark", "regflow", "anchor", "ratio", "ratio per CPU s", "target", "met")
    rows = [row + ("",) * (len(header) - len(row)) for row in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if m:
        lines.append("")
        lines.append(f"{m.get('date')}: {m.get('nproc')} × {m.get('cpu')}, Python "
                     f"{m.get('python')}, SQLite {m.get('sqlite')}, PostgreSQL "
                     f"{m.get('postgresql') or '–'}")
    return "\n".join(lines)
