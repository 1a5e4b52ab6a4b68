"""docs/benchmarks.md, generated from ``benchmarks/results.json``.

    python -m benchmarks.docs_page [RESULTS] [PAGE]

The written parts say how each number is measured; every number comes from the results (a full
``make bench`` run rewrites the page), so none can go stale beside the table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.report import table

HERE = Path(__file__).parent
PAGE = HERE.parent / "docs" / "benchmarks.md"

INTRO = """\
# Benchmarks

`make bench` measures regflow against the thinnest code that does the same work (its *floors*)
and against the tools everyone knows, in one run, writes `benchmarks/results.json` and rewrites
this page from it: every number below comes from that run (the date is under the table).

```sh
make bench                                # installs .[test,bench], runs python -m benchmarks
.venv/bin/python -m benchmarks --quick    # a smoke test: short loops, small stores
.venv/bin/python -m benchmarks --only step_sqlite,import_ms --out /tmp/r.json
.venv/bin/python -m benchmarks --only http --merge   # redo one row of benchmarks/results.json
.venv/bin/python -m benchmarks.docs_page  # this page again from benchmarks/results.json
.venv/bin/python -m benchmarks.profile    # full cProfile tables → benchmarks/profiles/*.txt
```

## How it measures

- **A floor is the thinnest code doing the same work.** A ratio against anything slower
  flatters, so the persisted step is judged against regflow's *own* statements sent raw (see
  [step_sqlite and step_postgresql](#step_sqlite-and-step_postgresql)), the in-memory step
  against the bare `transitions` trigger, and the HTTP service against the same server
  answering a constant JSON.
- **Same run, in turns.** regflow and its floor run one after the other inside each round (who
  goes first rotates), each for a fixed time box; a ratio is the median of the per-round
  ratios, so a burst of load from elsewhere moves one round, not the result.
- **Per CPU second, beside.** Each round also counts calls per CPU second of the benchmark's
  own process (`ratio per CPU s`), which load from other processes barely moves. Where the two
  ratios agree, noise did not decide the number.
- **Raw numbers beside every ratio** in `benchmarks/results.json`, under stable keys
  (`step_sqlite.ratio`, `step_postgresql.ratio`, `dispatch_memory.ratio`, `http.errors`,
  `http.p99_ms`, `http.registrations_per_s`, `scaling.ratio`, `import_ms`).
"""


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) or (isinstance(value, float) and abs(value) >= 100):
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _pct(share: float) -> str:
    return f"{share * 100:.0f} %"


def _machine(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    packages = ", ".join(f"{k} {v}" for k, v in m.get("packages", {}).items() if v)
    load = m.get("load_average_at_start")
    return (f"## The machine and the run\n\n{m.get('date')}: {m.get('nproc')} × {m.get('cpu')}, "
            f"{m.get('memory_gib')} GiB, {m.get('kernel')}; Python {m.get('python')}, SQLite "
            f"{m.get('sqlite')}, PostgreSQL {m.get('postgresql') or '–'} on 127.0.0.1; {packages}. "
            f"Load average when the run started: {' / '.join(str(v) for v in load or [])} on "
            f"{m.get('nproc')} cores; the whole run took {_f(results.get('duration_s'))} s.\n\n"
            + table(results).rsplit("\n\n", 1)[0] + "\n")


def _steps(results: dict[str, Any]) -> str:
    out = ["## step_sqlite and step_postgresql\n",
           "Events per second through `Engine.send` on a two-state flow with one guard "
           "(`a --submit[ok]--> b --submit[ok]--> a`), on a SQLite file (WAL) and on PostgreSQL, "
           "against the raw-SQL floor. At the start of each, regflow performs one such step while "
           "its statements are recorded (SQLite: `sqlite3`'s `set_trace_callback` on the store's "
           "connection; PostgreSQL: psycopg's `Cursor.execute`). The floor sends exactly those "
           "statements, in order, inside the same `BEGIN` … `COMMIT`, on regflow's own database "
           "(schema, indexes, rows; a second flow of its own), through the driver alone: "
           "`sqlite3` with its statement cache, psycopg with `prepare=True`. The flow's id, state "
           "and `rev` (the version check) are carried forward so every replayed `UPDATE` changes "
           "its row. So the floor follows whatever regflow sends; the ratio is what regflow's own "
           "Python costs around its SQL. `pgbench -c 1` (TPC-B, scale 1, synchronous commit) runs "
           "beside as the anchor everyone knows for one client on this machine.\n"]
    for key in ("step_sqlite", "step_postgresql"):
        st = results.get(key)
        if not isinstance(st, dict) or "statements" not in st:
            continue
        out.append(f"**{key}**: regflow {_f(st['regflow_eps'])} events/s, floor "
                   f"{_f(st['floor_eps'])} transactions/s per wall second (ratio "
                   f"{st['ratio']:.2f}); per CPU second of this process {_f(st['regflow_eps_cpu'])} "
                   f"against {_f(st['floor_eps_cpu'])} (ratio {st['ratio_cpu']:.2f}). The "
                   f"statements of one step, as traced:\n")
        out.append("```text\n" + "\n".join(st["statements"]) + "\n```\n")
        pg = st.get("pgbench")
        if isinstance(pg, dict) and "tps" in pg:
            out.append(f"pgbench, one client, {pg['seconds']} s: {_f(pg['tps'])} transactions/s "
                       f"(latency {pg['latency_ms']} ms; five statements per transaction).\n")
    return "\n".join(out)


def _bounds(results: dict[str, Any]) -> str:
    bd = results.get("bounds")
    out = ["## What bounds each step\n",
           "Profiled in the same run (`bounds` in the JSON): each step under cProfile, its own "
           "time summed by where the code lives — regflow, peewee, the database *driver* "
           "(`sqlite3` or psycopg, including the wait for PostgreSQL's answer and commit), "
           "transitions, the rest of Python — and the regflow functions most time passes "
           "through. cProfile inflates call-heavy Python more than C calls: the shares say where "
           "the time goes, the CPU µs per call (measured without the profiler) how much.\n"]
    if not isinstance(bd, dict):
        return "\n".join([*out, "Not measured in this run.\n"])
    rows = ["| step | CPU µs per call (regflow / floor) | wall µs (regflow / floor) | "
            "regflow's own time by place | heaviest regflow functions (cumulative) | ratio (wall / CPU) "
            "| CPU µs to shed for 0.5 |",
            "|---|---|---|---|---|---|---|"]
    for key, ratio_key in (("dispatch_memory", "dispatch_memory"), ("step_sqlite", "step_sqlite"),
                           ("step_postgresql", "step_postgresql")):
        entry = bd.get(key)
        if not isinstance(entry, dict) or "regflow" not in entry:
            continue
        r, f = entry["regflow"], entry["floor"]
        shares = ", ".join(f"{k} {_pct(v)}" for k, v in r["own_time_share"].items() if v >= 0.01)
        heavy = "; ".join(f"`{h['function']}` {_pct(h['cumulative_share'])}"
                          for h in r["heaviest_regflow"][:5])
        measured = results.get(ratio_key, {})
        ratio = measured.get("ratio") if isinstance(measured, dict) else None
        ratio_cpu = measured.get("ratio_cpu") if isinstance(measured, dict) else None
        far = "–" if ratio is None else f"{ratio:.2f} / {_f(ratio_cpu, 2)}"
        shed = max(0.0, r["cpu_us"] - 2 * f["cpu_us"])  # at 0.5 a send may cost two floors
        rows.append(f"| {key} | {_f(r['cpu_us'])} / {_f(f['cpu_us'])} | {_f(r['wall_us'])} / "
                    f"{_f(f['wall_us'])} | {shares} | {heavy} | {far} | {_f(shed)} |")
    out.append("\n".join(rows) + "\n")
    out.append("Read a row as: at 0.5 a send may cost twice its floor; the CPU columns say how "
               "much regflow spends beyond the floor's (the last column: what it would have to "
               "shed, measured here), the shares where. When the wall time is "
               "far above the CPU time (PostgreSQL), the step waits on round trips and the "
               "commit, which regflow and the floor pay alike; the ratio then moves only with "
               "regflow's CPU per step and its number of round trips.\n")
    return "\n".join(out)


def _registration(results: dict[str, Any]) -> str:
    reg = results.get("registration")
    out = ["## registration\n",
           "Complete registrations per second in one process through `Engine` calls (no HTTP): "
           "start on a seat, submit the e-mail, read the code from the (memory) mail, submit it, "
           "submit the details. A registration is complete when it reaches `provisioning` (the "
           "login exists; it becomes ready by itself 10 minutes later). `fast` is the test "
           "hasher (argon2id t=1, 8 KiB), `argon2` the defaults (argon2id t=2, 19 MiB, p=1), "
           "which cost tens of milliseconds per hash by design.\n"]
    if isinstance(reg, dict):
        for store in ("sqlite", "postgresql"):
            entry = reg.get(store, {})
            runs = [f"{h} {_f(entry[h]['per_s'])}/s" for h in ("fast", "argon2")
                    if isinstance(entry.get(h), dict)]
            if runs:
                out.append(f"- {store}: " + ", ".join(runs))
    return "\n".join(out) + "\n"


def _http(results: dict[str, Any]) -> str:
    ht = results.get("http")
    out = ["## http\n",
           "A load run over loopback against `regflow serve` (waitress, its default 8 threads) on "
           "PostgreSQL, with one `regflow worker` beside it: 16 clients (threads of the benchmark "
           "process, each on its own keep-alive connection) do whole registrations through the "
           "JSON API — `POST /api/flows`, the e-mail, the code read from the mail the server "
           "wrote to an outbox folder, the details — until the time box closes (or the seats run "
           "out). Every request is timed; any answer other than the expected status and state is "
           "an error. Each registration comes from a client address of its own "
           "(`X-Forwarded-For`, the server trusting one proxy), as users behind a proxy would, so "
           "the per-client limits count each user. Afterwards I1–I4 are checked over the whole "
           "store and the logins must be exactly the registrations made. The HTTP floor is the "
           "same client against waitress with the same thread count answering a constant JSON on "
           "the same routes (`benchmarks/http_floor.py`). Concurrent registrations are spread over "
           "customers (those of one customer wait for each other: its licences are counted under "
           "a lock, by design).\n"]
    if isinstance(ht, dict) and "fast" in ht:
        out.append("| hasher | reg/s | requests/s | p50 / p95 / p99 ms | errors | CPU ms per "
                   "registration (serve+worker / PostgreSQL / clients / other) | CPU ceiling reg/s |")
        out.append("|---|---|---|---|---|---|---|")
        for name in ("fast", "argon2", "floor"):
            run = ht[name]
            cpu = run.get("cpu_ms_per_registration", {})
            out.append(f"| {name if name != 'floor' else 'HTTP floor'} | "
                       f"{_f(run['registrations_per_s'])} | {_f(run['requests_per_s'])} | "
                       f"{_f(run['p50_ms'])} / {_f(run['p95_ms'])} / {_f(run['p99_ms'])} | "
                       f"{run['errors']} | {_f(cpu.get('servers'))} / {_f(cpu.get('postgres'))} / "
                       f"{_f(cpu.get('client'))} / {_f(cpu.get('other'))} | "
                       f"{_f(run.get('cpu_ceiling_per_s'))} |")
        extra = ht.get("argon2_extra_server_ms")
        pg = (results.get("step_postgresql") or {}).get("pgbench") or {}
        inv = ht["invariants"]
        solo = ht["fast"].get("solo")
        if solo:
            out.append(f"\nOne client alone (fast): {_f(solo['registrations_per_s'])} reg/s, "
                       f"p50 / p99 {_f(solo['p50_ms'])} / {_f(solo['p99_ms'])} ms per request: "
                       "the latency of a request with no queue in front of it.")
        out.append(f"\nI1–I4 {'hold' if inv['ok'] else 'FAILED'}: {inv['logins']} logins for "
                   f"{inv['registrations']} registrations. **What bounds it**: "
                   f"fast — {ht['fast']['bound']}; argon2 — {ht['argon2']['bound']}"
                   + (f"; argon2 adds {_f(extra)} ms of the servers' CPU per registration"
                      if extra is not None else "")
                   + (f"; each commit of one client waits about {pg['latency_ms']} ms here "
                      "(pgbench's latency), several per registration" if pg.get("latency_ms")
                      else "") + ". The CPU "
                   "ceiling is this machine's cores divided by the CPU one registration cost "
                   "(leaving out other processes): what the run could reach with nothing else "
                   "running and every core busy.\n")
    return "\n".join(out)


def _scaling(results: dict[str, Any]) -> str:
    sc = results.get("scaling")
    out = ["## scaling\n",
           "The same HTTP load (fast hasher, 16 clients spread over the processes) against 1, 2 "
           "and 4 `regflow serve` processes on one PostgreSQL database, with one `regflow worker`; "
           "each run on customers of its own, I1–I4 checked over the store afterwards. `ratio` "
           "= 4 processes / 1. The CPU ceiling is measured in the same run: the cores of this "
           "machine over the CPU one registration cost with 4 processes, against what 1 process "
           "did — how much more 4 processes can show here at best.\n"]
    if isinstance(sc, dict) and "processes" in sc:
        out.append("| processes | reg/s | p99 ms | errors | CPU ms per registration (serve+worker "
                   "/ PostgreSQL / clients / other) | machine busy |")
        out.append("|---|---|---|---|---|---|")
        for key, run in sc["processes"].items():
            cpu = run.get("cpu_ms_per_registration", {})
            out.append(f"| {key} | {_f(run['registrations_per_s'])} | {_f(run['p99_ms'])} | "
                       f"{run['errors']} | {_f(cpu.get('servers'))} / {_f(cpu.get('postgres'))} / "
                       f"{_f(cpu.get('client'))} / {_f(cpu.get('other'))} | "
                       f"{_f(run.get('machine_busy_pct'))} % |")
        out.append(f"\nratio {sc['ratio']:.2f}, CPU ceiling {_f(sc.get('ratio_ceiling'), 2)}× "
                   f"({_f(sc.get('cpu_ceiling_per_s'))} reg/s) on {results['machine'].get('nproc')} "
                   "cores. Where the ratio stays well under the ceiling, the processes waited on "
                   "something other than this machine's CPU (other processes' share of it, commits, "
                   "locks, the clients).\n")
        inv = sc.get("invariants", {})
        if sc.get("bound"):
            first = next(iter(sc["processes"].values()))
            cpu = first.get("cpu_ms_per_registration", {}).get("servers")
            used = (f" With 1 process, `regflow serve` and the worker used "
                    f"{cpu * first['registrations_per_s'] / 1000:.2f} of a core between them: a "
                    "Python process runs one thread at a time, so one process never uses more "
                    "than one core, however many threads it has; more processes are how it uses "
                    "more." if cpu else "")
            out.append(f"**What bounds it**: {sc['bound']}. The database's waits are sampled "
                       "from `pg_stat_activity` every 20 ms during each run "
                       f"(`database_waits` in the JSON).{used}\n")
        if "clients_counted" in inv:
            out.append(f"Each registration's start was counted for a client of its own "
                       f"({inv['clients_counted']} clients for {inv['registrations']} "
                       "registrations), the address its `X-Forwarded-For` named. Until "
                       "`regflow serve --trusted-proxies` passed that header through waitress "
                       "(which removes it unless told otherwise), every request counted as the "
                       "proxy's, so every start and event of every process waited on that one "
                       "client's limit lock (`pg_advisory_xact_lock`, held to the commit): more "
                       "processes did not add a single registration per second.\n")
    out.append(
        "**On several machines.** Nothing of a flow lives in a process: every request loads the "
        "flow from the database and writes it back in one transaction with a version check, so "
        "any `regflow serve` process may answer any request of any flow, and a load balancer "
        "needs no sticky sessions. Give every process the same `--db`, `--product`, "
        "`--mail-from` and `REGFLOW_SECRET` (required beyond loopback: the key of the code "
        "digests and of the pages' cookies), put them behind the balancer with "
        "`--trusted-proxies` set to the proxies in front, and run `regflow worker` on one or more "
        "machines for timers and mail (several may run at once; each claims its own rows). "
        "Throughput then grows with the web processes until PostgreSQL's CPU or its commit rate "
        "(the `pgbench` row bounds one client's) is the limit; see "
        "[operations](operations.md) for running the processes.\n")
    return "\n".join(out)


OTHERS = """\
## dispatch_memory

Events per second through `Engine.send` on the memory store, against the same machine driven
by raw `transitions` exactly as regflow drives it: one shared `Machine(model=None,
auto_transitions=False, send_event=True)`, a tiny per-call model whose state comes from "the
row", `machine.events["submit"].trigger(model)`. python-statemachine (one long-lived machine,
its own idiom) is there for reference. A send is a whole durable step (transaction, copies,
journal, snapshot); the trigger is one part of it — see [what bounds it](#what-bounds-each-step).

## growth

p50 and p99 of `send` to a random stored flow with 1,000 and with many stored flows (each with
an inactivity expiry ahead, so the due index is as full as the table; inserted through the
store port). `ratio` = p50 large / p50 small, the worse of memory and SQLite. The sweep rows
apply 1,000 due timers in one `Engine.sweep` with the small and the large store.

## contention

Three processes on one database: whole registrations and wrong-password guesses with argon2
(the defaults), and a reader calling `engine.get` on one waiting flow as a page refresh would;
the reader alone on the same file first, as its floor. Every process counts the errors that
reached it. The target (worst `get` ≤ 250 ms, no error) bounds what a person waiting on a
page may see.

## journal_report

`regflow report registration` (``flow_report``) over a generated journal of a million rows
(`benchmarks/journal_report.py`: registrations spread over 30 days and 9 paths, bulk-loaded
into a fresh SQLite file and a fresh PostgreSQL schema): the whole journal, then one day
(a thirtieth of the rows). A report reads the rows of its range by the `journal_at` index and
each row's flow by its key, so one day costs about a thirtieth of the whole; the query plan is
in the JSON. Each report's `started` is checked against the generator's count.

## oracle_gap

Does the time of an answer tell a registered address from another? The password reset's
"send me a code" for a registered and an unregistered address, alternating, each address used
once, over real HTTP (waitress, a SQLite file, mail to an outbox folder after the answer).

## mutation

`regflow mutate` over every built-in flow, 2 jobs: each mutant of a definition or of its
registry replays the flow's approved paths until one sees a difference.

## import_ms

Wall time of `python -c "import regflow"`, the median of fresh interpreters, taken in turns
with a bare `python -c pass` (the interpreter alone) and an engine made ready
(`Engine.from_url("memory://")`, the built-in flows loaded).
"""


def page(results: dict[str, Any]) -> str:
    parts = [INTRO, _machine(results), _steps(results), _bounds(results), _http(results),
             _scaling(results), _registration(results), OTHERS]
    return "\n".join(part.rstrip() + "\n" for part in parts)


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else HERE / "results.json"
    target = Path(argv[1]) if len(argv) > 1 else PAGE
    target.write_text(page(json.loads(source.read_text(encoding="utf-8"))), encoding="utf-8")
    print(f"{target} written from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
