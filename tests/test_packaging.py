"""regflow as a user installs it: the wheel built from this tree, installed with only the
``testing`` extra into a fresh virtual environment (no system site packages), then used there —
the version everywhere, the metadata, the examples, the pytest plugin loaded for nothing.

One build and one install for the module (under a minute; pip's cache and the local wheel folders
serve the dependencies). If no package index can be reached, the module is skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import attrs
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = PYPROJECT["project"]["version"]
EXAMPLE_FILES = {"invitation.yaml", "invitation_steps.py", "invitation_scenario.yaml",
                 "invitation.approved.json", "test_invitation.py", "spa.html"}
HEAVY = ("freezegun", "transitions", "peewee", "flask", "regflow.engine")
# What pip says when it cannot reach an index (then the install is not what is being tested).
UNREACHABLE = re.compile(r"No matching distribution found|Could not find a version|"
                         r"Failed to establish a new connection|Temporary failure in name resolution|"
                         r"Network is unreachable")
SKIP_TREE = shutil.ignore_patterns(".venv", ".git", "build", "dist", "site", "demo", "node_modules",
                                   "__pycache__", "*.egg-info", ".mypy_cache", ".ruff_cache",
                                   ".pytest_cache", ".schemathesis", "regflow.db*", "outbox")


@attrs.frozen
class Installed:
    """A fresh virtual environment with the wheel installed, and where to run things in it."""

    venv: Path
    work: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(self, *args: str | Path, cwd: Path | None = None,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """A program of the venv (``regflow``, ``pytest``) or its python (``-c ...``)."""
        program = self.venv / "bin" / str(args[0]) if args[0] != "python" else self.python
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTEST_ADDOPTS")
               and not k.startswith("REGFLOW_")}
        env.update(extra_env or {})
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return subprocess.run([str(program), *map(str, args[1:])], cwd=cwd or self.work, env=env,
                              capture_output=True, text=True, timeout=300, check=False)

    def dist_info(self) -> Path:
        found = list(self.venv.glob(f"lib/python*/site-packages/regflow-{VERSION}.dist-info"))
        assert len(found) == 1, found
        return found[0]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the wheel from a copy of this tree (no stale build/ folder can leak into it), make
    a venv and install the wheel with the ``testing`` extra."""
    base = tmp_path_factory.mktemp("packaging")
    source, dist, venv, work = base / "source", base / "dist", base / "venv", base / "work"
    shutil.copytree(ROOT, source, ignore=SKIP_TREE, symlinks=True)
    work.mkdir()
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist),
                            str(source)], capture_output=True, text=True, timeout=600, check=False)
    if built.returncode != 0 and UNREACHABLE.search(built.stderr + built.stdout):
        pytest.skip("no package index reachable to build the wheel")
    assert built.returncode == 0, built.stderr
    wheels = list(dist.glob("regflow-*.whl"))
    assert [w.name for w in wheels] == [f"regflow-{VERSION}-py3-none-any.whl"]
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = Installed(venv, work)
    done = env.run("python", "-m", "pip", "install", "-q", f"{wheels[0]}[testing]")
    if done.returncode != 0 and UNREACHABLE.search(done.stderr + done.stdout):
        pytest.skip("no package index reachable to install the wheel's dependencies")
    assert done.returncode == 0, done.stderr
    return env


def test_it_is_the_wheel_in_a_bare_venv(installed: Installed) -> None:
    """regflow comes from the venv's site-packages, and the venv sees no system packages."""
    done = installed.run("python", "-c", "import regflow; print(regflow.__file__)")
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.splitlines()[0]).is_relative_to(installed.venv)
    cfg = (installed.venv / "pyvenv.cfg").read_text(encoding="utf-8")
    assert "include-system-site-packages = false" in cfg


def test_the_version_everywhere(installed: Installed) -> None:
    """``regflow --version``, ``python -m regflow --version`` and ``regflow.__version__`` give
    the version of pyproject.toml."""
    for command in (("regflow", "--version"), ("python", "-m", "regflow", "--version")):
        done = installed.run(*command)
        assert done.returncode == 0, (command, done.stderr)
        assert done.stdout.strip() == f"regflow {VERSION}", command
    done = installed.run("python", "-c", "import regflow; print(regflow.__version__)")
    assert done.stdout.strip() == VERSION, done.stderr


