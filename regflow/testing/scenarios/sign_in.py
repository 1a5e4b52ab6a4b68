"""Sign-in, half an hour before the enforcement date, on seat
abcd8-01: logins of every kind — ready or not, linked elsewhere, with a second factor, of
another customer."""

from typing import Any

from regflow.testing.scenarios.code_boundaries import code_stays, merged

WRONG = {"world": "sign_in_attempts", "email": "taro@example.jp", "password": "Wrong-pass-99",
         "account": "abcd8-01"}


def wrong(count: int, email: str = "taro@example.jp") -> dict[str, Any]:
    """``count`` wrong passwords for an address, each in a sign-in flow of its own (same client)."""
    return {**WRONG, "email": email, "count": count}


def after_a_wrong_password(email: str, why: str) -> dict[str, Any]:
    """A keep-witness: the right password of ``email`` after one wrong one, so the approved
    paths show that this branch (the password was right) clears the failure."""
    return {"data": {"email": email}, "keep": True, "before": [wrong(1, email)],
            "note": f"{why}, after one wrong password: the right one clears the failure"}


# Long boundaries outlive the flow's 60-minute inactivity: the flow is kept alive by a longer
# expiry and one answered (invalid) submit first.
KEEP_ALIVE = {"event": "submit", "data": {"email": "", "password": ""}}  # answered, refused as empty
LONG_LIFE = [{"world": "settings", "values": {"flow_expiry": "48h"}}, KEEP_ALIVE]
# Seven lockouts in a row: 1, 2, 4, 8, 16 and 32 minutes, each waited out; the seventh is capped.
SACHI_RIGHT = {"event": "submit", "data": {"email": "sachi@example.jp", "password": "Kx7#mPq2wZ"}}
BACK = {"event": "cancel", "data": {}}
SACHI_AGAIN = [BACK, {"world": "sign_in_attempts", "email": "sachi@example.jp", "password": "Wrong-pass-99",
                      "account": "abcd8-01"}]
SEVEN_LOCKOUTS = [step for minutes in (1, 2, 4, 8, 16, 32)
                  for step in (wrong(10), {"advance": minutes * 60})] + [wrong(10)]

FORGOTTEN = ("forget_login clears keys that remember_login writes again before any branch reads "
             "them: every branch that reads _login_id or _password_mark comes after a right password")

