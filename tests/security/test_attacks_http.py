"""The attacks of issue 10, each tried over real HTTP against ``regflow serve`` on SQLite and on
PostgreSQL, from clients on distinct loopback addresses. Every one of them succeeded against
the release before flow tokens and limits across flows; each test says what the attacker tried
and asserts that it fails while the rightful client still gets through.

The numbers come from SPEC 5 and the defaults of ``regflow.Limits``: 5 code mails per address
in 15 minutes, 10 wrong codes per address in an hour, a lockout after 10 wrong passwords in a
row from one client, a mailed code once 20 wrong passwords came from all clients in an hour.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from live import PASSWORD, Client, Server, seed_login

from regflow.runtime.context import new_id

ALICE = "alice@example.jp"
BOB = "bob@example.jp"
NOBODY = "nobody@example.jp"  # an address with no login


def _sign_in(client: Client, address: str, password: str = PASSWORD,
             account: str = "abcd8-01") -> tuple[str, str, dict]:
    """Start a sign-in and submit the credentials; (flow id, flow token, answer body)."""
    started = client.start("sign_in", account=account)
    assert started.status == 201, started.body
    flow_id, token = started["id"], started["flow_token"]
    answer = client.send(flow_id, "submit", {"email": address, "password": password}, token)
    return flow_id, token, answer.body


def _message_ids(body: dict) -> list[str]:
    return [m["id"] for m in body["screen"]["messages"]]


def _assert_unknown(answer, server: Server, client: Client) -> None:
    """The answer is the one an id that never existed gets: 404 ``flow_not_found``."""
    unknown = client.get(new_id())
    assert answer.status == unknown.status == 404, answer.body
    assert answer["error"] == unknown["error"] == "flow_not_found"
    assert set(answer.body) == set(unknown.body)


# ---- 1. a flow id alone takes nothing over ------------------------------------------------------

def test_a_flow_id_alone_cannot_finish_someone_elses_sign_in(server: Server) -> None:
    """Alice waits at the link prompt; Mallory, with her flow id but not her token, can neither
    read the flow nor press OK nor replay her request; Alice can."""
    seed_login(server.engine(), ALICE)  # ready, not linked yet: the link prompt follows
    alice, mallory = server.client(), server.client()
    flow_id, token, body = _sign_in(alice, ALICE)
    assert body["state"] == "link_prompt", body

    _assert_unknown(mallory.send(flow_id, "submit", {}), server, mallory)
    _assert_unknown(mallory.send(flow_id, "submit", {}, token="A" * len(token)), server, mallory)
    _assert_unknown(mallory.get(flow_id), server, mallory)

    done = alice.send(flow_id, "submit", {}, token, Idempotency_Key="press-ok-1")
    assert (done.status, done["state"]) == (200, "signed_in")
    assert done["session"]
    _assert_unknown(mallory.send(flow_id, "submit", {}, Idempotency_Key="press-ok-1"),
                    server, mallory)
    again = alice.send(flow_id, "submit", {}, token, Idempotency_Key="press-ok-1")
    assert (again.status, again["session"]) == (200, done["session"])  # the rightful replay
    assert alice.request("GET", "/api/admin/logins",
                         Authorization=f"Bearer {done['session']}").status == 403  # a member


def test_a_flow_id_alone_cannot_pass_someone_elses_second_factor(server: Server) -> None:
    """Alice's code is typed by Mallory, who knows the flow id (and even the code): refused."""
    seed_login(server.engine(), ALICE, account="abcd8-01", two_factor=True)
    alice, mallory = server.client(), server.client()
    flow_id, token, body = _sign_in(alice, ALICE)
    assert body["state"] == "second_factor", body
    code = server.code_for(ALICE, 1)
    _assert_unknown(mallory.send(flow_id, "submit", {"code": code}), server, mallory)
    done = alice.send(flow_id, "submit", {"code": code}, token)
    assert (done.status, done["state"]) == (200, "signed_in")


def test_a_flow_id_alone_cannot_set_someone_elses_new_password(server: Server) -> None:
    """Alice proved her address and waits at new_password; Mallory cannot set it for her."""
    seed_login(server.engine(), ALICE, account="abcd8-01")
    alice, mallory = server.client(), server.client()
    started = alice.start("password_reset")
    flow_id, token = started["id"], started["flow_token"]
    assert alice.send(flow_id, "submit", {"email": ALICE}, token)["state"] == "enter_code"
    answer = alice.send(flow_id, "submit", {"code": server.code_for(ALICE, 1)}, token)
    assert answer["state"] == "new_password", answer.body
    stolen = {"password": "Mallory-0wns-it", "password_confirm": "Mallory-0wns-it"}
    _assert_unknown(mallory.send(flow_id, "submit", stolen), server, mallory)
    _, _, body = _sign_in(mallory, ALICE, "Mallory-0wns-it")
    assert _message_ids(body) == ["credentials_invalid"]  # the password is still Alice's


