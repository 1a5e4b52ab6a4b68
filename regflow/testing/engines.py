"""Engines for testing a flow: its definition loaded next to the built-in ones, every guard
wrapped so each answer is recorded (which state, which event, true or false), and a clock the
runner can move.

The recording is how coverage is measured rather than assumed: a path covers a guard outcome
only when the engine really asked that guard there and got that answer.
"""

from __future__ import annotations

import functools
import pathlib
import tomllib
import weakref
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from importlib import resources
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, cast

import attrs
import cattrs

from regflow.bootstrap import make_hasher, open_mailer, open_store
from regflow.definitions.library import FlowLibrary
from regflow.definitions.model import FlowDefinition
from regflow.definitions.registry import Guard, Registry
from regflow.engine import Engine
from regflow.ground.clock import ManualClock
from regflow.machines import BUILTIN_FLOWS, builtin_library, builtin_registry
from regflow.runtime.context import Composer, FlowContext
from regflow.testing.world import ClockDriver, clock_driver


class GuardCall(NamedTuple):
    """One answer of one guard in one step of one flow."""

    flow_id: str
    state: str
    event: str
    guard: str
    result: bool


class Recorder:
    """Collects guard answers; can slip a change of the world in just before a guard is asked."""

    def __init__(self) -> None:
        self.calls: list[GuardCall] = []
        self._armed: dict[tuple[str, str], Callable[[FlowContext], None]] = {}

    def wrap(self, registry: Registry) -> Registry:
        """A registry like ``registry`` whose guards report to this recorder."""
        wrapped = Registry()
        wrapped.actions.update(registry.actions)
        wrapped.validators.update(registry.validators)
        wrapped.guards.update({name: self._guard(name, fn) for name, fn in registry.guards.items()})
        return wrapped

    def _guard(self, name: str, fn: Guard) -> Guard:
        def recorded(ctx: FlowContext) -> bool:
            hook = self._armed.pop((ctx.flow.id, name), None)
            if hook is not None:
                hook(ctx)
            result = bool(fn(ctx))
            self.calls.append(GuardCall(ctx.flow.id, ctx.flow.state, ctx.event, name, result))
            return result

        recorded.__name__, recorded.__doc__ = name, fn.__doc__
        return recorded

    def arm(self, flow_id: str, guard: str, hook: Callable[[FlowContext], None]) -> None:
        """Run ``hook`` (in the step's transaction) the next time ``guard`` is asked for the flow."""
        self._armed[(flow_id, guard)] = hook

    def disarm(self, flow_id: str) -> list[str]:
        """Forget the flow's hooks; the guards of those that never ran."""
        left = sorted(g for f, g in self._armed if f == flow_id)
        self._armed = {k: v for k, v in self._armed.items() if k[0] != flow_id}
        return left

    def take(self, flow_id: str) -> list[GuardCall]:
        """The answers recorded for the flow since the last ``take`` (others are dropped)."""
        calls, self.calls = self.calls, []
        return [c for c in calls if c.flow_id == flow_id]


@attrs.frozen(eq=False)
class FlowSource:
    """Where the flow under test comes from: built in, a definition file or a mapping, with the
    registry of the user's own guards, actions and validators (added to the built-in ones)."""

    name: str
    file: pathlib.Path | None = None
    mapping: Mapping[str, Any] | None = None
    registry: Registry | None = None
    replaces: bool = False  # this flow's definition stands in for the built-in one of its name

    def library(self, recorder: Recorder | None = None) -> FlowLibrary:
        """The built-in flows and this one, on a registry wrapped by ``recorder`` if given
        (with ``replaces``: the built-in flows but the one named ``name``, then this one)."""
        names = builtin_registry() | self.registry if self.registry is not None else builtin_registry()
        wrapped = recorder.wrap(names) if recorder is not None else names
        library = _builtin_library_but(self.name, wrapped) if self.replaces else builtin_library(wrapped)
        if self.file is not None:
            library.add(self.file)
        elif self.mapping is not None:
            library.add(self.mapping)
        return library

    def describe(self) -> str:
        """The flow's name, or its file."""
        return str(self.file) if self.file is not None else self.name


@functools.cache
def _builtin_raw(name: str) -> Mapping[str, Any]:
    """A built-in definition file as parsed TOML (read once; the loader does not change it)."""
    text = resources.files("regflow.machines").joinpath(f"{name}.toml").read_text("utf-8")
    return MappingProxyType(tomllib.loads(text))


def _builtin_library_but(flow: str, registry: Registry) -> FlowLibrary:
    """``builtin_library(registry)`` without the built-in flow ``flow`` (which a mutant or an
    edited copy replaces)."""
    library = FlowLibrary(builtin_registry() | registry)
    for name in BUILTIN_FLOWS:
        if name != flow:
            library.add(_builtin_raw(name), root=name)
    return library


