"""The words of a flow diagram: how a branch, a timer and a retry policy are written, and where
a long line may break. Shared by the layout (``regflow.diagrams.model``) and the formats that draw
it (``regflow.diagrams.dot``, ``regflow.diagrams.mermaid``)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from regflow.definitions.model import FlowDefinition, RetryPolicy, StateDef, TransitionDef, format_duration

WRAP = 28  # columns (a wide character counts two) before a drawn line breaks between its pieces
INDENT = "\u00a0\u00a0"  # a broken line's continuation: never read as a line of its own


def after_text(defn: FlowDefinition, after: str) -> str:
    """``after 30 min``, or ``after code_ttl (30 min)`` for a duration read from a setting."""
    duration = format_duration(defn.seconds(after))
    return f"after {after[1:]} ({duration})" if after.startswith("@") else f"after {duration}"


def condition(branches: tuple[TransitionDef, ...], index: int) -> str:
    """``[guard, !unless]``; ``[else]`` for an unguarded branch after guarded ones; or nothing."""
    branch = branches[index]
    if branch.guarded:
        return "[" + ", ".join([*branch.guard, *(f"!{name}" for name in branch.unless)]) + "]"
    if any(earlier.guarded for earlier in branches[:index]):
        return "[else]"
    return ""


def branch_parts(defn: FlowDefinition, state: StateDef, event: str, index: int) -> tuple[str, ...]:
    """The pieces of a branch's text, where a drawing may break it: ``event``, ``[guards]``,
    ``/ actions``, ``⟶ message``, ``retry NAME`` (those it has)."""
    branches = state.on[event]
    branch = branches[index]
    timers = [t for t in state.after if t.event == event]
    head = " or ".join(after_text(defn, t.after) for t in timers) + f" · {event}" if timers else event
    parts = [head, condition(branches, index)]
    if branch.actions:
        parts.append("/ " + ", ".join(branch.actions))
    if branch.message is not None:
        parts.append(f"⟶ {branch.message}")
    if branch.retry != "default":
        parts.append(f"retry {branch.retry}")
    return tuple(p for p in parts if p)


def branch_text(defn: FlowDefinition, state: StateDef, event: str, index: int) -> str:
    """One branch: ``event [guards] / actions ⟶ message retry NAME``; a timer's event reads
    ``after code_ttl (30 min) · code_timeout``."""
    return " ".join(branch_parts(defn, state, event, index))


def describe_policy(policy: RetryPolicy) -> str:
    """``3 attempts, 0.2 s ×2 ≤ 2 s, full jitter``."""
    jitter = "full jitter" if policy.jitter == "full" else "no jitter"
    return (f"{policy.attempts} attempts, {policy.initial:g} s ×{policy.factor:g} ≤ {policy.max:g} s, "
            f"{jitter}")


def legend(defn: FlowDefinition) -> list[str]:
    """What holds for the whole flow: its retry policies and its inactivity expiry."""
    lines = [f"retry: {describe_policy(defn.retry['default'])}"] if "default" in defn.retry else []
    lines += [f"retry {name}: {describe_policy(policy)}"
              for name, policy in defn.retry.items() if name != "default"]
    lines.append(f"expired {after_text(defn, defn.expiry)} without activity")
    return lines


def wrap(parts: Iterable[str], width: int | None = None) -> list[str]:
    """Pieces joined into lines of at most ``width`` columns (``WRAP``) where they allow it: a
    line breaks only between pieces (a list inside a piece also after its commas); continuations
    are indented."""
    width = WRAP if width is None else width
    lines: list[str] = []
    for piece in (bit for part in parts for bit in _commas(part)):
        if lines and columns(lines[-1]) + 1 + columns(piece) <= width:
            lines[-1] += " " + piece
        else:
            lines.append(piece if not lines else INDENT + piece)
    return lines


def _commas(part: str) -> list[str]:
    """``[a, b, c]`` as ``[a,`` ``b,`` ``c]``: where a long list may break."""
    bits = part.split(", ")
    return [bit + "," for bit in bits[:-1]] + [bits[-1]]


def columns(text: str) -> int:
    """The width of a text in columns: a wide (East Asian) character counts two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
