"""The documentation site: docs/gen/ is what the generator makes now, the nav of mkdocs.yml names
every page and only pages that exist, the site builds in strict mode (when MkDocs is here), and
a flow's page shows its diagram whole in the text column, each state a link to its section (in
chromium, when it is here). Generating needs Graphviz, which draws the diagrams."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from regflow.docgen.site import MARKER, diagram_svg, generate, main, setting_comments, state_anchor
from regflow.machines import BUILTIN_FLOWS, builtin_library

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GEN = DOCS / "gen"
STALE = "docs/gen/ is stale: run `make docs` (or `python -m regflow.docgen docs/gen`) and commit it"
CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else shutil.which("chromium")


@pytest.fixture(scope="module")
def graphviz() -> None:
    """Generating draws the diagrams with Graphviz' dot: a one-line skip without it."""
    if shutil.which("dot") is None:
        pytest.skip("Graphviz (dot) not installed: the generated pages not checked")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _mkdocs_config() -> dict[str, Any]:
    """mkdocs.yml, with its ``!!python/name:`` tags read as plain strings."""

    class Loader(yaml.SafeLoader):
        pass

    def tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> str:
        return suffix

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", tag)
    with (ROOT / "mkdocs.yml").open(encoding="utf-8") as handle:
        config = yaml.load(handle, Loader=Loader)  # a SafeLoader that reads one more tag
    assert isinstance(config, dict)
    return config


def _nav_files(entries: Any) -> Iterator[str]:
    """Every file named by a nav (a list of pages, ``{title: page}`` and ``{title: [...]}``)."""
    if isinstance(entries, str):
        yield entries
    elif isinstance(entries, list):
        for entry in entries:
            yield from _nav_files(entry)
    elif isinstance(entries, dict):
        for value in entries.values():
            yield from _nav_files(value)


