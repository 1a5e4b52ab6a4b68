"""The small records of the search and the moves it tries (see ``regflow.testing.paths``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import attrs

from regflow.ground.exceptions import RegflowError
from regflow.testing.model import Step, timer_id
from regflow.testing.scenario import Witness


class ExplorationError(RegflowError):
    """The flow did not behave the same when a path was replayed (a guard depends on chance)."""

    message_id = "exploration_failed"


class Undo(Exception):
    """Raised to leave a savepoint, undoing what ran inside it."""


@attrs.frozen
class Move:
    """Steps tried from a node: an event (with witness steps first) or a timer's advance."""

    steps: tuple[Step, ...]
    label: str
    loopable: bool = True
    keep: bool = False  # a witness asks for its path to be kept, new coverage or not


@attrs.frozen
class Node:
    """A place the search reached: from which start context, by which steps, covering what."""

    root: int
    steps: tuple[Step, ...]
    items: frozenset[str]
    state: str
    depth: int


@attrs.frozen
class Edge:
    """A move tried from a node, where it led, and what it did (``kind`` tells loops apart)."""

    node: int
    move: Move
    state: str
    active: bool
    target: int | None
    kind: tuple[Any, ...]


@attrs.frozen
class Found:
    """A path that added coverage when it was found."""

    root: int
    steps: tuple[Step, ...]
    items: frozenset[str]
    kept: bool = False  # kept because a witness asked (a boundary), not for new coverage


@attrs.frozen
class Tried:
    """What playing a move did: its steps as observed, the items they covered, where it ended."""

    steps: tuple[Step, ...]
    items: frozenset[str]
    state: str
    active: bool
    refused: str = ""



@contextmanager
def quiet() -> Iterator[None]:
    """Silence regflow's loggers (journal, security, mail) while the private engine runs."""
    names = [n for n in logging.root.manager.loggerDict if n == "regflow" or n.startswith("regflow.")]
    loggers = [logging.getLogger(n) for n in names]
    before = [lg.disabled for lg in loggers]
    for lg in loggers:
        lg.disabled = True
    try:
        yield
    finally:
        for lg, was in zip(loggers, before, strict=True):
            lg.disabled = was


def variant(event: str, base: Mapping[str, Any], witnesses: tuple[Witness, ...]) -> Move:
    data, meanwhile = dict(base), None
    before: list[Step] = []
    for w in witnesses:
        data.update(w.data)
        before += w.before
        meanwhile = w.meanwhile or meanwhile
    label = "+".join(w.label for w in witnesses) or "base"
    return Move((*before, Step(event=event, data=data, meanwhile=meanwhile)), f"{event}:{label}",
                keep=any(w.keep for w in witnesses) and len(witnesses) == 1)


def compatible(a: Witness, b: Witness) -> bool:
    return a.guard != b.guard and not set(a.data) & set(b.data) and not (a.meanwhile and b.meanwhile)


def deadline(label: str, seconds: int, check: Step | None = None) -> list[Move]:
    """The boundary moves of a deadline ``seconds`` away: one second before it then ``check``
    (the state's own event: it still works then); one second before then exactly at it; one
    second after it.

    With a ``check``, only its move tests the ``@-1s`` item (so the path kept for that item
    shows the event one second before the deadline); the advance to one second before it in
    the exactly-at move is then unlabelled (what fired is still recorded and replayed)."""
    early = Step(advance=seconds - 1, timer=timer_id(label, -1))
    exact = Step(advance=1, timer=timer_id(label, 0))
    late = Step(advance=seconds + 1, timer=timer_id(label, 1))
    moves: list[Move] = []
    if seconds >= 1:
        if check is not None:
            moves.append(Move((early, check), f"{check.event}:{label}@-1", loopable=False))
            early = Step(advance=seconds - 1)
        moves.append(Move((early, exact), f"{label}@0", loopable=False))
    return [*moves, Move((late,), f"{label}@+1", loopable=False)]

