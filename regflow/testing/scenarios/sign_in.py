"""Sign-in (SPEC 2.1 steps 1, 6, 7 and 2.2), half an hour before the enforcement date, on seat
abcd8-01: logins of every kind — ready or not, linked elsewhere, with a second factor, of
another customer."""

from typing import Any

SCENARIO: dict[str, Any] = {
    "flow": "sign_in",
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
    "witnesses": {
        "password_matches": {"false": [{"data": {"password": "Wrong-pass-99"}}]},
        "login_ready": {"false": [{"data": {"email": "jiro@example.jp"}}]},
        "seat_of_own_customer": {"false": [{"data": {"email": "ken@other.example"}}]},
        "linked_elsewhere": {"true": [{"data": {"email": "hana@example.jp"}}]},
        "needs_second_factor": {"true": [{"data": {"email": "sachi@example.jp"}}]},
        "send_too_soon": {"false": [
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
        "before_enforcement": {"false": [{"before": [{"advance": "30m"}]}]},
    },
}
