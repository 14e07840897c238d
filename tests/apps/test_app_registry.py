"""App discovery: built-ins, plugins listed from metadata without import, broken ones reported
by name and never fatal, LLMOS_PLUGINS, and `llmos apps` / `llmos run --app` as a user runs them."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap

import pytest

from llmos.apps.registry import AppRegistry
from llmos.apps.sdk import AppError
from tests.conftest import run_llmos
from tests.llmos.test_cli import assert_one_line_error

MODULES = ("llmosfakeapp_good", "llmosfakeapp_broken", "llmosfakeapp_thing", "llmosfakeapp_chat",
           "llmosfakeapp_pkg", "llmosfakeapp_pkg.sub")


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """A fake installed distribution with app plugins: a good one (in a sub-module of a package
    whose __init__ must not run when listing), one that fails to import, one that is not an App,
    one that takes a built-in's name, one whose manifest names another app."""
    site = tmp_path / "site"
    info = site / "llmos_fakeapps-2.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: llmos-fakeapps\nVersion: 2.0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [llmos.apps]
        good = llmosfakeapp_pkg.sub:Good
        broken = llmosfakeapp_broken:Broken
        thing = llmosfakeapp_thing:Thing
        chat = llmosfakeapp_chat:Chat
        liar = llmosfakeapp_pkg.sub:Liar
        """))
    (site / "llmosfakeapp_pkg").mkdir()
    (site / "llmosfakeapp_pkg" / "__init__.py").write_text("import os\nos.environ['FAKEAPP_IMPORTED'] = '1'\n")
    (site / "llmosfakeapp_pkg" / "sub.py").write_text(textwrap.dedent("""\
        from llmos import App, Manifest

        class Good(App):
            manifest = Manifest(name="good", description="says good things", devices=("calc", "clock"))

            async def main(self, sys):
                return "good"

        class Liar(App):
            manifest = Manifest(name="someone-else")

            async def main(self, sys):
                return ""
        """))
    (site / "llmosfakeapp_broken.py").write_text("import frobnicate_not_installed\n")
    (site / "llmosfakeapp_thing.py").write_text("class Thing:\n    pass\n")
    (site / "llmosfakeapp_chat.py").write_text("raise RuntimeError('must never be imported')\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))  # for the subprocesses
    monkeypatch.delenv("LLMOS_PLUGINS", raising=False)
    monkeypatch.delenv("FAKEAPP_IMPORTED", raising=False)
    importlib.invalidate_caches()
    yield site
    for name in MODULES:
        sys.modules.pop(name, None)


def rows(registry: AppRegistry) -> dict[str, dict]:
    return {r.name: r.as_dict() for r in registry.list()}


def test_builtins_are_listed():
    listing = rows(AppRegistry())
    for name in ("chat", "ask", "think", "compare", "summarize"):
        assert listing[name]["source"] == "llmos (built-in)" and listing[name]["description"]
        assert listing[name]["error"] is None and listing[name]["devices"] == []


def test_plugins_are_listed_from_metadata_and_source_without_importing_them(plugins):
    import os

    listing = rows(AppRegistry())
    assert listing["good"] == {"name": "good", "source": "llmos-fakeapps", "version": "2.0.1",
                               "description": "says good things", "devices": ["calc", "clock"],
                               "loaded": False, "error": None}
    assert "FAKEAPP_IMPORTED" not in os.environ
    assert not any(m in sys.modules for m in MODULES)
    assert listing["broken"]["error"] is None and listing["broken"]["devices"] is None  # unknown until used


def test_a_good_plugin_is_imported_on_first_use(plugins, tiny_cpu):
    import asyncio

    from llmos.apps.launch import launch
    from llmos.kernel.kernel import Kernel

    registry = AppRegistry()
    cls = registry.get("good")
    assert cls.__name__ == "Good" and rows(registry)["good"]["loaded"]
    kernel = Kernel(tiny_cpu, lock=False)
    try:
        assert asyncio.run(launch(kernel, cls, "hi")).output == "good"
    finally:
        kernel.close()


def test_broken_plugins_are_reported_by_name_and_never_fatal(plugins):
    registry = AppRegistry()
    with pytest.raises(AppError, match=r"^app 'broken' \(llmos-fakeapps\) is broken: ModuleNotFoundError: "
                                       r"No module named 'frobnicate_not_installed'$"):
        registry.get("broken")
    with pytest.raises(AppError, match="not an App subclass"):
        registry.get("thing")
    with pytest.raises(AppError, match="its manifest says its name is 'someone-else', not 'liar'"):
        registry.get("liar")
    listing = rows(registry)
    assert "frobnicate" in listing["broken"]["error"] and listing["broken"]["loaded"]
    assert "chat (llmos-fakeapps)" in listing and "name taken" in listing["chat (llmos-fakeapps)"]["error"]
    assert registry.get("chat").__module__ == "llmos.apps.chat"  # the built-in, the impostor never imported
    assert "llmosfakeapp_chat" not in sys.modules
    assert "good" in registry.names() and "broken" not in registry.names()


def test_llmos_plugins_allow_lists_what_may_load(plugins, monkeypatch):
    monkeypatch.setenv("LLMOS_PLUGINS", "broken")
    registry = AppRegistry()
    with pytest.raises(AppError, match="blocked: not in LLMOS_PLUGINS=broken"):
        registry.get("good")
    assert rows(registry)["good"]["error"].startswith("blocked")
    monkeypatch.setenv("LLMOS_PLUGINS", "")
    assert AppRegistry().get("think").__name__ == "ThinkApp"  # built-ins are not plugins


def test_llmos_apps_json_lists_plugins_and_their_errors(plugins):
    proc = run_llmos("apps", "--json")
    assert proc.returncode == 0, proc.stderr
    listing = {row["name"]: row for row in json.loads(proc.stdout)}
    assert listing["good"]["source"] == "llmos-fakeapps" and listing["good"]["devices"] == ["calc", "clock"]
    assert listing["think"]["version"] and "name taken" in listing["chat (llmos-fakeapps)"]["error"]
    assert run_llmos("apps").returncode == 0


def test_run_app_bad_input_is_one_line(plugins):
    assert_one_line_error(run_llmos("run", "--app", "nope", "hi"), "no app named 'nope'")
    assert_one_line_error(run_llmos("run", "--app", "broken", "hi"), "app 'broken'", "is broken")
    assert_one_line_error(run_llmos("run", "--app", "think", "--model", "tiny", "  "), "empty prompt")
    assert_one_line_error(run_llmos("run", "--app", "think", "--opt", "budget", "2+2"), "KEY=VALUE")
    assert_one_line_error(run_llmos("run", "--app", "compare", "--opt", "pick=c", "--model", "tiny", "Hi"),
                          "pick must be a or b")
