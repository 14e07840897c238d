"""clock, plot, shell and search: the small drivers, each on real parts."""

from __future__ import annotations

import datetime as dt
import sys
import time

import psutil
import pytest

from llmos.devices.base import invoke
from llmos.devices.clock import ClockDevice
from llmos.devices.plot import PlotDevice
from llmos.devices.search import SearchDevice
from llmos.devices.shell import ShellDevice

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell commands")


def test_clock_gives_now_in_local_and_named_zones():
    result = invoke(ClockDevice(), {})
    stamp = dt.datetime.fromisoformat(result.data["iso"])
    assert abs(stamp.timestamp() - time.time()) < 5 and result.data["weekday"] in result.output
    tokyo = invoke(ClockDevice(), {"tz": "Asia/Tokyo", "format": "%Z %z"})
    assert tokyo.output == "JST +0900" and tokyo.data["utc_offset"] == "UTC+09:00"
    assert "unknown time zone" in invoke(ClockDevice(), {"tz": "Mars/Olympus"}).error
    assert "unknown time zone" in invoke(ClockDevice(), {"tz": "../../etc/passwd"}).error


def test_plot_bars_scale_with_eighth_blocks():
    result = invoke(PlotDevice(), {"values": [8, 4, 1], "labels": ["a", "b", "c"], "width": 8})
    assert result.output.splitlines() == ["a │████████ 8", "b │████     4", "c │█        1"]
    half = invoke(PlotDevice(), {"values": [16, 1], "width": 8}).output.splitlines()[1]
    assert half == "2 │▌        1"
    negative = invoke(PlotDevice(), {"values": [-2, 2], "width": 8}).output.splitlines()
    assert negative == ["1 ████│     -2", "2     │████ 2"]


def test_plot_sparkline_and_bad_input():
    result = invoke(PlotDevice(), {"values": [1, 2, 3, 4, 5, 6, 7, 8], "kind": "spark", "title": "load"})
    assert result.output == "load\n▁▂▃▄▅▆▇█  min 1  max 8"
    assert invoke(PlotDevice(), {"values": [3, 3], "kind": "spark"}).output.startswith("▅▅")
    assert "bad arguments" in invoke(PlotDevice(), {"values": []}).error
    assert "bad arguments" in invoke(PlotDevice(), {"values": ["x"]}).error


@posix_only
def test_shell_runs_in_a_throwaway_folder_that_is_removed():
    result = invoke(ShellDevice(), {"command": "pwd; echo hello >&2; exit 3"})
    folder, hello = result.output.splitlines()
    assert "llmos-shell-" in folder and hello == "hello"
    assert result.error == "shell: exit status 3" and result.data["returncode"] == 3
    import os

    assert not os.path.exists(folder)


@posix_only
def test_shell_timeout_kills_the_whole_group(tmp_path):
    marker = tmp_path / "pid"
    started = time.monotonic()
    result = invoke(ShellDevice(), {"command": f"sleep 300 & echo $! > {marker}; wait", "timeout_s": 1})
    assert result.error == "shell: timed out after 1 s (killed)" and time.monotonic() - started < 5
    background = int(marker.read_text())
    time.sleep(0.1)
    assert not psutil.pid_exists(background) or psutil.Process(background).status() == psutil.STATUS_ZOMBIE


@posix_only
def test_shell_output_is_capped_while_the_rest_is_drained():
    result = invoke(ShellDevice(max_bytes=1000), {"command": "head -c 5000000 /dev/zero | tr '\\0' x"},
                    max_output=5000)
    assert result.output.startswith("x" * 1000) and "[... 4999000 more bytes of output dropped]" in result.output
    assert result.error is None


def test_search_finds_mounted_files_and_swap_by_meaning(tmp_path):
    from llmos.memory.disk import Disk

    disk = Disk(tmp_path / "disk")
    disk.add("files", ids=["boat", "tax"],
             texts=["The boat is called Marigold and sleeps four.", "Tax returns are due at the end of April."],
             metadatas=[{"path": "/notes/boat.md", "line_start": 1, "line_end": 2},
                        {"path": "/notes/tax.md", "line_start": 5, "line_end": 9}])
    disk.add("swap-7", ids=["p1"], texts=["The user's locker code is 4471."],
             metadatas=[{"pid": 7, "origin": "user", "source": ""}])
    search = SearchDevice(disk)
    result = invoke(search, {"query": "what is the boat's name?", "k": 1})
    assert result.output.startswith("[1] /notes/boat.md:1-2 (distance") and "Marigold" in result.output
    swap = invoke(search, {"query": "locker code", "where": "swap", "pid": 7})
    assert "swap pid 7 user" in swap.output and "4471" in swap.output
    everything = invoke(search, {"query": "locker code", "where": "all", "k": 3})
    assert [row["collection"] for row in everything.data] == ["swap-7"]  # the notes are far behind it
    assert everything.output.endswith("(2 farther hits left out)")
    assert invoke(search, {"query": "x", "where": "swap", "pid": 99}).output.startswith("nothing found")
    assert "swap-99" not in disk.names()  # searching never creates a collection
