"""invoke(): validation before the call, driver faults as results, UTF-8 safety, truncation."""

from __future__ import annotations

import sys

import pytest

from llmos.devices.base import MAX_ARGS_BYTES, Device, DeviceResult, Risk, invoke
from llmos.devices.registry import Registry
from llmos.devices.shell import ShellDevice
from llmos.errors import DeviceError


class Echo(Device):
    name = "echo"
    description = "say it back"
    schema = {"type": "object", "properties": {"text": {"type": "string", "maxLength": 10_000_000},
                                               "times": {"type": "integer", "minimum": 1}},
              "required": ["text"], "additionalProperties": False}
    risk = Risk.SAFE

    def __init__(self) -> None:
        self.calls = 0

    def call(self, args: dict) -> DeviceResult:
        self.calls += 1
        return DeviceResult(output=args["text"] * args.get("times", 1))


class Faulty(Echo):
    name = "faulty"

    def call(self, args: dict) -> DeviceResult:
        raise ZeroDivisionError("the driver divided by zero")


@pytest.mark.parametrize("args, message", [
    ({}, "'text' is a required property"),
    ({"text": 3}, "text: 3 is not of type 'string'"),
    ({"text": "a", "times": 0}, "times: 0 is less than the minimum of 1"),
    ({"text": "a", "colour": "red"}, "Additional properties are not allowed"),
    (["text"], "arguments must be a JSON object"),
])
def test_schema_violations_are_refused_before_the_driver_runs(args, message):
    device = Echo()
    result = invoke(device, args)
    assert result.error is not None and message in result.error and "echo" in result.error
    assert device.calls == 0


def test_huge_arguments_are_refused_without_validating_or_calling():
    device = Echo()
    result = invoke(device, {"text": "x" * (MAX_ARGS_BYTES + 1)})
    assert "bytes, more than" in result.error and device.calls == 0


def test_a_driver_exception_becomes_an_error_result():
    result = invoke(Faulty(), {"text": "a"})
    assert result.error == "faulty: ZeroDivisionError: the driver divided by zero"
    assert result.output == "" and result.duration_s >= 0


def test_device_error_from_a_driver_keeps_its_message():
    class Picky(Echo):
        name = "picky"

        def call(self, args):
            raise DeviceError("no such thing; try another")

    assert invoke(Picky(), {"text": "a"}).error == "picky: no such thing; try another"


def test_long_output_is_cut_with_a_note():
    result = invoke(Echo(), {"text": "abcd", "times": 2000}, max_output=100)
    assert result.output.startswith("abcd" * 25)
    assert result.output.endswith("[... 7900 more characters cut]")
    assert result.truncated == 7900


def test_bytes_and_lone_surrogates_become_valid_utf8():
    class Raw(Echo):
        name = "raw"

        def call(self, args):
            return DeviceResult(output=b"ok \xff\xfe end" if args["text"] == "bytes" else "name-\udcff")

    assert invoke(Raw(), {"text": "bytes"}).output == "ok \ufffd\ufffd end"
    out = invoke(Raw(), {"text": "str"}).output
    out.encode("utf-8")  # would raise on a surrogate
    assert out.startswith("name-")


@pytest.mark.skipif(sys.platform == "win32", reason="printf and raw bytes through /bin/sh")
def test_non_utf8_program_output_is_decoded_with_replacement():
    result = invoke(ShellDevice(), {"command": r"printf 'caf\351 \377\376 done\n'"})
    assert result.error is None
    assert result.output == "caf\ufffd \ufffd\ufffd done\n"


def test_unknown_device_names_the_known_ones():
    with pytest.raises(DeviceError) as err:
        Registry().get("teleport")
    assert "no device named 'teleport'" in str(err.value) and "calc" in str(err.value)


def test_builtin_schemas_compile_into_the_kernel_grammar():
    """The kernel turns device schemas into a llama.cpp grammar; every built-in must convert."""
    from llmos.kernel import syscall

    registry = Registry()
    devices = [registry.get(name) for name in registry.names()]
    assert {d.name for d in devices} >= {"calc", "clock", "files", "files_write", "plot", "python", "search",
                                         "shell", "web"}
    assert "root ::=" in syscall.grammar(syscall.specs(devices))
