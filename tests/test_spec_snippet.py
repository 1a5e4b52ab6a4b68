"""SPEC 4.1b's embedding snippet runs as written, on memory:// and on a SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

import regflow


@pytest.mark.parametrize("url", ["memory://", "sqlite:///regflow.db"])
def test_spec_snippet_registration_part(url: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The registration lines of SPEC 4.1b, verbatim, with the default argon2id hasher."""
    monkeypatch.chdir(tmp_path)
    engine = regflow.Engine.from_url(url, mail="outbox:outbox")
    engine.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=3,
                         accounts=["abcd8-01", "abcd8-02", "abcd8-03"])
    snap = engine.start("registration", {"account": "abcd8-01"})
    snap = engine.send(snap, "submit", {"email": "taro@example.jp"}, idempotency_key=None)
    snap = engine.get(snap)          # timers due by now are applied first
    state, status, messages, as_json = snap.state, snap.status, snap.screen.messages, snap.to_dict()
    assert (state, status, messages) == ("enter_code", "active", ())
    assert as_json["screen"]["id"] == "enter_code"
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    if url.startswith("sqlite"):
        assert (tmp_path / "regflow.db").exists()