def test_an_admin_flow_is_not_readable_by_its_id(server: Server) -> None:
    """The admin's delete confirmation (which names Bob and his address) stays with the admin."""
    engine = server.engine()
    seed_login(engine, ALICE, account="abcd8-01", role="admin")
    bob = seed_login(engine, BOB, account="abcd8-02")
    admin, mallory = server.client(), server.client()
    _flow_id, _token, body = _sign_in(admin, ALICE)
    session = body["session"]
    started = admin.request("POST", "/api/flows", {"flow": "delete_login", "context": {"target": bob.id}},
                            Authorization=f"Bearer {session}")
    assert started.status == 201, started.body
    assert BOB in started["screen"]["text"]
    peek = mallory.get(started["id"])
    _assert_unknown(peek, server, mallory)
    assert BOB not in str(peek.body)


# ---- 2. no unlimited mail to an address --------------------------------------------------------

def test_code_mails_to_one_address_are_limited_across_flows_and_kinds(server: Server) -> None:
    """Five code mails to an address in 15 minutes, whatever flows ask (registrations, resets,
    from any client); the sixth request answers 429 with Retry-After and sends nothing."""
    seed_login(server.engine(), ALICE, account="abcd8-01")
    statuses = []
    for kind in ("registration", "password_reset", "registration", "password_reset",
                 "registration", "password_reset", "registration"):
        client = server.client()  # a new client each time: the limit is the address's
        started = client.start(kind, **({"account": "abcd8-02"} if kind == "registration" else {}))
        answer = client.send(started["id"], "submit", {"email": BOB}, started["flow_token"])
        statuses.append(answer.status)
        if answer.status == 429:
            assert answer["error"] == "rate_limited"
            assert 1 <= int(answer.headers["retry-after"]) <= 15 * 60
    assert statuses == [200] * 5 + [429] * 2
    # Bob has no login: the three registrations mailed him codes, the two resets wrote decoys
    # (composed, never sent), which count against the limit all the same.
    assert len(server.wait_for_mails(BOB, 3)) == 3
    assert server.rows("SELECT count(*) FROM outbox WHERE status = 'decoy'") == [(2,)]


def test_the_mail_limit_answers_the_same_for_unknown_addresses(server: Server) -> None:
    """Password resets for a registered and an unregistered address: the same answers, in the
    same order (the limit tells nothing about which addresses exist)."""
    seed_login(server.engine(), ALICE, account="abcd8-01")
    seen: dict[str, list[tuple[int, str | None]]] = {}
    for address in (ALICE, NOBODY):
        client = server.client()
        answers = []
        for _ in range(6):
            started = client.start("password_reset")
            answer = client.send(started["id"], "submit", {"email": address},
                                 started["flow_token"])
            answers.append((answer.status, answer.body.get("state") or answer.body.get("error")))
        seen[address] = answers
    assert seen[ALICE] == seen[NOBODY] == [(200, "enter_code")] * 5 + [(429, "rate_limited")]
    assert len(server.wait_for_mails(ALICE, 5)) == 5
    assert server.mails_to(NOBODY) == []


# ---- 3. a fresh flow gives no fresh tries ---------------------------------------------------------

def test_wrong_codes_are_counted_per_address_across_fresh_flows(server: Server) -> None:
    """Mallory starts password resets for Alice's address and guesses: 5 wrong in the first
    flow, 5 in a second; in a third flow not even the right code is judged (429)."""
    seed_login(server.engine(), ALICE, account="abcd8-01")
    mallory = server.client()
    flows = []
    for number in range(1, 4):
        started = mallory.start("password_reset")
        flow_id, token = started["id"], started["flow_token"]
        assert mallory.send(flow_id, "submit", {"email": ALICE}, token).status == 200
        flows.append((flow_id, token, server.code_for(ALICE, number)))
    for flow_id, token, code in flows[:2]:
        wrong = f"{(int(code) + 1) % 10**8:08d}"
        outcomes = [_message_ids(mallory.send(flow_id, "submit", {"code": wrong}, token).body)
                    for _ in range(5)]
        assert outcomes == [["code_invalid"]] * 4 + [["code_tries_exhausted"]]
    flow_id, token, code = flows[2]
    refused = mallory.send(flow_id, "submit", {"code": code}, token)
    assert (refused.status, refused["error"]) == (429, "rate_limited")
    assert int(refused.headers["retry-after"]) >= 1


# ---- 4. lockout without denial of service, and no address oracle ----------------------------------

