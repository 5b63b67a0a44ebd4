"""The emulator's settings: read from EMULATOR_* variables at start, faults changeable at runtime."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace

from emulator.contracts import CONTRACTS


class ConfigError(ValueError):
    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{key}: {msg}" for key, msg in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class EmulatorConfig:
    token: str = "emulator-token"
    public_url: str = ""  # base of blob URLs; "" means the server's own http://host:port
    contract: str = "beta12"
    seed: int = 1
    tick_seconds: float = 0.1
    callback_timeout: float = 5.0
    callback_backoff: float = 0.2  # first retry delay; doubles on each further retry
    # Everything below can also be changed at runtime through POST /_emulator/faults.
    queue_seconds: float = 1.0
    seconds_per_epoch: float = 1.0
    callback_retries: int = 5
    fail_rate: float = 0.0
    fail_status: int = 503
    latency_ms: float = 0.0
    timeout_rate: float = 0.0
    hang_seconds: float = 30.0
    submit_hang_after_accept_seconds: float = 0.0
    fail_at_epoch: int = 0  # 0 = off
    reject_all: str = ""  # "" = off
    drop_callbacks: bool = False
    # beta86 only: how long signed blob URLs stay valid, and the moderation new workflows get.
    url_ttl_seconds: float = 3600.0
    moderation: str = "approved"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EmulatorConfig:
        env = os.environ if environ is None else environ
        changes: dict[str, object] = {}
        problems: dict[str, str] = {}
        for f in fields(cls):
            name = "EMULATOR_" + f.name.upper()
            raw = env.get(name, "")
            if raw == "":
                continue
            try:
                changes[f.name] = _CHECKS[f.name](_PARSERS[f.name](raw))
            except (TypeError, ValueError) as exc:
                problems[name] = str(exc)
        if problems:
            raise ConfigError(problems)
        return replace(cls(), **changes)  # type: ignore[arg-type]

    def with_changes(
        self, changes: Mapping[str, object], *, runtime: bool = False
    ) -> EmulatorConfig:
        """A copy with `changes` (snake_case field names) applied, each checked for type and range."""
        allowed = RUNTIME_FIELDS if runtime else frozenset(_CHECKS)
        problems: dict[str, str] = {}
        clean: dict[str, object] = {}
        for key, value in changes.items():
            if key not in allowed:
                problems[key] = "unknown setting" if key not in _CHECKS else "fixed at start"
                continue
            try:
                clean[key] = _CHECKS[key](value)
            except (TypeError, ValueError) as exc:
                problems[key] = str(exc)
        if problems:
            raise ConfigError(problems)
        return replace(self, **clean)  # type: ignore[arg-type]

    def faults(self) -> dict[str, object]:
        return {key: value for key, value in asdict(self).items() if key in RUNTIME_FIELDS}


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("must be a number")
    return float(value)


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("must be an integer")
    return value


def _ranged(low: float, high: float | None = None) -> Callable[[object], float]:
    def check(value: object) -> float:
        number = _number(value)
        if number < low or (high is not None and number > high):
            raise ValueError(
                f"must be between {low} and {high}" if high is not None else f"must be >= {low}"
            )
        return number

    return check


def _status(value: object) -> int:
    number = _integer(value)
    if not 400 <= number <= 599:
        raise ValueError("must be an HTTP status from 400 to 599")
    return number


def _non_negative_int(value: object) -> int:
    number = _integer(value)
    if number < 0:
        raise ValueError("must be >= 0")
    return number


def _text(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError("must be a string")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError("must be true or false")
    return value


def _contract(value: object) -> str:
    text = _text(value)
    if text not in CONTRACTS:
        raise ValueError(f"must be one of {', '.join(CONTRACTS)}")
    return text


MODERATION_STATUSES = ("approved", "evaluating", "underReview", "rejected")


def _moderation(value: object) -> str:
    text = _text(value)
    if text not in MODERATION_STATUSES:
        raise ValueError(f"must be one of {', '.join(MODERATION_STATUSES)}")
    return text


def _off_or_epoch(value: object) -> int:
    return 0 if value is None else _non_negative_int(value)


_CHECKS: dict[str, Callable[[object], object]] = {
    "token": _text,
    "public_url": lambda v: _text(v).rstrip("/"),
    "contract": _contract,
    "seed": _integer,
    "tick_seconds": _ranged(0.01),
    "callback_timeout": _ranged(0.01),
    "callback_backoff": _ranged(0),
    "queue_seconds": _ranged(0),
    "seconds_per_epoch": _ranged(0),
    "callback_retries": _non_negative_int,
    "fail_rate": _ranged(0, 1),
    "fail_status": _status,
    "latency_ms": _ranged(0),
    "timeout_rate": _ranged(0, 1),
    "hang_seconds": _ranged(0),
    "submit_hang_after_accept_seconds": _ranged(0),
    "fail_at_epoch": _off_or_epoch,
    "reject_all": _text,
    "drop_callbacks": _flag,
    "url_ttl_seconds": _ranged(1),
    "moderation": _moderation,
}

RUNTIME_FIELDS = frozenset(
    {
        "queue_seconds",
        "seconds_per_epoch",
        "callback_retries",
        "fail_rate",
        "fail_status",
        "latency_ms",
        "timeout_rate",
        "hang_seconds",
        "submit_hang_after_accept_seconds",
        "fail_at_epoch",
        "reject_all",
        "drop_callbacks",
        "url_ttl_seconds",
        "moderation",
    }
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _env_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    raise ValueError(f"{raw!r} is not a boolean; use true or false")


def _env_int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not an integer") from None


def _env_float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a number") from None


_PARSERS: dict[str, Callable[[str], object]] = {
    **{name: _env_float for name in _CHECKS},
    "token": str,
    "public_url": str,
    "contract": str,
    "reject_all": str,
    "moderation": str,
    "seed": _env_int,
    "callback_retries": _env_int,
    "fail_status": _env_int,
    "fail_at_epoch": _env_int,
    "drop_callbacks": _env_bool,
}
