"""``calc``: exact arithmetic, so the model never has to do sums in its head.

The expression is parsed with :mod:`ast` and walked; nothing is ever
evaluated as Python. Numbers are :class:`fractions.Fraction`, so ``0.1 + 0.2``
is exactly ``3/10`` (decimal literals are read from their source text, not
from the binary float Python would make of them) and integers have no size
limit but ours. Allowed: numbers, ``+ - * / // % **``, unary ``+``/``-``,
parentheses, the factorial of a whole number (``13! / 11!``, as people and
models write it; Python has no such operator, so each ``n!`` is replaced by its
value before parsing) and per cent (``15% of 80``: a ``%`` with no operand after
it). Names, calls, attributes, strings and everything else are
refused with a message that says what is allowed.

Limits keep one call cheap: the expression is at most 2000 characters, no
value may exceed :data:`MAX_BITS` bits (about 30,000 decimal digits), an
exponent is at most 100,000. A non-integer exponent (``2 ** 0.5``) is computed
with 40 significant digits and marked approximate.

It does not do functions (``sqrt``, ``sin``), variables or units.
"""

from __future__ import annotations

import ast
import decimal
import math
import re
from fractions import Fraction

from llmos.devices.base import Device, DeviceResult, Risk
from llmos.errors import DeviceError

MAX_LENGTH = 2000
MAX_BITS = 100_000
MAX_EXPONENT = 100_000
MAX_FACTORIAL = 5000
"""The largest ``n!``: about 54,000 bits, inside MAX_BITS."""
DIGITS = 40
"""Significant digits of approximate results and of non-terminating decimals."""

_OPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: Fraction(a // b),
    ast.Mod: lambda a, b: a % b,
}
_ALLOWED = "numbers, + - * / // % **, n!, 15% of 80 and parentheses"
_FACTORIAL = re.compile(r"(?<![\w.])(\d+)\s*!")
_PER_CENT_OF = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*%\s*of\b", re.IGNORECASE)
_PER_CENT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*%(?=\s*(?:$|[)*/]))")
"""A ``%`` with no operand after it is per cent: "15% of 80", "15% * 80", "(15%)"; "17 % 5"
stays the remainder."""


class _Approx(Exception):
    """Raised inside the walk when the result can no longer be exact."""


def _bits(x: Fraction) -> int:
    return max(abs(x.numerator).bit_length(), x.denominator.bit_length())


def _check(x: Fraction) -> Fraction:
    if _bits(x) > MAX_BITS:
        raise DeviceError(f"a value has more than {MAX_BITS} bits; calc keeps numbers below that")
    return x


class _Evaluator:
    def __init__(self, source: str) -> None:
        self.source = source
        self.exact = True

    def eval(self, root: ast.AST) -> Fraction:
        # Post-order walk with an explicit stack: a 1000-term sum is fine, no recursion limit.
        stack: list[tuple[ast.AST, bool]] = [(root, False)]
        values: list[Fraction] = []
        while stack:
            node, operands_done = stack.pop()
            if isinstance(node, ast.Expression):
                stack.append((node.body, False))
            elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
                values.append(self._literal(node))
            elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
                if operands_done:
                    values.append(-values.pop() if isinstance(node.op, ast.USub) else values.pop())
                else:
                    stack += [(node, True), (node.operand, False)]
            elif isinstance(node, ast.BinOp) and (type(node.op) in _OPS or isinstance(node.op, ast.Pow)):
                if operands_done:
                    right, left = values.pop(), values.pop()
                    values.append(self._binop(node.op, left, right))
                else:
                    stack += [(node, True), (node.right, False), (node.left, False)]
            else:
                raise DeviceError(f"{_describe(node)} is not allowed; calc takes {_ALLOWED}")
        return values[0]

    def _binop(self, op: ast.operator, left: Fraction, right: Fraction) -> Fraction:
        if isinstance(op, ast.Pow):
            return self._pow(left, right)
        if right == 0 and isinstance(op, (ast.Div, ast.FloorDiv, ast.Mod)):
            raise DeviceError("division by zero")
        return _check(_OPS[type(op)](left, right))

    def _literal(self, node: ast.Constant) -> Fraction:
        if isinstance(node.value, int):
            return _check(Fraction(node.value))
        # subtle: 0.1 as a Python float is 0.1000000000000000055...; the text "0.1" is exact.
        text = (ast.get_source_segment(self.source, node) or repr(node.value)).replace("_", "")
        try:
            return _check(Fraction(decimal.Decimal(text)))
        except (decimal.InvalidOperation, ValueError, OverflowError):
            raise DeviceError(f"cannot read the number {text!r}") from None

    def _pow(self, base: Fraction, exp: Fraction) -> Fraction:
        if exp.denominator == 1:
            n = exp.numerator
            if abs(n) > MAX_EXPONENT:
                raise DeviceError(f"exponent {n} is larger than {MAX_EXPONENT}")
            if base == 0 and n < 0:
                raise DeviceError("zero cannot be raised to a negative power")
            if (_bits(base) - 1) * abs(n) > MAX_BITS:  # a lower bound of the result's size
                raise DeviceError(f"the result would have more than {MAX_BITS} bits")
            return _check(base**n)
        if base < 0:
            raise DeviceError("a negative number to a fractional power is not a real number")
        self.exact = False
        with decimal.localcontext() as ctx:
            ctx.prec = DIGITS + 5
            value = _decimal(base, ctx.prec) ** _decimal(exp, ctx.prec)
        return _check(Fraction(value))


