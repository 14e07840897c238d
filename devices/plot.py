"""``plot``: numbers as a chart drawn in text, for the terminal and the model alike.

Two kinds: ``bar`` draws one line per value, ``label │████▌ value``, bars
scaled to ``width`` columns with eighth-block precision (negative values are
drawn on the left of a shared zero line); ``spark`` draws one line of
``▁▂▃▄▅▆▇█`` for a series. Pure text, no colour, no images.
"""

from __future__ import annotations

import math

from llmos.devices.base import Device, DeviceResult, Risk
from llmos.errors import DeviceError

EIGHTHS = " ▏▎▍▌▋▊▉█"
SPARKS = "▁▂▃▄▅▆▇█"
MAX_VALUES = 500


def _number(v: float) -> str:
    return f"{v:,.6g}" if not float(v).is_integer() or abs(v) >= 1e15 else f"{int(v):,}"


def _bar(length: float) -> str:
    """A bar ``length`` columns long, to the nearest eighth of a column."""
    eighths = round(length * 8)
    return "█" * (eighths // 8) + (EIGHTHS[eighths % 8] if eighths % 8 else "")


def bars(values: list[float], labels: list[str], width: int) -> list[str]:
    low, high = min(0.0, *values), max(0.0, *values)
    span = (high - low) or 1.0
    left = round(width * -low / span)  # columns for the negative side
    names = [str(lbl)[:24] for lbl in labels] + [str(i + 1) for i in range(len(labels), len(values))]
    pad = max(len(n) for n in names)
    lines = []
    for name, v in zip(names, values):
        length = abs(v) / span * width
        if v < 0:
            neg = _bar(length)
            lines.append(f"{name:>{pad}} {neg.rjust(left)}│{'':{width - left}} {_number(v)}")
        else:
            lines.append(f"{name:>{pad}} {'':{left}}│{_bar(length):{width - left}} {_number(v)}")
    return lines


def spark(values: list[float]) -> str:
    low, high = min(values), max(values)
    if high == low:
        return SPARKS[len(SPARKS) // 2] * len(values)
    return "".join(SPARKS[min(len(SPARKS) - 1, int((v - low) / (high - low) * len(SPARKS)))] for v in values)


class PlotDevice(Device):
    name = "plot"
    description = "draw numbers as a text chart: kind bar (one labelled bar per value) or spark (a sparkline)"
    schema = {
        "type": "object",
        "properties": {
            "values": {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": MAX_VALUES},
            "labels": {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": MAX_VALUES},
            "kind": {"type": "string", "enum": ["bar", "spark"]},
            "title": {"type": "string", "maxLength": 120},
            "width": {"type": "integer", "minimum": 5, "maximum": 200},
        },
        "required": ["values"],
        "additionalProperties": False,
    }
    risk = Risk.SAFE

    def call(self, args: dict) -> DeviceResult:
        values = [float(v) for v in args["values"]]
        if not all(math.isfinite(v) for v in values):
            raise DeviceError("values must be finite numbers")
        kind = args.get("kind", "bar")
        lines = [args["title"]] if args.get("title") else []
        if kind == "spark":
            lines.append(f"{spark(values)}  min {_number(min(values))}  max {_number(max(values))}")
        else:
            lines += bars(values, args.get("labels", []), args.get("width", 40))
        return DeviceResult(output="\n".join(lines), data={"kind": kind, "values": values})
