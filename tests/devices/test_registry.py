"""The registry: built-ins, plugins listed from metadata without import, broken ones reported, LLMOS_PLUGINS."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import pytest

from llmos.devices.base import Risk, invoke
from llmos.devices.registry import Registry
from llmos.errors import DeviceError

MODULES = ("llmosfake_dice", "llmosfake_broken", "llmosfake_thing", "llmosfake_calc")


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """A fake installed distribution: one good plugin, one that fails to import, one that is not a
    Device, one that takes a built-in's name. Found by importlib.metadata through sys.path."""
    site = tmp_path / "site"
    info = site / "llmos_fakeplugins-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: llmos-fakeplugins\nVersion: 1.2.3\n"
                                   "Summary: dice and other toys for llmos\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [llmos.devices]
        dice = llmosfake_dice:Dice
        broken = llmosfake_broken:Broken
        thing = llmosfake_thing:Thing
        calc = llmosfake_calc:Calc
        """))
    (site / "llmosfake_dice.py").write_text(textwrap.dedent("""\
        from llmos.devices.base import Device, DeviceResult, Risk

        class Dice(Device):
            name = "dice"
            description = "roll a die with a fixed seed"
            schema = {"type": "object", "properties": {"sides": {"type": "integer", "minimum": 2}},
                      "required": ["sides"], "additionalProperties": False}
            risk = Risk.SAFE

            def __init__(self, loaded=True):
                self.loaded = loaded

            def call(self, args):
                return DeviceResult(output=f"rolled {args['sides']}")
        """))
    (site / "llmosfake_broken.py").write_text("import frobnicate_not_installed\n")
    (site / "llmosfake_thing.py").write_text("class Thing:\n    pass\n")
    (site / "llmosfake_calc.py").write_text("raise RuntimeError('must never be imported')\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("LLMOS_PLUGINS", raising=False)
    importlib.invalidate_caches()
    yield site
    for name in MODULES:
        sys.modules.pop(name, None)


def rows(registry: Registry) -> dict[str, dict]:
    return {(r.name, r.source): r.as_dict() for r in registry.list()}


def test_builtins_are_listed_with_their_risk():
    listing = {r.name: r for r in Registry().list() if r.source == "llmos (built-in)"}  # plugins may be installed
    assert {n: r.risk.value for n, r in listing.items()} == {
        "calc": "safe", "clock": "safe", "files": "safe", "files_write": "ask", "plot": "safe",
        "python": "ask", "search": "safe", "shell": "ask", "web": "ask"}
    assert all(r.source == "llmos (built-in)" and r.description and r.error is None for r in listing.values())


def test_plugins_are_listed_from_metadata_without_importing_them(plugins):
    listing = rows(Registry())
    dice = listing[("dice", "llmos-fakeplugins 1.2.3")]
    assert dice == {"name": "dice", "risk": None, "source": "llmos-fakeplugins 1.2.3",
                    "description": "dice and other toys for llmos", "loaded": False, "error": None}
    assert ("broken", "llmos-fakeplugins 1.2.3") in listing
    assert not any(name in sys.modules for name in MODULES)


def test_a_good_plugin_is_imported_on_first_use_and_works(plugins):
    registry = Registry({"dice": {"loaded": "yes"}})
    dice = registry.get("dice")
    assert dice.loaded == "yes" and registry.get("dice") is dice
    assert invoke(dice, {"sides": 6}).output == "rolled 6"
    assert "bad arguments" in invoke(dice, {"sides": 1}).error
    row = rows(registry)[("dice", "llmos-fakeplugins 1.2.3")]
    assert row["loaded"] and row["risk"] == "safe" and row["description"] == "roll a die with a fixed seed"


def test_broken_plugins_are_reported_by_name_and_never_fatal(plugins):
    registry = Registry()
    with pytest.raises(DeviceError, match=r"device 'broken' \(llmos-fakeplugins 1.2.3\) is broken: "
                                          r"ModuleNotFoundError: No module named 'frobnicate_not_installed'"):
        registry.get("broken")
    with pytest.raises(DeviceError, match="Thing is not a Device subclass"):
        registry.get("thing")
    listing = rows(registry)
    assert "frobnicate" in listing[("broken", "llmos-fakeplugins 1.2.3")]["error"]
    assert "not a Device subclass" in listing[("thing", "llmos-fakeplugins 1.2.3")]["error"]
    assert invoke(registry.get("dice"), {"sides": 4}).output == "rolled 4"  # the rest still works
    assert "broken" not in registry.names() and "dice" in registry.names()


def test_a_plugin_cannot_take_a_builtin_name(plugins):
    registry = Registry()
    taken = rows(registry)[("calc (llmos-fakeplugins)", "llmos-fakeplugins 1.2.3")]  # listed apart, as apps are
    assert "name taken by the built-in 'calc'" in taken["error"]
    assert invoke(registry.get("calc"), {"expr": "1+1"}).output == "2"
    assert "llmosfake_calc" not in sys.modules


def test_llmos_plugins_allow_lists_what_may_load(plugins, monkeypatch):
    monkeypatch.setenv("LLMOS_PLUGINS", "dice")
    registry = Registry()
    assert registry.get("dice").name == "dice"
    with pytest.raises(DeviceError, match="blocked: not in LLMOS_PLUGINS=dice"):
        registry.get("broken")
    assert "llmosfake_broken" not in sys.modules
    assert rows(registry)[("broken", "llmos-fakeplugins 1.2.3")]["error"].startswith("blocked")
    monkeypatch.setenv("LLMOS_PLUGINS", "")
    with pytest.raises(DeviceError, match="blocked"):
        Registry().get("dice")
    assert Registry().get("calc").name == "calc"  # built-ins are not plugins


def test_config_sets_options_and_risk():
    registry = Registry({"shell": {"risk": "deny", "timeout_s": 3}, "web": {"allow_private": True}})
    shell = registry.get("shell")
    assert shell.risk is Risk.DENY and shell.timeout_s == 3 and registry.get("web").allow_private
    assert {r.name: r.risk for r in registry.list()}["shell"] is Risk.DENY
    with pytest.raises(DeviceError, match=r"bad \[devices.calc\] options"):
        Registry({"calc": {"precision": 3}}).get("calc")
    with pytest.raises(DeviceError, match="risk 'maybe' is not one of"):
        Registry({"clock": {"risk": "maybe"}}).get("clock")


def test_listing_is_light():
    """Listing never loads chromadb, numpy, llama_cpp, textual or the kernel."""
    code = ("import sys\nfrom llmos.devices.registry import Registry\nRegistry().list()\n"
            "heavy = [m for m in ('chromadb', 'numpy', 'llama_cpp', 'textual', 'llmos.kernel', 'jsonschema')"
            " if m in sys.modules]\nprint(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