SCENARIO: dict[str, Any] = {
    "flow": "sign_in",
    "refused_starts": [{"context": {"account": "zzzz9-99"}, "note": "a seat no contract has"}],
    "description": "Sign-ins on seat abcd8-01, from 2026-02-01 14:30 UTC (30 min before enforcement).",
    "start": "2026-02-01T14:30:00Z",
    "context": {"account": "abcd8-01"},
    "world": {
        "contracts": [
            {"customer_id": "281234", "phone": "03-1234-5678", "licenses": 5,
             "accounts": ["abcd8-01", "abcd8-02", "abcd8-03", "abcd8-04", "abcd8-05"]},
            {"customer_id": "285555", "phone": "06-5555-0000", "licenses": 2, "accounts": ["wxyz5-01"]},
        ],
        "logins": [
            {"email": "taro@example.jp", "customer_id": "281234"},
            {"email": "hana@example.jp", "customer_id": "281234", "account": "abcd8-02"},
            {"email": "jiro@example.jp", "customer_id": "281234", "ready": False},
            {"email": "sachi@example.jp", "customer_id": "281234", "two_factor": True},
            {"email": "mika@example.jp", "customer_id": "281234"},
            {"email": "ken@other.example", "customer_id": "285555", "account": "wxyz5-01"},
        ],
    },
    "data": {
        "credentials.submit": {"email": "taro@example.jp", "password": "Kx7#mPq2wZ"},
        "second_factor.submit": {"code": "$code"},
    },
    "witnesses": merged(code_stays("second_factor"), {
        "password_matches": {"false": [{"data": {"password": "Wrong-pass-99"}}]},
        "login_ready": {"false": [
            {"data": {"email": "jiro@example.jp"}},
            after_a_wrong_password("jiro@example.jp", "still being set up")]},
        "seat_of_own_customer": {"false": [
            {"data": {"email": "ken@other.example"}},
            after_a_wrong_password("ken@other.example", "another customer's login")]},
        "send_limit_reached": {"true": [
            {"at": "credentials", "keep": True, "data": {"email": "sachi@example.jp"},
             "note": "ten codes sent (nine resends three minutes apart), back, a wrong password, "
                     "then the right one: no more codes, and the failure is cleared",
             "before": [SACHI_RIGHT, *[step for _ in range(9) for step in (
                 {"advance": 180}, {"event": "resend_code", "data": {}})], {"advance": 180}, *SACHI_AGAIN]}]},
        "linked_elsewhere": {"true": [
            {"data": {"email": "hana@example.jp"}},
            after_a_wrong_password("hana@example.jp", "linked to another seat")]},
        "needs_second_factor": {"true": [
            {"data": {"email": "sachi@example.jp"}},
            {"note": "20 wrong passwords within the hour (step_up_after; the client was locked out "
                     "twice on the way): the right password then needs a mailed code", "keep": True,
             "before": [wrong(10), {"advance": 60}, wrong(10), {"advance": 120}]},
        ], "false": [
            {"note": "19 wrong passwords within the hour: one short of step_up_after", "keep": True,
             "before": [wrong(10), {"advance": 60}, wrong(9)]},
        ]},
        "login_locked": {"true": [
            {"note": "the 10th wrong password 59:59 after the first nine: still within "
                     "lockout_window, so it locks", "keep": True,
             "before": [wrong(9), {"advance": 3599}, wrong(1)]},
            {"note": "a second lockout 23:59:59 after the first: within lockout_memory, it lasts "
                     "twice as long (120 s)", "keep": True,
             "before": [*LONG_LIFE, wrong(10), {"advance": 86399}, wrong(10)]},
            {"note": "a second lockout exactly 24 h after the first: outside lockout_memory, it "
                     "lasts as long as a first one (60 s)", "keep": True,
             "before": [*LONG_LIFE, wrong(10), {"advance": 86400}, wrong(10)]},
            {"note": "the seventh lockout in a row: 64 minutes capped at lockout_max (3600 s)",
             "keep": True, "before": [*LONG_LIFE, *SEVEN_LOCKOUTS]},
        ], "false": [
            {"note": "the 10th wrong password exactly an hour after the first nine: they no longer "
                     "count (lockout_window)", "keep": True,
             "before": [wrong(9), {"advance": 3000}, KEEP_ALIVE, {"advance": 600}, wrong(1)]},
        ]},
        "send_too_soon": {"true": [
            {"at": "credentials", "keep": True, "data": {"email": "sachi@example.jp"},
             "note": "sachi's code was sent, she went back and typed a wrong password; the right "
                     "one within 60 s: too soon for another code, and the failure is cleared",
             "before": [SACHI_RIGHT, *SACHI_AGAIN]}],
        "false": [
            {"note": "3 min, not the 60 s resend interval: the address's code mails across flows "
                     "(engine Limits, 5 per 15 min) then never run out before max_sends does",
             "before": [{"advance": "3m"}]},
        ]},
        "needs_link": {"false": [
            {"at": "credentials", "before": [{"world": "link", "email": "taro@example.jp",
                                              "account": "abcd8-01"}]},
            {"at": "second_factor", "before": [{"world": "link", "email": "$data:email",
                                                "account": "abcd8-01"}]},
        ]},
        "login_unchanged": {"false": [
            {"note": "a password reset replaced the password meanwhile",
             "before": [{"world": "set_password", "email": "$data:email", "password": "Other-pass-77"}]},
        ]},
        "account_taken": {"true": [
            {"note": "another login took the seat meanwhile",
             "before": [{"world": "link", "email": "mika@example.jp", "account": "abcd8-01"}]},
        ]},
        "code_matches": {"false": [{"data": {"code": "$wrong_code"}}]},
        "before_enforcement": {"false": [{"before": [{"advance": "30m"}]}], "true": [
            {"note": "one second before the enforcement date: the legacy way is still offered",
             "keep": True, "before": [{"advance": 1799}]}]},
    }),
    "equivalent": {
        "retarget:link_prompt.submit[1]:stay->link_prompt": (
            "link_prompt has no timer, no entry action and no field: entering it again is staying"),
        **{f"action-dropped:{branch}:forget_login": FORGOTTEN for branch in (
            "second_factor.cancel", "second_factor.submit[0]", "link_prompt.cancel",
            "link_prompt.submit[0]")},
        "registry:action-noop:forget_login": FORGOTTEN,
    },
}
