"""Durations as users write them: ``"5 seconds"``, ``"1.5s"``, numbers, timedelta."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any

_UNITS = {
    "ms": 0.001, "msec": 0.001, "msecs": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
}
MAX_SECONDS = 100 * 365.25 * 86400.0
"""The longest duration accepted (100 years): timers, timeouts, expiries and retry intervals
become Postgres timestamps, and parked work sits beyond every one of them."""

_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*$")


def parse_duration(value: Any, what: str = "duration") -> float:
    """Seconds in ``value``; raises ``ValueError``/``TypeError`` naming ``what`` when it is bad."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a number of seconds, a string or a timedelta")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        unit = match.group(2).lower() if match else ""
        if not match or (unit and unit not in _UNITS):
            raise ValueError(f"{what}: cannot read {value!r} as a duration "
                             "(try '5 seconds', '1.5s', '2 minutes', '1h')")
        seconds = float(match.group(1)) * _UNITS.get(unit, 1.0)
    else:
        raise TypeError(f"{what} must be a number of seconds, a string or a timedelta, "
                        f"not {type(value).__name__}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{what} must be a finite, non-negative duration, got {value!r}")
    if seconds > MAX_SECONDS:
        raise ValueError(f"{what} {value!r} is too long: at most 100 years "
                         f"({MAX_SECONDS:.0f} seconds)")
    return seconds
