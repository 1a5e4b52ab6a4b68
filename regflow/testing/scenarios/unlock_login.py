"""Unlock a login's sign-in; the admin may unlock its own login too."""

from regflow.testing.scenarios.admin import targeted

SCENARIO = targeted("unlock_login")
del SCENARIO["witnesses"]["target_is_actor"]  # no such rule: unlocking oneself is allowed
SCENARIO["equivalent"] = {}  # no branch stays on confirm
SCENARIO["witnesses"]["target_exists"]["true"] = [
    {"note": "hana's address locked out after 10 wrong passwords: the unlock clears them", "keep": True,
     "before": [{"world": "sign_in_attempts", "email": "hana@example.jp", "password": "Wrong-pass-99",
                 "account": "abcd8-02", "count": 10}]}]