HELP = [("regflow", "-h"), ("regflow", "--help"), ("python", "-m", "regflow", "-h")]


@pytest.mark.parametrize("command", HELP)
def test_help(installed: Installed, command: tuple[str, ...]) -> None:
    """``-h`` is help, as ``--help`` is; the program is called ``regflow`` however it is run."""
    done = installed.run(*command)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: regflow "), done.stdout
    for name in ("serve", "run", "paths", "diagram"):
        assert re.search(rf"^\s+{name}\b", done.stdout, re.M), name


def test_metadata(installed: Installed) -> None:
    """An SPDX license expression with the license file, classifiers, keywords, and the extras."""
    info = installed.dist_info()
    lines = (info / "METADATA").read_text(encoding="utf-8").splitlines()
    fields: dict[str, list[str]] = {}
    for line in lines[:lines.index("")]:
        key, _, value = line.partition(": ")
        fields.setdefault(key, []).append(value)
    assert fields["License-Expression"] == ["MIT"]
    assert fields["License-File"] == ["LICENSE"]
    license_text = (info / "licenses" / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License")
    assert "Copyright (c) 2026 the regflow authors" in license_text
    assert {"Programming Language :: Python :: 3.11", "Typing :: Typed", "Framework :: Pytest",
            "Development Status :: 3 - Alpha"} <= set(fields["Classifier"])
    assert {"registration", "state machine"} <= set(fields["Keywords"][0].split(","))
    assert fields["Requires-Python"] == [">=3.11"]
    assert set(fields["Provides-Extra"]) == {"postgres", "testing", "docs", "dev", "test", "bench"}
    testing = sorted(r.split(";")[0] for r in fields["Requires-Dist"] if 'extra == "testing"' in r)
    assert testing == ["freezegun>=1.5", "pytest>=8"]
    urls = fields.get("Project-URL", [])
    assert urls == [], "URLs only where they are real: this project has none yet"


def test_only_the_testing_extra_came_along(installed: Installed) -> None:
    """pytest and freezegun are there; the tools of the ``dev`` extra are not."""
    done = installed.run("python", "-m", "pip", "list", "--format=json")
    names = {p["name"].lower() for p in json.loads(done.stdout)}
    assert {"regflow", "pytest", "freezegun"} <= names
    assert not names & {"playwright", "mypy", "ruff", "mkdocs-material", "hypothesis", "psycopg"}


def test_the_examples_are_installed(installed: Installed) -> None:
    """The example flow of docs/testing.md ships as package data, found by importlib.resources."""
    listing = ("from importlib.resources import files\n"
               "for p in (files('regflow') / 'examples').iterdir(): print(p.name)")
    done = installed.run("python", "-c", listing)
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) >= EXAMPLE_FILES