def flow_source(flow: str | pathlib.Path | FlowDefinition | Mapping[str, Any],
                registry: Registry | None = None) -> FlowSource:
    """A FlowSource from a built-in name, a definition file, a mapping or a loaded definition
    (loaded once here, so a broken definition fails with its DefinitionError at once)."""
    if isinstance(flow, FlowDefinition):
        if flow.name in BUILTIN_FLOWS and registry is None:
            source = FlowSource(flow.name)
            if source.library().latest(flow.name) == flow:
                return source
        mapping: Mapping[str, Any] = cattrs.Converter().unstructure(flow)
    elif isinstance(flow, Mapping):
        mapping = flow
    elif isinstance(flow, str) and flow in BUILTIN_FLOWS and not pathlib.Path(flow).suffix:
        return FlowSource(flow, registry=registry)
    else:
        probe = FlowSource("", file=pathlib.Path(flow).resolve(), registry=registry)
        return attrs.evolve(probe, name=_added(probe))
    probe = FlowSource("", mapping=dict(mapping), registry=registry)
    return attrs.evolve(probe, name=_added(probe))


def _added(source: FlowSource) -> str:
    library = FlowLibrary((builtin_registry() | source.registry) if source.registry else builtin_registry())
    return (library.add(source.file) if source.file is not None else library.add(source.mapping or {})).name


@attrs.frozen(eq=False)
class Meta:
    """What a testing engine carries besides itself."""

    recorder: Recorder
    driver: ClockDriver
    source: FlowSource


_META: weakref.WeakKeyDictionary[Engine, Meta] = weakref.WeakKeyDictionary()


def engine_meta(engine: Engine) -> Meta | None:
    """The recorder, clock driver and flow source of an engine made here, else None."""
    return _META.get(engine)


class Sourced(Protocol):
    """A path or a path set: anything that says which FlowSource it came from."""

    @property
    def source(self) -> FlowSource: ...


def make_engine(target: FlowSource | Sourced, db: str = "memory://", *, clock: object | None = None,
                **options: Any) -> Engine:
    """A fresh engine on ``db`` (memory mail, fast hasher unless ``hasher=``) for the flow of a
    path, a path set or a FlowSource, its guards recorded. ``clock``: a ``regflow.ManualClock``
    (the default, made here) or a freezegun factory (the engine then reads the frozen clock)."""
    source = target if isinstance(target, FlowSource) else target.source
    recorder = Recorder()
    manual = ManualClock() if clock is None else clock if isinstance(clock, ManualClock) else None
    driver = clock_driver(manual if manual is not None else clock)
    options.setdefault("hasher", "fast")
    engine = Engine.from_url(db, mail="memory", clock=manual, flows=source.library(recorder), **options)
    engine.services.composer = TemplateStamp(engine.services.composer)
    _META[engine] = Meta(recorder, driver, source)
    return engine


TEMPLATE_HEADER = "X-Regflow-Template"


class TemplateStamp:
    """A composer whose mail names its template in an ``X-Regflow-Template`` header, so an
    approved path can say which mail a step sent (testing engines only)."""

    def __init__(self, composer: Composer) -> None:
        self.composer = composer

    def compose(self, template: str, lang: str, to: str, params: Mapping[str, Any], *,
                message_id: str | None = None) -> Any:
        """The composer's message, stamped."""
        message = self.composer.compose(template, lang, to, params, message_id=message_id)
        message[TEMPLATE_HEADER] = template
        return message


class LightComposer:
    """Mail with nothing but the code in its body: what exploring needs, at a fraction of the
    cost of rendering templates."""

    def compose(self, template: str, lang: str, to: str, params: Mapping[str, Any], *,
                message_id: str | None = None) -> EmailMessage:
        """A text/plain message to ``to`` whose body is the code (or the template's name)."""
        message = EmailMessage()
        message["From"] = "regflow <no-reply@regflow.invalid>"
        message["To"] = to
        message["Subject"] = template
        if message_id:
            message["Message-ID"] = message_id
        message.set_content(str(params.get("code", template)))
        return message


def exploring_engine(source: FlowSource) -> tuple[Engine, ManualClock, list[EmailMessage]]:
    """A private memory engine for the generator (its store's nested transactions are the
    savepoints the search backtracks with), its clock and the list its mailer fills."""
    recorder, clock, mailer = Recorder(), ManualClock(), open_mailer("memory")
    engine = Engine(open_store("memory://"), mailer, hasher=make_hasher("fast"), clock=clock,
                    flows=source.library(recorder), composer=LightComposer())
    _META[engine] = Meta(recorder, clock, source)
    sent: list[EmailMessage] = cast(Any, mailer).messages  # the memory mailer's list
    return engine, clock, sent
