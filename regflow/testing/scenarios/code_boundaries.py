"""Witnesses every screen that asks for a mailed code shares: each way the screen stays put,
a minute after it was entered. A branch changed to re-enter the screen instead of staying
would restart the code's timer, which then shows as another instant in the approved paths."""

from typing import Any

LATER = {"advance": 60}
WRONG = {"event": "submit", "data": {"code": "$wrong_code"}}
RESEND = {"event": "resend_code", "data": {}}


def code_stays(state: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Keep-witnesses, by guard, for the code screen ``state``."""
    note = "a minute after the screen was entered, so a re-entry would move the code's timer"
    return {
        "code_matches": {"false": [
            {"at": state, "keep": True, "note": f"a wrong code: {note}",
             "data": {"code": "$wrong_code"}, "before": [LATER]}]},
        "last_code_try": {"true": [
            {"at": state, "keep": True, "note": f"the fifth wrong code: {note}",
             "data": {"code": "$wrong_code"}, "before": [LATER, WRONG, WRONG, WRONG, WRONG]}]},
        "code_void": {"true": [
            {"at": state, "keep": True, "note": f"the right code after five wrong ones: {note}",
             "before": [LATER, WRONG, WRONG, WRONG, WRONG, WRONG]}]},
        "send_too_soon": {"true": [
            {"at": f"{state}.resend_code", "keep": True, "note": f"a resend 30 s after the code: {note}",
             "before": [{"advance": 30}]}]},
        "send_limit_reached": {"true": [
            {"at": f"{state}.resend_code", "keep": True,
             "note": "the 11th send, a minute after the 10th (nine resends three minutes apart: the "
                     f"address's 5 code mails per 15 minutes allow it): {note}",
             "before": [*[step for _ in range(9) for step in ({"advance": 180}, RESEND)], LATER]}]},
    }


def merged(*tables: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Witness tables joined guard by guard, side by side."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for table in tables:
        for guard, sides in table.items():
            for side, entries in sides.items():
                out.setdefault(guard, {}).setdefault(side, []).extend(entries)
    return out
