"""The world of the administration flows: customer 281234 with its admin taro (whose
session acts), hana (ready, linked) and jiro (still being set up)."""

from typing import Any

WORLD: dict[str, Any] = {
    "contracts": [{"customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
                   "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"]}],
    "logins": [
        {"email": "taro@example.jp", "customer_id": "281234", "account": "abcd8-01"},
        {"email": "hana@example.jp", "customer_id": "281234", "account": "abcd8-02"},
        {"email": "jiro@example.jp", "customer_id": "281234", "ready": False},
    ],
}
ON_HANA = {"target": "$login:hana@example.jp"}
ON_SELF = {"context": {"target": "$login:taro@example.jp"}, "note": "the admin picks its own login"}
DEMOTED = {"meanwhile": {"world": "make_admin", "email": "hana@example.jp"},
           "note": "a transfer of the admin role lands while the step runs (a race)"}
TARGET_GONE = {"before": [{"world": "delete_login", "email": "hana@example.jp"}],
               "note": "another admin flow deleted the target meanwhile"}


SAME_SCREEN = ("confirm has no timer and no field; entering it again runs describe_target, "
               "which names the same target: the screen is the one that stayed")


def targeted(flow: str, **witnesses: Any) -> dict[str, Any]:
    """The scenario of an admin flow on a target login (hana unless a witness says)."""
    stays = {"transfer_admin": ("confirm.submit[0]", "confirm.submit[3]")}.get(flow, ("confirm.submit[0]",))
    return {
        "equivalent": {f"retarget:{branch}:stay->confirm": SAME_SCREEN for branch in stays},
        "flow": flow, "description": f"taro, the admin, runs {flow} on hana.",
        "start": "2026-03-02T09:00:00Z", "session": "taro@example.jp", "context": ON_HANA,
        "world": WORLD,
        "witnesses": {"target_is_actor": {"true": [ON_SELF]}, "still_admin": {"false": [DEMOTED]},
                      "target_exists": {"false": [TARGET_GONE]}, **witnesses},
    }


def policy(flow: str, session: str, **witnesses: Any) -> dict[str, Any]:
    """The scenario of a two-factor setting flow."""
    return {
        "flow": flow, "description": f"{session} runs {flow}.",
        "start": "2026-03-02T09:00:00Z", "session": session, "world": WORLD,
        "data": {"confirm.submit": {"enabled": True}}, "witnesses": witnesses,
    }
