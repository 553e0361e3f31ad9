"""Retry policies for activities and workflow functions."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from memflow.durations import parse_duration


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failing call is tried, and how long to wait between tries.

    ``maximum_attempts`` counts every attempt, the first included. The delay before retry
    ``k`` (1, 2, ...) is ``initial_interval * backoff_coefficient ** (k - 1)``, capped at
    ``maximum_interval``.
    """

    maximum_attempts: int = 3
    backoff_coefficient: float = 10.0
    maximum_interval: float = 120.0
    initial_interval: float = 1.0
    throw_on_error: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.maximum_attempts, int) or self.maximum_attempts < 1:
            raise ValueError("retry_policy.maximum_attempts must be an integer >= 1")
        if self.backoff_coefficient < 1:
            raise ValueError("retry_policy.backoff_coefficient must be >= 1")

    @classmethod
    def of(cls, value: Any, default: RetryPolicy | None = None) -> RetryPolicy:
        """Build a policy from ``None``, a ``RetryPolicy`` or a dict of the API's keys."""
        if value is None:
            return default or cls()
        if isinstance(value, RetryPolicy):
            return value
        if not isinstance(value, dict):
            raise TypeError("retry_policy must be a dict or a RetryPolicy")
        known = {"maximum_attempts", "backoff_coefficient", "maximum_interval",
                 "initial_interval", "throw_on_error"}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"retry_policy: unknown keys {sorted(unknown)}")
        base = default or cls()
        return cls(
            maximum_attempts=int(value.get("maximum_attempts", base.maximum_attempts)),
            backoff_coefficient=float(value.get("backoff_coefficient", base.backoff_coefficient)),
            maximum_interval=parse_duration(value.get("maximum_interval", base.maximum_interval),
                                            "retry_policy.maximum_interval"),
            initial_interval=parse_duration(value.get("initial_interval", base.initial_interval),
                                            "retry_policy.initial_interval"),
            throw_on_error=bool(value.get("throw_on_error", base.throw_on_error)),
        )

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the second attempt)."""
        return min(self.initial_interval * self.backoff_coefficient ** (retry - 1),
                   self.maximum_interval)

    def to_dict(self) -> dict[str, Any]:
        """The policy as a JSON document."""
        return asdict(self)
