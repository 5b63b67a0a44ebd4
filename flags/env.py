"""`FEATURE_FLAG_<KEY>` environment overrides (ai-toolkit-plan §2.2).

`true` makes a feature available to every logged-in user, `false` turns it off for everyone, and a
comma list of availability keywords (`mod,gold`) replaces its availability. An override beats the
waffle row, so it is meant for testing and emergencies; toggleable features still respect the
user's own preference. Anything unreadable stops start-up: `FlagsConfig.ready()` parses
`settings.FEATURE_FLAG_OVERRIDES` (every FEATURE_FLAG_* variable, config/settings.py).

Unlike Civitai (facts §4.3: unknown words dropped, so `=true` silently means *off*), nothing here is
dropped: an unknown keyword, an empty item or an unknown feature name is an error."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from flags.registry import FEATURES, KEYWORDS, USER

PREFIX = "FEATURE_FLAG_"


@dataclass(frozen=True)
class Availability:
    keywords: frozenset[str]  # empty: off for everyone
    raw: str  # the value as written, for admin and error messages

    @property
    def is_off(self) -> bool:
        return not self.keywords


def parse_feature_env(environ: Mapping[str, str]) -> dict[str, Availability]:
    by_env_name = {feature.env_name: key for key, feature in FEATURES.items()}
    parsed: dict[str, Availability] = {}
    for name, value in environ.items():
        if not name.startswith(PREFIX) or value.strip() == "":
            continue  # an empty value means unset, as for every other setting (config/env.py)
        key = by_env_name.get(name)
        if key is None:
            raise ImproperlyConfigured(
                f"{name} names no feature; known: {', '.join(sorted(by_env_name))}."
            )
        parsed[key] = _parse_value(name, value)
    return parsed


def _parse_value(name: str, value: str) -> Availability:
    lowered = value.strip().lower()
    if lowered == "true":
        return Availability(frozenset({USER}), value)
    if lowered == "false":
        return Availability(frozenset(), value)
    items = [item.strip() for item in lowered.split(",")]
    if any(item == "" for item in items):
        raise ImproperlyConfigured(f"{name}={value!r} has an empty item.")
    unknown = sorted(set(items) - KEYWORDS)
    if unknown:
        raise ImproperlyConfigured(
            f"{name}={value!r}: unknown keyword(s) {', '.join(unknown)}; use true, false or a "
            f"comma list of {', '.join(sorted(KEYWORDS))}."
        )
    return Availability(frozenset(items), value)


# The overrides in force in this process; read once at start-up (FlagsConfig.ready()).
_overrides: dict[str, Availability] = {}


def load(environ: Mapping[str, str] | None = None) -> dict[str, Availability]:
    global _overrides
    # Replacing the whole dict: a reload never keeps an override that was removed from the env.
    _overrides = parse_feature_env(settings.FEATURE_FLAG_OVERRIDES if environ is None else environ)
    return dict(_overrides)


def override_for(key: str) -> Availability | None:
    return _overrides.get(key)


def current() -> dict[str, Availability]:
    return dict(_overrides)


@contextmanager
def override(**environ: str) -> Iterator[dict[str, Availability]]:
    """For tests: `with override(FEATURE_FLAG_AI_TOOLKIT_TRAINING="mod,gold"): ...`.

    The given variables replace every override in force (none given: no overrides); the previous
    ones come back on exit."""
    global _overrides
    saved = _overrides
    _overrides = parse_feature_env(environ)
    try:
        yield dict(_overrides)
    finally:
        _overrides = saved
