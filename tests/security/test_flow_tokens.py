"""Flow tokens, limits per client and unlocking, in the engine itself (SPEC 4.1, 5): what every
front end inherits. Run on memory, a SQLite file and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from flows import PASSWORD, EngineFactory, register
from freezegun.api import FrozenDateTimeFactory

import regflow
from regflow.runtime.limits import Limits, Rate

TARO, HANAKO = "taro@example.jp", "hanako@example.jp"
SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)


def test_the_token_is_given_once_and_only_its_digest_is_kept(engine: regflow.Engine) -> None:
    """≥ 128 bits, in the start answer; the store holds its SHA-256, not the token."""
    snap = engine.start("registration", {"account": "abcd8-01"})
    token = snap.flow_token
    assert token is not None
    assert len(token) >= 22  # URL-safe base64 of ≥ 128 random bits
    assert snap.to_dict()["flow_token"] == token
    with engine.store.transaction() as tx:
        stored = tx.flows.load(snap.id)
    assert stored is not None
    assert stored.token_digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(stored)


@pytest.mark.parametrize("presented", [None, "", "x", "A" * 43, "A" * 300])
def test_without_the_token_a_flow_does_not_exist(engine: regflow.Engine,
                                                 presented: str | None) -> None:
    """No token, an empty, short, wrong or oversized one: FlowNotFound for get and send, the
    same message as for an id that never existed; the flow is untouched."""
    snap = engine.start("registration", {"account": "abcd8-01"})
    with pytest.raises(regflow.FlowNotFound) as refused:
        engine.get(snap.id, token=presented)
    with pytest.raises(regflow.FlowNotFound):
        engine.send(snap.id, "submit", {"email": TARO}, token=presented)
    with pytest.raises(regflow.FlowNotFound) as unknown:
        engine.get("no-such-flow-id-at-all", token=snap.flow_token)
    assert str(refused.value).split(" with id ")[0] == str(unknown.value).split(" with id ")[0]
    assert engine.get(snap).state == "enter_email"


def test_a_replay_needs_the_token_and_gives_the_same_session(make_engine: EngineFactory,
                                                             frozen: FrozenDateTimeFactory) -> None:
    """The last sign-in step replayed by its Idempotency-Key: with the flow token, the same
    session token again; with the id alone, nothing."""
    engine = make_engine()
    assert register(engine, "abcd8-01", TARO).state == "provisioning"
    frozen.tick(10 * MINUTE)
    snap = engine.start("sign_in", {"account": "abcd8-01"})
    prompt = engine.send(snap, "submit", {"email": TARO, "password": PASSWORD})
    assert prompt.state == "link_prompt"
    first = engine.send(prompt, "submit", {}, idempotency_key="ok-1")
    assert first.state == "signed_in"
    assert first.session is not None
    with pytest.raises(regflow.FlowNotFound):
        engine.send(prompt.id, "submit", {}, idempotency_key="ok-1")
    again = engine.send(prompt.id, "submit", {}, token=prompt.flow_token, idempotency_key="ok-1")
    assert again.session == first.session
    assert engine.admin_logins(first.session)[0]["email"] == TARO  # the first registrant: admin


def test_a_hand_over_gives_the_new_flows_token_to_the_same_client(engine: regflow.Engine) -> None:
    """create_account answers with the registration's snapshot and its own token (also on a
    replay); the sign-in's token does not open the registration."""
    sign_in = engine.start("sign_in", {"account": "abcd8-01"})
    moved = engine.send(sign_in, "create_account", {}, idempotency_key="h-1")
    assert (moved.flow, moved.continue_with) == ("registration", {"flow": "registration",
                                                                  "id": moved.id})
    assert moved.flow_token not in (None, sign_in.flow_token)
    assert engine.get(moved).state == "enter_email"
    with pytest.raises(regflow.FlowNotFound):
        engine.get(moved.id, token=sign_in.flow_token)
    replayed = engine.send(sign_in, "create_account", {}, idempotency_key="h-1")
    assert (replayed.id, replayed.flow_token) == (moved.id, moved.flow_token)


def test_a_trusted_embedding_may_turn_tokens_off(make_engine: EngineFactory) -> None:
    """``flow_tokens=False``: an id alone drives the flow (for server-side jobs only)."""
    engine = make_engine(flow_tokens=False)
    snap = engine.start("registration", {"account": "abcd8-01"})
    assert engine.send(snap.id, "submit", {"email": TARO}).state == "enter_code"


