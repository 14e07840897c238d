"""calc: exact arithmetic by walking the AST; nothing is ever evaluated as Python."""

from __future__ import annotations

from decimal import Decimal

import pytest

from llmos.devices.base import invoke
from llmos.devices.calc import MAX_LENGTH, CalcDevice, evaluate


def calc(expr: str):
    return invoke(CalcDevice(), {"expr": expr}, max_output=10_000)


def test_decimals_are_exact():
    assert evaluate("0.1 + 0.2") == evaluate("3/10")
    result = calc("0.1+0.2")
    assert result.error is None and result.data["fraction"] == "3/10" and result.data["decimal"] == "0.3"
    assert calc("1.1 * 1.1").data["decimal"] == "1.21"


def test_fractions_stay_fractions():
    result = calc("1/3 + 1/6")
    assert result.data["fraction"] == "1/2"
    third = calc("1/3")
    assert third.data["fraction"] == "1/3" and not third.data["exact"] and third.output.startswith("1/3 (≈ 0.333")


def test_huge_integers_beyond_pythons_str_limit():
    result = calc("2**20000 + 1")
    assert result.error is None
    # Python's own str() and int() refuse more than 4300 digits; calc prints all 6021.
    assert Decimal(result.output) == Decimal(2**20000 + 1) and len(result.output) == 6021
    assert calc("-7 // 2").output == "-4" and calc("-7 % 3").output == "2" and calc("-(2**3)").output == "-8"


@pytest.mark.parametrize("expr, message", [
    ("__import__('os').system('echo hi')", "a function call is not allowed"),
    ("(1).real", "attribute access is not allowed"),
    ("x + 1", "the name 'x' is not allowed"),
    ("'a' * 3", "str literal"),
    ("[1, 2]", "List syntax is not allowed"),
    ("lambda: 1", "Lambda syntax is not allowed"),
    ("1 if 1 else 2", "IfExp syntax is not allowed"),
    ("1 +", "not an arithmetic expression"),
    ("1/0", "division by zero"),
    ("2 ** 200000", "exponent 200000 is larger than"),
    ("10 ** 50000", "more than 100000 bits"),
    ("(2**60000) * (2**60000)", "more than 100000 bits"),
    ("(-8) ** 0.5", "not a real number"),
    ("6000!", "6000! is too large"),
    ("2.5!", "not an arithmetic expression"),
])
def test_refusals_name_what_is_allowed(expr, message):
    result = calc(expr)
    assert result.error is not None and message in result.error, result.error
    assert result.output == ""


def test_expression_length_is_limited_and_long_flat_sums_work():
    assert calc("1+" * MAX_LENGTH + "1").error == "bad arguments for calc: expr: the 4001 characters is too long"
    assert calc("+".join(["1"] * 999)).output == "999"
    assert calc("-" * 1500 + "1").output == "1"


def test_fractional_powers_are_marked_approximate():
    result = calc("2 ** 0.5")
    assert result.output.startswith("≈ 1.41421356237309504880") and result.data["exact"] is False


def test_factorials_and_the_signs_people_type():
    # The default model wrote "13! / 11!" for "13 factorial divided by 11 factorial".
    assert calc("13! / 11!").output == "156" and calc("0!").output == "1"
    assert calc("2 * 5! - 3").output == "237" and calc("10 × 3 ÷ 4").data["fraction"] == "15/2"


def test_per_cent_is_a_percent_sign_with_no_operand_after_it():
    # The default model wrote "15% of 80" and "15% * 80" for "What is 15% of 80?"; both failed.
    assert calc("15% of 80").output == "12" and calc("15% * 80").output == "12"
    assert calc("12.5% of 64").output == "8" and calc("(50%)").data["fraction"] == "1/2"
    assert calc("17 % 5").output == "2" and calc("10 % (3)").output == "1"  # still the remainder
