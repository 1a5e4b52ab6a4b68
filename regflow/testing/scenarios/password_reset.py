"""Password reset: taro forgets the password; an unknown address gets a decoy."""

from typing import Any

from regflow.testing.scenarios.code_boundaries import code_stays, merged

PASSWORD = "Nw8$kLp3qR"

SCENARIO: dict[str, Any] = {
    "flow": "password_reset",
    "description": "taro@example.jp (customer 281234) sets a new password.",
    "start": "2026-03-02T09:00:00Z",
    "world": {
        "contracts": [{"customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
                       "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"]}],
        "logins": [{"email": "taro@example.jp", "customer_id": "281234", "account": "abcd8-01"}],
    },
    "data": {
        "enter_email.submit": {"email": "taro@example.jp"},
        "enter_code.submit": {"code": "$code"},
        "new_password.submit": {"password": PASSWORD, "password_confirm": PASSWORD},
    },
    "witnesses": merged(code_stays("enter_code"), {
        "send_too_soon": {"false": [
            {"note": "3 min, not the 60 s resend interval: the address's code mails across flows "
                     "(engine Limits, 5 per 15 min) then never run out before max_sends does",
             "before": [{"advance": "3m"}]},
        ]},
        "code_matches": {"false": [{"data": {"code": "$wrong_code"}}]},
        "reset_login_exists": {"true": [
            {"note": "a new password containing the login's customer number is refused (the code's "
                     "step remembered the customer)", "keep": True,
             "data": {"password": "Pw-281234-x", "password_confirm": "Pw-281234-x"}},
        ], "false": [
            {"note": "the admin deleted the login meanwhile",
             "before": [{"world": "delete_login", "email": "taro@example.jp"}]},
        ]},
    }),
}
