"""``regflow diagram`` and ``regflow check``: draw and lint built-in flows or definition files;
``regflow diagram --overview`` draws all built-in flows and the hand-overs between them.

A definition file (TOML, YAML or JSON) is loaded against the built-in registry, plus the
user's own guards, actions and validators when ``--registry MODULE:ATTR`` names a Registry
(a module next to the file is found without being on ``sys.path``).
"""

from __future__ import annotations

from pathlib import Path

import click

from regflow.cli.base import CommandFailed, main
from regflow.cli.traffic_diagram import traffic_data, traffic_options
from regflow.definitions.library import FlowLibrary
from regflow.definitions.lint import lint
from regflow.definitions.model import FlowDefinition
from regflow.definitions.registry import Registry
from regflow.diagrams.render import to_dot, to_mermaid, to_svg
from regflow.docgen.overview import overview_dot, overview_mermaid, overview_svg
from regflow.ground.catalog import DEFAULT_LANGUAGE, LANGUAGES
from regflow.ground.exceptions import DefinitionError
from regflow.machines import BUILTIN_FLOWS, builtin_library, builtin_registry


def load_file(path: Path, registry: Registry | None = None) -> FlowDefinition:
    """A definition file checked against the built-in registry (and ``registry``);
    DefinitionError with paths."""
    names = builtin_registry() | registry if registry is not None else builtin_registry()
    try:
        return FlowLibrary(names).add(path)
    except UnicodeDecodeError:
        raise DefinitionError([f"{path}: not UTF-8 text"]) from None
    except OSError as exc:
        raise DefinitionError([f"{path}: cannot read: {exc.strerror or exc}"]) from None


def user_registry(spec: str | None, *files: Path) -> Registry | None:
    """The Registry named by ``--registry MODULE:ATTR``, or None."""
    if not spec:
        return None
    from regflow.testing.scenario import ScenarioError, load_registry

    folders = [p.resolve().parent for p in files]
    try:
        return load_registry(spec, Path.cwd(), *folders)
    except (ScenarioError, ImportError) as exc:
        raise CommandFailed("registry_invalid", f"--registry {spec}: {exc}") from exc


def _definition(flow: str, registry: Registry | None) -> FlowDefinition:
    if flow in BUILTIN_FLOWS:
        return builtin_library().latest(flow)
    path = Path(flow)
    if not path.is_file():
        raise CommandFailed("flow_not_found",
                            f"{flow!r} is neither a built-in flow ({', '.join(BUILTIN_FLOWS)}) "
                            "nor a definition file")
    return load_file(path, registry)


REGISTRY_OPTION = click.option(
    "--registry", metavar="MODULE:ATTR",
    help="A Registry with the flow file's own guards, actions and validators.")


@main.command()
@click.argument("flow", required=False)
@click.option("--overview", is_flag=True,
              help="Draw every built-in flow and the hand-overs between them instead of FLOW.")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "svg"]), default="mermaid",
              show_default=True, envvar="REGFLOW_DIAGRAM_FORMAT",
              help="Mermaid, Graphviz DOT, or SVG (needs Graphviz).")
@click.option("--lang", type=click.Choice(LANGUAGES), default=DEFAULT_LANGUAGE, show_default=True,
              envvar="REGFLOW_LANG", help="The language of the screens' titles and of errors.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write to FILE instead of standard output.")
@REGISTRY_OPTION
@traffic_options
def diagram(flow: str | None, overview: bool, fmt: str, lang: str, output: Path | None,
            registry: str | None, **traffic: object) -> None:
    """Draw FLOW (a built-in flow's name or a definition file) with guards, timers and retries,
    or with --overview all built-in flows and their hand-overs."""
    if flow is not None and overview:
        raise CommandFailed("diagram_flow_and_overview", "give FLOW or --overview, not both")
    if flow is None and not overview:
        raise CommandFailed("diagram_flow_missing",
                            "give FLOW (a built-in flow's name or a definition file) or --overview")
    if flow is None:
        if registry:
            raise CommandFailed("registry_unused", "--registry is for a FLOW file, not --overview")
        traffic_data(None, fmt, lang, traffic)  # --traffic is for a FLOW: a usage error here
        data = overview_svg(lang) if fmt == "svg" else (
            overview_dot(lang) if fmt == "dot" else overview_mermaid(lang)).encode()
        what = "the built-in flows"
    else:
        try:
            defn = _definition(flow, user_registry(registry, Path(flow)))
        except DefinitionError as exc:
            for fault in exc.faults:
                click.echo(fault, err=True)
            raise click.exceptions.Exit(1) from exc
        data = traffic_data(defn, fmt, lang, traffic) or (to_svg(defn, lang=lang) if fmt == "svg" else (
            to_dot(defn, lang=lang) if fmt == "dot" else to_mermaid(defn, lang=lang)).encode())
        what = f"{defn.name} v{defn.version}"
    if output is not None:
        output.write_bytes(data)
        click.echo(f"Wrote {fmt} diagram of {what} to {output}.", err=True)
    else:
        click.echo(data, nl=False)  # bytes go to the binary stream as they are


@main.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@REGISTRY_OPTION
def check(files: tuple[Path, ...], registry: str | None) -> None:
    """Lint the built-in flows, or the definition FILEs: each fault as `path: message`.

    Exits 1 when a definition fails to load or has a lint fault, 0 when all are clean; a line
    per file on stderr says how many faults it has.
    """
    faults: list[str] = []
    checked = 0
    names = user_registry(registry, *files)
    if not files:
        library = builtin_library()
        for name in BUILTIN_FLOWS:
            faults += [str(f) for f in lint(library.latest(name))]
            checked += 1
    for path in files:
        checked += 1
        try:
            found = [str(f) for f in lint(load_file(path, names))]
        except DefinitionError as exc:
            found = exc.faults
        click.echo(f"{path}: {len(found)} fault(s)" if found else f"{path}: ok", err=True)
        faults += found
    for fault in faults:
        click.echo(fault)
    if faults:
        click.echo(f"{len(faults)} fault(s) in {checked} definition(s).", err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"{checked} definition(s) checked: no faults.", err=True)
