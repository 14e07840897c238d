"""llmos-hello: the device alone, the app on the real tiny model, and the install's entry points."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from llmos import run_app
from llmos.devices.base import invoke
from llmos.errors import UsageError
from llmos_hello import HelloApp, LettersDevice


def test_letters_counts_letters_and_one_letter():
    device = LettersDevice()
    assert invoke(device, {"word": "strawberry", "letter": "r"}).data == 3
    assert invoke(device, {"word": "Ada"}).output == "'Ada' has 3 letters"


def test_letters_refuses_bad_arguments_by_its_schema():
    result = invoke(LettersDevice(), {"word": "x", "letter": "ab"})
    assert result.error and "letter" in result.error


def test_hello_greets_with_the_letter_count():
    result = run_app(HelloApp, "Ada", model="tiny")
    assert result.data["letters"] == "'Ada' has 3 letters"
    assert result.output.strip() and result.tokens > 0


def test_hello_needs_a_name():
    with pytest.raises(UsageError, match="empty input"):
        run_app(HelloApp, "   ", model="tiny")


def llmos(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmos", *args], capture_output=True, text=True, timeout=300)


def test_installed_plugin_is_listed_by_llmos():
    apps = {row["name"]: row for row in json.loads(llmos("apps", "--json").stdout)}
    assert apps["hello"]["source"] == "llmos-hello" and apps["hello"]["version"] == "0.1.0"
    assert apps["hello"]["devices"] == ["letters"] and apps["hello"]["error"] is None
    devices = {row["name"]: row for row in json.loads(llmos("devices", "--json").stdout)}
    assert devices["letters"]["source"] == "llmos-hello 0.1.0"


def test_hello_runs_from_the_command_line():
    proc = llmos("run", "--app", "hello", "--model", "tiny", "--json", "Ada")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["data"]["letters"] == "'Ada' has 3 letters"