def test_wrong_passwords_lock_out_the_guessing_client_not_the_person(server: Server) -> None:
    """Mallory's 10 wrong passwords lock Mallory's client out of Alice's address (even with
    the right password); Alice, from her own client, signs in; Alice is told by mail once."""
    seed_login(server.engine(), ALICE, account="abcd8-01")
    mallory, alice = server.client(), server.client()
    answers = [_message_ids(_sign_in(mallory, ALICE, "Wrong-pass-1")[2]) for _ in range(10)]
    assert answers == [["credentials_invalid"]] * 10
    assert _message_ids(_sign_in(mallory, ALICE)[2]) == ["locked_out"]
    _, _, body = _sign_in(alice, ALICE)
    assert (body["state"], body["status"]) == ("signed_in", "completed"), body
    notices = [m for m in server.wait_for_mails(ALICE, 1) if "ロック" in str(m["Subject"])]
    assert len(notices) == 1


def test_many_clients_guessing_make_the_right_password_ask_for_a_mailed_code(server: Server) -> None:
    """20 wrong passwords for Alice from two clients: Alice's right password, from a clean
    client, is not refused; it leads to a code mailed to her, and with it she signs in."""
    seed_login(server.engine(), ALICE, account="abcd8-01")
    for _ in range(2):
        guesser = server.client()
        for _ in range(10):
            _sign_in(guesser, ALICE, "Wrong-pass-1")
    alice = server.client()
    flow_id, token, body = _sign_in(alice, ALICE)
    assert body["state"] == "second_factor", body
    code_mails = [m for m in server.wait_for_mails(ALICE, 2) if "ロック" not in str(m["Subject"])]
    assert len(code_mails) == 1
    code = server.code_for(ALICE, len(server.mails_to(ALICE)))
    assert alice.send(flow_id, "submit", {"code": code}, token)["state"] == "signed_in"


def test_an_unknown_address_locks_out_exactly_like_a_registered_one(server: Server) -> None:
    """The answers to 11 sign-ins with a wrong password: the same for an address with a login
    and one without (before: an unknown address never answered ``locked_out``)."""
    seed_login(server.engine(), ALICE, account="abcd8-01")
    runs = {}
    for address in (ALICE, NOBODY):
        client = server.client()
        runs[address] = [_message_ids(_sign_in(client, address, "Wrong-pass-1")[2])
                         for _ in range(11)]
    assert runs[ALICE] == runs[NOBODY] == [["credentials_invalid"]] * 10 + [["locked_out"]]


# ---- 6. a copy of the database gives nothing away -------------------------------------------------

def test_a_database_copy_cannot_rebuild_a_session_token(server: Server) -> None:
    """With the database (its sessions and its stored secret) a thief rebuilds tokens the way
    the old release made them: not one of them is accepted; only digests are stored."""
    seed_login(server.engine(), ALICE, account="abcd8-01", role="admin")
    alice, thief = server.client(), server.client()
    _, _, body = _sign_in(alice, ALICE)
    token = body["session"]
    stored = server.rows("SELECT id, digest FROM sessions")
    meta = server.rows("SELECT value FROM regflow_meta WHERE key = 'secret'")
    keys = [bytes.fromhex(value) for (value,) in meta]
    assert [digest for _, digest in stored] == [hashlib.sha256(token.encode()).hexdigest()]
    for session_id, _ in stored:
        for key in keys:
            mac = hmac.new(key, session_id.encode(), hashlib.sha256).digest()[:16]
            forged = f"{session_id}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"
            answer = thief.request("GET", "/api/admin/logins", Authorization=f"Bearer {forged}")
            assert answer.status == 401
    assert alice.request("GET", "/api/admin/logins", Authorization=f"Bearer {token}").status == 200


def test_a_database_copy_does_not_give_codes_away(server: Server) -> None:
    """A code's digest cannot be matched with anything the database holds (its row id, the
    flow, the stored secret), and no delivered mail keeps its body in the outbox."""
    client = server.client()
    started = client.start("registration", account="abcd8-01")
    client.send(started["id"], "submit", {"email": ALICE}, started["flow_token"])
    code = server.code_for(ALICE, 1)
    (code_id, flow_id, digest), = server.rows("SELECT id, flow_id, digest FROM codes")
    keys = [code_id.encode(), flow_id.encode()] + [
        bytes.fromhex(value) for (value,) in server.rows(
            "SELECT value FROM regflow_meta WHERE key = 'secret'")]
    for key in keys:
        for message in (code, f"{code_id}{code}", f"regflow.code\x00{code_id}\x00{code}"):
            assert hmac.new(key, message.encode(), hashlib.sha256).hexdigest() != digest
    bodies = server.rows("SELECT status, message FROM outbox")
    assert [status for status, _ in bodies] == ["sent"]
    assert all(code.encode() not in bytes(message) for _, message in bodies)
