"""``clock``: the current local date, time and time zone.

A model has no idea what day it is; this device tells it. With ``tz`` (an
IANA name such as ``Europe/Paris``, read from the system's zone database or
the ``tzdata`` package, never downloaded) it gives that zone's time instead;
with ``format`` it formats the time with ``strftime``.
"""

from __future__ import annotations

import datetime as dt

from llmos.devices.base import Device, DeviceResult, Risk
from llmos.errors import DeviceError


class ClockDevice(Device):
    name = "clock"
    description = "the current date, time and time zone (optionally in another zone or a strftime format)"
    schema = {
        "type": "object",
        "properties": {
            "tz": {"type": "string", "maxLength": 64,
                   "description": "an IANA zone such as Europe/Paris, only for another place; omit for the local time"},
            "format": {"type": "string", "maxLength": 200,
                       "description": "a strftime format such as %H:%M; omit for the full date and time"},
        },
        "additionalProperties": False,
    }
    risk = Risk.SAFE

    def call(self, args: dict) -> DeviceResult:
        now = dt.datetime.now().astimezone()
        if args.get("tz"):
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                now = now.astimezone(ZoneInfo(args["tz"]))
            except (ZoneInfoNotFoundError, ValueError):
                raise DeviceError(f"unknown time zone {args['tz']!r} (use an IANA name like Europe/Paris)") from None
        offset = now.strftime("%z")
        offset = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
        zone = now.tzname() or offset
        # A format with no strftime directive ("ISO 8601", Java's "yyyy-MM-dd": what small models
        # write) would come back as itself, and the caller would learn nothing: the full time instead.
        if args.get("format") and "%" in args["format"]:
            try:
                output = now.strftime(args["format"])
            except ValueError as exc:
                raise DeviceError(f"bad strftime format {args['format']!r}: {exc}") from None
        else:
            output = f"{now:%A %d %B %Y, %H:%M:%S} {zone} ({offset})"
        data = {"iso": now.isoformat(timespec="seconds"), "timestamp": now.timestamp(), "timezone": zone,
                "utc_offset": offset, "weekday": now.strftime("%A")}
        return DeviceResult(output=output, data=data)