def test_the_plugin_costs_nothing_until_used(installed: Installed) -> None:
    """Loading the plugin (as pytest does for every run) imports none of freezegun, the engine
    or its libraries; ``import regflow`` does not either."""
    probe = ("import sys, importlib; importlib.import_module(sys.argv[1]); "
             f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    for module in ("regflow.testing.plugin", "regflow", "regflow.testing"):
        done = installed.run("python", "-c", probe, module)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "", (module, done.stdout)


def test_the_fixtures(installed: Installed) -> None:
    """The plugin's fixtures are ``regflow_``-prefixed; ``frozen_clock`` stays as an alias."""
    (installed.work / "test_nothing.py").write_text("def test_nothing():\n    pass\n", encoding="utf-8")
    done = installed.run("pytest", "-p", "no:cacheprovider", "--fixtures", "test_nothing.py")
    assert done.returncode == 0, done.stdout + done.stderr
    listed = set(re.findall(r"^(\w+)(?: \[\w+ scope\])? -- ", done.stdout, re.M)) | set(
        re.findall(r"^(\w+)\n", done.stdout, re.M))
    assert {"regflow_engine", "regflow_frozen_clock", "frozen_clock"} <= listed, done.stdout


def test_the_testing_page_example_passes(installed: Installed, tmp_path: Path) -> None:
    """docs/testing.md's five lines of pytest, from the installed examples copied to a folder of
    one's own, pass with only the ``testing`` extra: one test per approved path."""
    copy = tmp_path / "invitation"
    done = installed.run("python", "-c", "from importlib.resources import files\n"
                         "print(files('regflow') / 'examples')")
    shutil.copytree(done.stdout.strip(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    approved = json.loads((copy / "invitation.approved.json").read_text(encoding="utf-8"))
    done = installed.run("pytest", "-q", "-p", "no:cacheprovider", "test_invitation.py", cwd=copy)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(approved['paths'])} passed" in done.stdout, done.stdout


def test_a_run_that_uses_no_fixture_loads_nothing(installed: Installed, tmp_path: Path) -> None:
    """Under pytest, the plugin is loaded (entry point ``pytest11``) but, with none of its
    fixtures asked for, neither freezegun nor the engine is imported."""
    (tmp_path / "test_plain.py").write_text(
        "import sys\n\n\ndef test_plain():\n"
        "    assert 'regflow.testing.plugin' in sys.modules\n"
        f"    assert [m for m in {HEAVY!r} if m in sys.modules] == []\n", encoding="utf-8")
    done = installed.run("pytest", "-q", "-p", "no:cacheprovider", "test_plain.py", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_the_clock_fixture_and_its_alias(installed: Installed, tmp_path: Path) -> None:
    """``frozen_clock`` is ``regflow_frozen_clock``: one frozen time, moved by ``tick``."""
    (tmp_path / "test_clock.py").write_text(
        "from datetime import UTC, datetime, timedelta\n\n\n"
        "def test_clock(regflow_frozen_clock, frozen_clock):\n"
        "    assert frozen_clock is regflow_frozen_clock\n"
        "    before = datetime.now(UTC)\n"
        "    regflow_frozen_clock.tick(timedelta(seconds=60))\n"
        "    assert datetime.now(UTC) - before == timedelta(seconds=60)\n", encoding="utf-8")
    done = installed.run("pytest", "-q", "-p", "no:cacheprovider", "test_clock.py", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_a_frozen_clock_of_ones_own_wins(installed: Installed, tmp_path: Path) -> None:
    """A user's own ``frozen_clock`` fixture takes precedence over the alias, and the plugin's
    engine fixture still runs on ``regflow_frozen_clock``."""
    (tmp_path / "test_own.py").write_text(
        "import pytest\n\n\n@pytest.fixture\ndef frozen_clock():\n    return 'mine'\n\n\n"
        "def test_own(frozen_clock, regflow_frozen_clock, regflow_engine):\n"
        "    assert frozen_clock == 'mine'\n"
        "    assert regflow_frozen_clock is not None\n", encoding="utf-8")
    done = installed.run("pytest", "-q", "-p", "no:cacheprovider", "test_own.py", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_the_command_line_from_the_wheel(installed: Installed, tmp_path: Path) -> None:
    """The other bullets of the issue, with the wheel: the store from ``REGFLOW_DB`` (nothing
    appears in the working folder), ``regflow migrate`` creating a stamped schema, a bad option
    as one line in the language asked, and a customer number of one's own pattern."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    db = tmp_path / "from-env.db"
    done = installed.run("regflow", "migrate", cwd=folder, extra_env={"REGFLOW_DB": f"sqlite:///{db}"})
    assert done.returncode == 0, done.stderr
    assert "created the tables at schema version" in done.stdout
    assert db.exists()
    assert list(folder.iterdir()) == []

    bad = installed.run("regflow", "sweep", "--lang", "ja", "--bogus", cwd=folder)
    assert bad.returncode == 2
    assert bad.stdout == ""
    [line] = bad.stderr.splitlines()
    assert line.startswith("regflow: usage: ")
    assert line == "regflow: usage: オプション --bogus はありません"  # Japanese, as asked

    own = installed.run("python", "-c", (
        "import regflow\n"
        "e = regflow.Engine.from_url('memory://', hasher='fast',"
        " settings={'registration': {'customer_id_pattern': '[0-9]{6}'}})\n"
        "e.contracts.add(customer_id='999999', phone='0312345678', licenses=1, accounts=['a1'])\n"
        "print(e.contracts.find('999999').customer_id)"), cwd=folder)
    assert own.returncode == 0, own.stderr
    assert own.stdout.strip() == "999999"
