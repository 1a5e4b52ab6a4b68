"""The words of a flow diagram: how a branch, a timer and a retry policy are written. Shared by
the layout (``regflow.diagram_model``) and the formats that draw it (``regflow.diagrams``)."""

from __future__ import annotations

from regflow.definition import FlowDefinition, RetryPolicy, StateDef, TransitionDef, format_duration


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


def branch_text(defn: FlowDefinition, state: StateDef, event: str, index: int) -> str:
    """One branch: ``event [guards] / actions ⟶ message retry NAME``; a timer's event reads
    ``after code_ttl (30 min) · code_timeout``."""
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
    return " ".join(p for p in parts if p)


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
