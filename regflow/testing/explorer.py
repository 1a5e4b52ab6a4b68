"""The search behind ``generate_paths`` (the algorithm is described in ``regflow.testing.paths``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import combinations
from typing import Any

from regflow.definitions.model import FlowDefinition
from regflow.ground.exceptions import RegflowError
from regflow.testing.engines import FlowSource, engine_meta, exploring_engine
from regflow.testing.model import OFFSETS, Step, expiry_label, expiry_states, items_of, timer_id
from regflow.testing.moves import (
    Edge,
    ExplorationError,
    Found,
    Move,
    Node,
    Tried,
    Undo,
    compatible,
    deadline,
    quiet,
    variant,
)
from regflow.testing.pathset import Coverage, Path, PathSet
from regflow.testing.runner import Player
from regflow.testing.scenario import Scenario, ScenarioError

MAX_DEPTH = 12  # moves from the start
MAX_NODES = 400
MAX_LOOPS = 24  # loops pumped per state
PRIMARY = "submit"  # the event sent one second before a deadline


class Explorer:
    """One search over one flow; ``explore()`` answers the PathSet."""

    def __init__(self, source: FlowSource, scenario: Scenario) -> None:
        self.source, self.scenario, self.flow = source, scenario, source.name
        self.engine, self.clock, self.sent = exploring_engine(source)
        meta = engine_meta(self.engine)
        assert meta is not None
        self.recorder = meta.recorder
        self.token: str | None = None
        scenario.check(self.engine.flows.latest(self.flow))
        world = self._player()
        try:
            world.setup_world()  # the world (and the scenario's settings) first: the rest reads them
        except (LookupError, ValueError, RegflowError) as exc:
            raise ScenarioError([f"scenario.world: {exc}"]) from exc
        self.token = world.token
        self.defn: FlowDefinition = self.engine.flows.latest(self.flow)
        self.items = items_of(self.defn)
        self.order = {item.id: n for n, item in enumerate(self.items)}
        self.at_state = {s: [i.id for i in self.items if i.kind != "timers" and i.id.startswith(f"{s}.")]
                         for s in self.defn.states}
        self.expiry_states = expiry_states(self.defn)
        numbers = [v for v in self.defn.settings.values() if isinstance(v, int) and not isinstance(v, bool)]
        self.bound = min(32, max([5, *numbers]) + 2)
        self.contexts = scenario.contexts()
        self.covered: dict[str, int] = {}
        self.found: list[Found] = []
        self.nodes: list[Node] = []
        self.keys: dict[tuple[Any, ...], int] = {}
        self.edges: dict[int, list[Edge]] = {}
        self.refused: dict[str, str] = {}
        self.kept_labels: set[str] = set()

    # ---- running ---------------------------------------------------------------------------------

    def _player(self) -> Player:
        player = Player(self.engine, self.flow, self.scenario, self.clock, self.recorder, check=False)
        player.token = self.token
        return player

    @contextmanager
    def savepoint(self, player: Player | None = None) -> Iterator[None]:
        """Run a block, then undo everything it did (to ``player``'s deadlines too)."""
        now, mails = self.clock.now(), len(self.sent)
        settings = dict(self.engine.flows.latest(self.flow).settings)
        timing = player.timing if player is not None else None
        try:
            with self.engine.store.transaction():
                yield
                raise Undo
        except Undo:
            pass
        finally:
            self.clock.set(now)
            del self.sent[mails:]
            if player is not None and timing is not None:
                player.timing = timing
            if self.engine.flows.latest(self.flow).settings != settings:
                self.engine.flows.configure(self.flow, settings)
            self.recorder.calls.clear()

    def _replay(self, node: Node) -> Player:
        player = self._player()
        player.begin(self.contexts[node.root])
        for step in node.steps:
            got = player.play(step).step
            if (got.expect, got.fired) != (step.expect, step.fired):
                raise ExplorationError(
                    f"{self.flow}: replaying '{step.describe()}' gave {got.expect!r}, not {step.expect!r}: "
                    "the flow does not behave the same twice (does a guard depend on chance?)")
        return player

    def _try(self, player: Player, move: Move) -> Tried | None:
        steps: list[Step] = []
        items: set[str] = set()
        refused = ""
        try:
            for step in move.steps:
                seen = player.play(step)
                steps.append(seen.step)
                items |= seen.items
                if seen.outcome == "invalid":
                    refused = ", ".join(seen.messages)
        except (RegflowError, LookupError, ValueError):
            return None  # the move does not apply here (e.g. a world change on a login that is gone)
        return Tried(tuple(steps), frozenset(items), seen.state, seen.active, refused)

    def _keep(self, root: int, steps: tuple[Step, ...], items: frozenset[str], *,
              label: str | None = None) -> None:
        """Keep a path that reached something new, or (``label``) the first path of a witness
        that asks to be kept (``keep``: a boundary whose outcome the approved paths must show)."""
        mine = frozenset(i for i in items if i in self.order)
        forced = label is not None and label not in self.kept_labels
        if forced or any(i not in self.covered for i in mine):
            if forced:
                self.kept_labels.add(str(label))
            self.found.append(Found(root, steps, mine, kept=forced))
            for item in mine:
                self.covered.setdefault(item, len(self.found) - 1)

    # ---- moves -----------------------------------------------------------------------------------

    def _moves(self, player: Player, state: str, *, pairs: bool = True,
               events: frozenset[str] | None = None) -> list[Move]:
        moves: list[Move] = []
        for event in self.defn.states[state].user_events:
            if events is not None and event not in events:
                continue
            base = self.scenario.data_for(state, event)
            found = self.scenario.witnesses_at(self.defn, state, event)
            moves.append(variant(event, base, ()))
            moves += [variant(event, base, (w,)) for w in found]
            if pairs:
                moves += [variant(event, base, pair) for pair in combinations(found, 2)
                          if compatible(*pair)]
        return moves if events is not None else moves + self._timer_moves(player, state)

    def _timer_moves(self, player: Player, state: str) -> list[Move]:
        """The boundary moves of each pending timer and of the inactivity expiry, their advances
        computed from the definition's deadlines (``player.timing``), not the engine's."""
        now = self.clock.now()
        moves: list[Move] = []
        if player.timing.state != state:
            return moves
        check = self._primary(state)
        for label, due in player.deadlines():
            if (seconds := int((due - now).total_seconds())) >= 0:
                moves += deadline(label, seconds, check)
        label, expires = expiry_label(state), player.timing.expires
        if (state in self.expiry_states and expires is not None
                and any(timer_id(label, o) not in self.covered for o in OFFSETS)
                and (seconds := int((expires - now).total_seconds())) >= 0):
            moves += deadline(label, seconds, check)
        return moves

    def _primary(self, state: str) -> Step | None:
        """The state's ``submit`` with the scenario's base data, if its screen offers it: sent
        one second before a deadline, to show the state still works then."""
        found = self.defn.states[state]
        offered = {a.event for a in found.screen.actions} if found.screen is not None else set()
        if PRIMARY not in offered or PRIMARY not in found.user_events:
            return None
        return Step(event=PRIMARY, data=self.scenario.data_for(state, PRIMARY))

    # ---- the search ------------------------------------------------------------------------------

    def explore(self) -> PathSet:
        """Search, pump, choose (the private engine's log records are dropped meanwhile)."""
        with quiet():
            return self._explore()

    def _explore(self) -> PathSet:
        for root, context in enumerate(self.contexts):
            with self.savepoint():
                player = self._player()
                seen = player.begin(context)
                self._keep(root, (), seen.items)
                self._node(Node(root, (), seen.items, seen.state, 0), (root, *player.key()))
        n = 0
        while n < len(self.nodes):
            self._expand(n)
            n += 1
        for state in self.defn.states:
            self._pump(state)
        return self._result()

    def _node(self, node: Node, key: tuple[Any, ...]) -> int | None:
        if key in self.keys:
            return self.keys[key]
        if len(self.nodes) >= MAX_NODES:
            return None
        self.keys[key] = len(self.nodes)
        self.nodes.append(node)
        return self.keys[key]

    def _expand(self, n: int) -> None:
        node = self.nodes[n]
        edges = self.edges.setdefault(n, [])
        with self.savepoint():
            player = self._replay(node)
            for move in self._moves(player, node.state):
                with self.savepoint(player):
                    tried = self._try(player, move)
                    if tried is None:
                        continue
                    if tried.refused:
                        self.refused.setdefault(f"{node.state}.{move.label.split(':')[0]}", tried.refused)
                    steps, items = node.steps + tried.steps, node.items | tried.items
                    self._keep(node.root, steps, items, label=move.label if move.keep else None)
                    target = None
                    if tried.active and node.depth + 1 < MAX_DEPTH:
                        child = Node(node.root, steps, items, tried.state, node.depth + 1)
                        target = self._node(child, (node.root, *player.key()))
                    kind = (tuple(sorted(tried.items)), tuple(s.advance is not None for s in tried.steps))
                    edges.append(Edge(n, move, tried.state, tried.active, target, kind))

    def _missing(self, state: str) -> frozenset[str]:
        """Events of ``state`` with items still uncovered (and not declared unreachable)."""
        return frozenset(i[len(state) + 1:].split("?")[0].split("[")[0] for i in self.at_state[state]
                         if i not in self.covered and i not in self.scenario.unreachable)

    def _loops(self, state: str) -> list[tuple[tuple[Move, str], ...]]:
        loops: list[tuple[tuple[Move, str], ...]] = []
        kinds: set[tuple[Any, ...]] = set()
        for n, node in enumerate(self.nodes):
            if node.state != state:
                continue
            for edge in self.edges.get(n, []):
                if not (edge.active and edge.move.loopable):
                    continue
                if edge.state == state and "+" not in edge.move.label and edge.kind not in kinds:
                    kinds.add(edge.kind)
                    loops.append(((edge.move, state),))
                elif edge.state != state and edge.target is not None:
                    for back in self.edges.get(edge.target, []):
                        kind = (edge.kind, back.kind)
                        if back.active and back.move.loopable and back.state == state and kind not in kinds:
                            kinds.add(kind)
                            loops.append(((edge.move, edge.state), (back.move, state)))
        return loops[:MAX_LOOPS]

    def _pump(self, state: str) -> None:
        if not self._missing(state):
            return
        loops = self._loops(state)
        for node in self.nodes:
            for loop in loops if node.state == state else ():
                if not self._missing(state):
                    return
                self._pump_loop(node, loop)

    def _pump_loop(self, node: Node, loop: tuple[tuple[Move, str], ...]) -> None:
        with self.savepoint():
            player = self._replay(node)
            steps, items = node.steps, node.items
            for _ in range(self.bound):
                for move, expected in loop:
                    tried = self._try(player, move)
                    if tried is None or tried.state != expected or not tried.active:
                        return
                    steps, items = steps + tried.steps, items | tried.items
                self._keep(node.root, steps, items)
                missing = self._missing(node.state)
                if not missing:
                    return
                for move in self._moves(player, node.state, pairs=False, events=missing):
                    with self.savepoint(player):
                        tried = self._try(player, move)
                        if tried is not None:
                            self._keep(node.root, steps + tried.steps, items | tried.items)

    # ---- the answer ------------------------------------------------------------------------------

    def _result(self) -> PathSet:
        chosen = [i for i, f in enumerate(self.found) if f.kept]  # the witnesses' own paths
        remaining = set(self.covered) - {i for n in chosen for i in self.found[n].items}
        while remaining:
            best = max(range(len(self.found)), key=lambda i: (len(self.found[i].items & remaining), -i))
            chosen.append(best)
            remaining -= self.found[best].items
        paths = tuple(
            Path(id=f"{self.flow}-{n:02d}", flow=self.flow, context=dict(self.contexts[f.root]),
                 steps=f.steps, covers=tuple(sorted(f.items, key=self.order.__getitem__)),
                 source=self.source, scenario=self.scenario)
            for n, f in enumerate((self.found[i] for i in sorted(chosen)), 1))
        coverage = Coverage(tuple(self.items), frozenset(self.covered), dict(self.scenario.unreachable))
        notes = [f"{key}: the data was refused ({why}); give it under the scenario's data"
                 for key, why in sorted(self.refused.items())
                 if key.split(".")[1] in self._missing(key.split(".")[0])]
        return PathSet(self.flow, self.defn.version, paths, coverage, self.scenario, self.source,
                       tuple(notes))

