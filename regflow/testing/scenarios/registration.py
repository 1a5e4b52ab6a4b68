"""Registration: a customer with one login already (taro, its admin), a
new address to register, and the contract the details must match."""

from typing import Any

from regflow.testing.scenarios.code_boundaries import code_stays, merged

PASSWORD = "Kx7#mPq2wZ"
CONTRACT = {"customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
            "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"]}
OTHER = {"customer_id": "285555", "phone": "06-5555-0000", "licenses": 2, "accounts": ["wxyz5-01"]}

SCENARIO: dict[str, Any] = {
    "equivalent": {
        "action-dropped:details.submit[5]:count_mismatch": (
            "the branch ends the flow (failed): the count it adds to is never read again"),
    },
    "flow": "registration",
    "refused_starts": [{"context": {"account": "zzzz9-99"}, "note": "a seat no contract has"}],
    "description": "new@example.jp registers on seat abcd8-01 of customer 281234 (3 licenses, one used); "
                   "customer 285555 (seat wxyz5-01) is another contract.",
    "start": "2026-03-02T09:00:00Z",
    "context": {"account": "abcd8-01"},
    "world": {
        "contracts": [CONTRACT, OTHER],
        "logins": [{"email": "taro@example.jp", "customer_id": "281234"}],
    },
    "data": {
        "enter_email.submit": {"email": "new@example.jp"},
        "email_taken.submit": {"current_password": PASSWORD},  # taro's: world logins have it
        "enter_code.submit": {"code": "$code"},
        "details.submit": {"password": PASSWORD, "password_confirm": PASSWORD, "customer_id": "281234",
                           "display_name": "山田 花子", "tel": "03-1234-5678"},
    },
    "witnesses": merged(code_stays("enter_code"), {
        "provisioning.ok": {"true": [
            {"keep": True, "before": [{"advance": "5m"}],
             "note": "OK five minutes into provisioning: the flow keeps waiting for its timer (a "
                     "re-entry would restart it)"},
        ]},
        "seat_linked": {"true": [
            {"at": "enter_email", "note": "the seat in use has had its registration: taro linked it",
             "before": [{"world": "link", "email": "taro@example.jp", "account": "abcd8-01"}]},
            {"at": "details", "note": "the seat got linked while this registration ran",
             "before": [{"world": "link", "email": "taro@example.jp", "account": "abcd8-01"}]},
        ]},
        "email_registered": {"true": [
            {"at": "enter_email", "data": {"email": "taro@example.jp"}},
            {"at": "details", "note": "someone registered the address meanwhile",
             "before": [{"world": "add_login", "email": "new@example.jp", "customer_id": "281234"}]},
        ]},
        "reveals_existing_email": {"false": [
            {"data": {"email": "taro@example.jp"},
             "before": [{"world": "settings", "values": {"existing_email": "conceal"}}]},
        ]},
        "send_too_soon": {"false": [
            {"note": "3 min, not the 60 s resend interval: the address's code mails across flows "
                     "(engine Limits, 5 per 15 min) then never run out before max_sends does",
             "before": [{"advance": "3m"}]},
        ]},
        "code_matches": {"false": [{"data": {"code": "$wrong_code"}}]},
        "contract_matches": {"false": [
            {"data": {"tel": "03-9999-9999"}},
            {"note": "the number and phone of another customer's contract: the seat in use is not "
                     "one of its seats", "keep": True,
             "data": {"customer_id": "285555", "tel": "06-5555-0000"}},
        ]},
        "seat_free": {"true": [
            {"note": "the customer has no login yet: the first registrant becomes its admin (I4)",
             "keep": True, "before": [{"world": "delete_login", "email": "taro@example.jp"}]},
        ], "false": [
            {"note": "two more logins fill the three seats",
             "before": [{"world": "add_login", "email": "jiro@example.jp", "customer_id": "281234"},
                        {"world": "add_login", "email": "hana@example.jp", "customer_id": "281234"}]},
        ]},
    }),
}