@pytest.fixture(scope="module")
def fresh(graphviz: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generator's output now, from the same docs/ and CHANGELOG.md."""
    out = tmp_path_factory.mktemp("gen")
    generate(out, docs=DOCS, changelog=ROOT / "CHANGELOG.md")
    return out


def test_generated_pages_are_current(fresh: Path) -> None:
    """Regenerating gives the checked-in docs/gen/, byte for byte, and nothing else."""
    now, checked_in = _files(fresh), _files(GEN) if GEN.is_dir() else {}
    missing = sorted(set(now) - set(checked_in))
    extra = sorted(set(checked_in) - set(now))
    changed = sorted(name for name in set(now) & set(checked_in) if now[name] != checked_in[name])
    assert (missing, extra, changed) == ([], [], []), (
        f"{STALE}\nmissing: {missing}\nnot generated any more: {extra}\nchanged: {changed}")


def test_generation_is_deterministic(fresh: Path, tmp_path: Path) -> None:
    """Two runs write the same bytes; a rerun into the same folder keeps it as it is."""
    generate(tmp_path, docs=DOCS, changelog=ROOT / "CHANGELOG.md")
    assert _files(tmp_path) == _files(fresh)
    generate(tmp_path, docs=DOCS, changelog=ROOT / "CHANGELOG.md")
    assert _files(tmp_path) == _files(fresh)


def test_a_page_per_builtin_flow_with_its_diagram(fresh: Path) -> None:
    """Each built-in flow has a page with its diagram (the SVG written into the page), its states —
    each with a section the diagram's box and the table's row link to — and its settings, and no
    ```python block (tests/test_docs.py runs those)."""
    library = builtin_library()
    for name in BUILTIN_FLOWS:
        page = (fresh / "flows" / f"{name}.md").read_text(encoding="utf-8")
        defn = library.latest(name)
        assert page.startswith(MARKER + "\n")
        assert "```python" not in page
        svg = diagram_svg(defn)
        assert f'\n<div class="regflow-diagram">\n{svg}\n</div>\n' in page, name
        assert "\n\n" not in svg  # a blank line would end Markdown's raw HTML block
        assert "<!--" not in svg
        for state in defn.states:
            anchor = state_anchor(state)
            assert f'xlink:href="#{anchor}"' in svg, (name, state)
            assert f'### <a id="{anchor}"></a>`{state}`' in page, (name, state)
            assert f"| [`{state}`](#{anchor})" in page, (name, state)
        for setting in defn.settings:
            assert f"| `{setting}` |" in page, (name, setting)
        assert f"[`{name}`]({name}.md)" in (fresh / "flows" / "index.md").read_text(encoding="utf-8")
    assert (fresh / "overview.md").read_text(encoding="utf-8").startswith(MARKER + "\n")
    assert (fresh / "overview.svg").is_file()


def test_settings_carry_the_meaning_from_the_toml_comments(fresh: Path) -> None:
    page = (fresh / "flows" / "registration.md").read_text(encoding="utf-8")
    assert "| `code_ttl` | `30m` (30 min) | an 8-digit code is valid this long |" in page
    assert "one of `reveal`, `conceal`" in page
    comments = setting_comments('[settings]\na = "x # y"  # the meaning\nb = 2\n[other]\nc = 1  # no\n')
    assert comments == {"a": "the meaning"}


def test_screenshots_and_hand_written_pages_are_linked(fresh: Path) -> None:
    """A flow page shows the flow's screenshots and links its hand-written page, by paths that
    exist from docs/gen/flows/."""
    page = (fresh / "flows" / "registration.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((\.\./[^) \"]+)", page)
    assert "../../flows/registration.md" in links
    shots = sorted(p.name for p in (DOCS / "screenshots").glob("registration-*.png"))
    assert shots, "the browser tests' screenshots are part of the docs"
    for name in shots:
        assert f"../../screenshots/{name}" in links
    for link in links:
        assert (GEN / "flows" / link).resolve().is_file(), link
    admin = (fresh / "flows" / "transfer_admin.md").read_text(encoding="utf-8")
    assert "../../flows/administration.md" in admin  # named in that page, which has no own file


def test_stale_pages_of_ours_are_removed_and_others_kept(graphviz: None, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "renamed.md").write_text(MARKER + "\n\n# old\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("# mine\n", encoding="utf-8")
    generate(tmp_path, docs=DOCS, changelog=ROOT / "CHANGELOG.md")
    assert not (tmp_path / "flows" / "renamed.md").exists()
    assert (tmp_path / "notes.md").read_text(encoding="utf-8") == "# mine\n"


def test_command_line(graphviz: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m regflow.docgen OUT --mermaid FILE``; a missing bundle exits with 2."""
    docs = tmp_path / "docs"
    bundle = tmp_path / "mermaid.min.js"
    bundle.write_text("window.mermaid = {};\n", encoding="utf-8")
    assert main([str(docs / "gen"), "--mermaid", str(bundle)]) == 0
    assert (docs / "gen" / "flows" / "registration.md").is_file()
    assert (docs / "assets" / "mermaid.min.js").read_bytes() == bundle.read_bytes()
    assert main([str(docs / "gen"), "--mermaid", str(tmp_path / "nowhere.js")]) == 2
    assert "npm ci --prefix tools/mermaid" in capsys.readouterr().err


def test_nav_names_existing_pages_and_every_page() -> None:
    """Every nav entry is a file under docs/, and every page under docs/ is in the nav."""
    config = _mkdocs_config()
    nav = list(_nav_files(config["nav"]))
    assert len(nav) == len(set(nav)), "a page is in the nav twice"
    missing = [page for page in nav if not (DOCS / page).is_file()]
    assert missing == [], f"nav entries without a file: {missing}"
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(set(pages) - set(nav)) == [], "pages missing from the nav of mkdocs.yml"


def test_mermaid_is_bundled_not_fetched() -> None:
    """The site loads Mermaid from its own assets (Material would fetch it from a CDN)."""
    config = _mkdocs_config()
    assert "assets/mermaid.min.js" in config["extra_javascript"]
    fences = [ext["pymdownx.superfences"]["custom_fences"] for ext in config["markdown_extensions"]
              if isinstance(ext, dict) and "pymdownx.superfences" in ext]
    assert fences
    assert fences[0][0]["name"] == "mermaid"
    assert config["strict"] is True


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mkdocs build --strict`` of the checked-in docs into a temporary folder."""
    pytest.importorskip("material", reason="mkdocs-material not installed: the site build not checked")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "WARNING" not in done.stderr
    return out


def test_site_builds_strictly(site: Path) -> None:
    """``mkdocs build --strict``: no broken link or anchor, no page outside the nav; a flow's
    diagram is in its page, its states' sections too."""
    page = (site / "gen" / "flows" / "registration" / "index.html").read_text(encoding="utf-8")
    assert '<div class="regflow-diagram">\n<svg' in page
    assert 'xlink:href="#state-enter_code"' in page
    assert '<a id="state-enter_code"></a>' in page
    assert (site / "gen" / "overview" / "index.html").is_file()


FIT = """() => {
    const svg = document.querySelector('.regflow-diagram svg');
    const shown = svg.getBoundingClientRect();
    const page = document.scrollingElement;
    return {
        natural: parseFloat(svg.getAttribute('width')) * 4 / 3,  // pt: 4/3 px
        shown: shown.width, right: shown.right,
        column: document.querySelector('.md-content__inner').getBoundingClientRect().right,
        sideways: page.scrollWidth > page.clientWidth,
        links: [...svg.querySelectorAll('a')].map((a) => a.getAttribute('xlink:href')),
        ids: [...document.querySelectorAll('[id]')].map((e) => e.id),
    };
}"""


@pytest.mark.parametrize("width", [1280, 1920])
def test_flow_pages_show_their_diagram_whole(site: Path, width: int) -> None:
    """In chromium at 100 % (a 1280 or 1920 px window), each flow's diagram is shown whole in the
    column — at least 90 % of its size, no sideways scrolling — and each state's box links to a
    section of the page."""
    if CHROMIUM is None or importlib.util.find_spec("playwright") is None:
        pytest.skip("no chromium or playwright: the flow pages' layout not checked")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            tab = browser.new_page(viewport={"width": width, "height": 900}, device_scale_factor=1)
            for name in BUILTIN_FLOWS:
                tab.goto((site / "gen" / "flows" / name / "index.html").as_uri())
                found = tab.evaluate(FIT)
                assert found["shown"] >= 0.9 * found["natural"], (name, found["shown"], found["natural"])
                assert found["right"] <= found["column"] + 0.5, name
                assert not found["sideways"], name
                states = builtin_library().latest(name).states
                assert sorted(found["links"]) == sorted(f"#{state_anchor(s)}" for s in states), name
                assert all(link[1:] in found["ids"] for link in found["links"]), name
        finally:
            browser.close()
