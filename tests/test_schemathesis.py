"""Schemathesis (``st run``, every check, every phase) against a real ``regflow serve``.

The document at ``/api/openapi.json`` is the contract: the examples, coverage and fuzzing phases
send what it allows and what it forbids to every operation; the stateful phase starts flows and
walks them through the document's links (the flow's id and its ``flow_token`` from each answer
into the next request). The admin routes are called with the bearer token of a seeded admin.
``tests/schemathesis.toml`` holds the one setting changed from the defaults, and why.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from security.live import seed_login, serving

from regflow.testing.world import open_session

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = 300  # per operation and phase (examples, coverage, fuzzing): about 50 s
STATEFUL_EXAMPLES = 250  # stateful scenarios: about 25 s
MIN_LINKS = 10  # of the document's links, how many the walks must have followed at least
SEED = 13


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("schemathesis") is None,
                    reason="schemathesis is not installed (pip install -e '.[test]')")
def test_st_run_finds_no_failure(tmp_path: Path) -> None:
    """Every check of every phase, the stateful one walking flows by the links: 0 failures."""
    with serving("sqlite", tmp_path) as server:
        engine = server.engine()
        admin = seed_login(engine, "kanri@example.jp", account="abcd8-01", role="admin")
        with engine.store.transaction() as tx:
            token = open_session(engine, tx, datetime.now(UTC), admin.email)
        engine.store.close()
        # The stateful phase first, before the others spend the per-client start limit (the
        # server sees one client): its walks need flows that start.
        walks = st_run(server.base, token, "stateful", STATEFUL_EXAMPLES, tmp_path)
        others = st_run(server.base, token, "examples,coverage,fuzzing", EXAMPLES, tmp_path)
    assert "passed" in others, others
    covered = re.search(r"API Links: +([0-9]+) covered", walks)
    assert covered is not None, walks
    assert int(covered.group(1)) >= MIN_LINKS, walks


def st_run(base: str, token: str, phases: str, examples: int, folder: Path) -> str:
    """``st run`` of ``phases`` with every check; its report (the test fails on any failure)."""
    run = subprocess.run(
        [str(Path(sys.executable).parent / "st"), "--no-color", "--config-file", str(CONFIG),
         "run", f"{base}/api/openapi.json", "--checks", "all", "--phases", phases,
         "--max-examples", str(examples), "--seed", str(SEED), "--continue-on-failure",
         "--max-failures", "50", "--request-timeout", "30",
         "--header", f"Authorization: Bearer {token}"],
        capture_output=True, text=True, timeout=300, check=False,
        cwd=folder)  # where st keeps its .schemathesis cache
    report = run.stdout + run.stderr
    print(report)  # the numbers (cases, links walked) with ``pytest -s``
    assert run.returncode == 0, report
    return report