def _decimal(x: Fraction, prec: int) -> decimal.Decimal:
    with decimal.localcontext() as ctx:
        ctx.prec = prec
        return decimal.Decimal(x.numerator) / decimal.Decimal(x.denominator)


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return f"the name {node.id!r}"
    if isinstance(node, ast.Attribute):
        return "attribute access"
    if isinstance(node, ast.Call):
        return "a function call"
    if isinstance(node, ast.Constant):
        return f"the {type(node.value).__name__} literal {node.value!r}"[:80]
    return f"{type(node).__name__} syntax"


def _int_text(n: int) -> str:
    """``str(n)`` without Python's 4300-digit guard (our own limit is MAX_BITS)."""
    with decimal.localcontext() as ctx:
        ctx.prec = MAX_BITS
        return format(decimal.Decimal(n), "f")


def _fraction_text(x: Fraction) -> str:
    num = _int_text(x.numerator)
    return num if x.denominator == 1 else f"{num}/{_int_text(x.denominator)}"


def _as_decimal(x: Fraction) -> tuple[str, bool]:
    """``x`` as decimal text and whether that text is exact (it terminates)."""
    d = x.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d == 1:  # terminating: print it exactly, however long
        with decimal.localcontext() as ctx:
            ctx.prec = MAX_BITS
            text = format(decimal.Decimal(x.numerator) / decimal.Decimal(x.denominator), "f")
        return text, True
    with decimal.localcontext() as ctx:
        ctx.prec = DIGITS
        return format(_decimal(x, DIGITS).normalize(), "f"), False


def _factorial(match: re.Match) -> str:
    n = int(match.group(1))
    if n > MAX_FACTORIAL:
        raise DeviceError(f"{n}! is too large; calc takes factorials up to {MAX_FACTORIAL}!")
    return f"({_int_text(math.factorial(n))})"


def evaluate(expr: str) -> tuple[Fraction, bool]:
    """The exact value of ``expr`` and whether it is exact (False after a fractional power)."""
    if len(expr) > MAX_LENGTH:
        raise DeviceError(f"the expression is {len(expr)} characters; calc takes at most {MAX_LENGTH}")
    # ``^`` is a power, as people (and models: "17^2") write it; calc has no bitwise XOR.
    source = _FACTORIAL.sub(_factorial, expr.strip().replace("^", "**").replace("×", "*").replace("÷", "/"))
    source = _PER_CENT.sub(r"(\1/100)", _PER_CENT_OF.sub(r"(\1/100)*", source))
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise DeviceError(f"not an arithmetic expression ({getattr(exc, 'msg', exc)}); "
                          f"calc takes {_ALLOWED}") from None
    walker = _Evaluator(source)
    return walker.eval(tree), walker.exact


class CalcDevice(Device):
    name = "calc"
    description = ("exact arithmetic on numbers: + - * / // % ** (or ^), n!, per cent (15% of 80) "
                   "and parentheses (no variables)")
    schema = {
        "type": "object",
        "properties": {"expr": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH}},
        "required": ["expr"],
        "additionalProperties": False,
    }
    risk = Risk.SAFE

    def call(self, args: dict) -> DeviceResult:
        value, exact = evaluate(args["expr"])
        text, terminates = _as_decimal(value)
        fraction = _fraction_text(value)
        if not exact:
            output = f"≈ {text}"
        elif value.denominator == 1 or terminates:
            output = text if value.denominator == 1 or text == fraction else f"{text} (= {fraction})"
        else:
            output = f"{fraction} (≈ {text})"
        data = {"fraction": fraction, "decimal": text, "exact": exact and (terminates or value.denominator == 1)}
        return DeviceResult(output=output, data=data)