def test_starts_per_client_are_limited_with_a_sliding_window(make_engine: EngineFactory,
                                                            frozen: FrozenDateTimeFactory) -> None:
    """Limits(starts=(Rate(2, 60),)): a client starts 2 flows in any 60 s; the third waits
    until the first leaves the window (Retry-After counts down to it); another client and
    in-process calls (no client) are not held back."""
    engine = make_engine(limits=Limits(starts=(Rate(2, 60),)))
    engine.start("sign_in", {"account": "abcd8-01"}, client="192.0.2.1")
    frozen.tick(10 * SECOND)
    engine.start("sign_in", {"account": "abcd8-01"}, client="192.0.2.1")
    frozen.tick(49 * SECOND)  # 59 s after the first
    with pytest.raises(regflow.RateLimited) as refused:
        engine.start("sign_in", {"account": "abcd8-01"}, client="192.0.2.1")
    assert (refused.value.message_id, refused.value.retry_after) == ("rate_limited", 1)
    engine.start("sign_in", {"account": "abcd8-01"}, client="192.0.2.2")
    for _ in range(3):
        engine.start("sign_in", {"account": "abcd8-01"})
    frozen.tick(SECOND)  # 60 s after the first: it has left the window
    engine.start("sign_in", {"account": "abcd8-01"}, client="192.0.2.1")


def test_events_per_client_are_limited(make_engine: EngineFactory) -> None:
    """Limits(events=(Rate(3, 600),)): the fourth event of one client is refused (429) and
    changes nothing; refused events count too, so flooding with bad events runs dry."""
    engine = make_engine(limits=Limits(events=(Rate(3, 600),)))
    snap = engine.start("registration", {"account": "abcd8-01"})
    for _ in range(2):
        with pytest.raises(regflow.EventNotAllowed):
            engine.send(snap, "resend_code", {}, client="192.0.2.9")
    engine.send(snap, "submit", {"email": "not-an-address"}, client="192.0.2.9")
    with pytest.raises(regflow.RateLimited):
        engine.send(snap, "submit", {"email": TARO}, client="192.0.2.9")
    assert engine.get(snap).state == "enter_email"
    assert engine.send(snap, "submit", {"email": TARO}).state == "enter_code"  # in-process


def test_the_admin_unlocks_a_login_for_every_client(make_engine: EngineFactory,
                                                    frozen: FrozenDateTimeFactory) -> None:
    """Hanako's address is locked for a client after 10 wrong passwords; the admin sees her
    failures, unlocks her (unlock_login), and that client signs in at once."""
    engine = make_engine()
    for account, address in (("abcd8-01", TARO), ("abcd8-02", HANAKO)):
        assert register(engine, account, address).state == "provisioning"
    frozen.tick(10 * MINUTE)
    admin = engine.start("sign_in", {"account": "abcd8-01"})
    admin = engine.send(engine.send(admin, "submit", {"email": TARO, "password": PASSWORD}),
                        "submit", {})
    assert admin.session is not None
    for _ in range(10):
        wrong = engine.start("sign_in", {"account": "abcd8-02"}, client="198.51.100.7")
        engine.send(wrong, "submit", {"email": HANAKO, "password": "Wrong-pass-1"},
                    client="198.51.100.7")
    locked = engine.start("sign_in", {"account": "abcd8-02"}, client="198.51.100.7")
    locked = engine.send(locked, "submit", {"email": HANAKO, "password": PASSWORD},
                         client="198.51.100.7")
    assert [m.id for m in locked.screen.messages] == ["locked_out"]
    rows = {row["email"]: row for row in engine.admin_logins(admin.session)}
    assert (rows[HANAKO]["sign_in_failures"], rows[TARO]["sign_in_failures"]) == (10, 0)

    unlock = engine.start("unlock_login", {"target": rows[HANAKO]["id"]}, session=admin.session)
    assert HANAKO in (unlock.screen.text or "")
    assert engine.send(unlock, "submit", {}, session=admin.session).state == "done"
    assert engine.admin_logins(admin.session)[1]["sign_in_failures"] == 0
    again = engine.start("sign_in", {"account": "abcd8-02"}, client="198.51.100.7")
    again = engine.send(again, "submit", {"email": HANAKO, "password": PASSWORD},
                        client="198.51.100.7")
    assert again.state == "link_prompt"


def test_only_the_admin_unlocks(make_engine: EngineFactory, frozen: FrozenDateTimeFactory) -> None:
    """A member's session cannot start unlock_login (Forbidden)."""
    engine = make_engine()
    for account, address in (("abcd8-01", TARO), ("abcd8-02", HANAKO)):
        register(engine, account, address)
    frozen.tick(10 * MINUTE)
    member = engine.start("sign_in", {"account": "abcd8-02"})
    member = engine.send(engine.send(member, "submit", {"email": HANAKO, "password": PASSWORD}),
                         "submit", {})
    assert member.session is not None
    with pytest.raises(regflow.Forbidden):
        engine.start("unlock_login", {"target": "anyone"}, session=member.session)
