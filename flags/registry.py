"""The features this service knows, declared the way the plan declares them (ai-toolkit-plan §2.1).

The registry holds the *defaults*; the live availability is the waffle `Flag` row of the same name,
which moderators edit in admin. `sync_features` creates missing rows from here and never touches
existing ones. Pure Python: importable before Django is set up (config/settings.py may parse the
environment override with it)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vocabulary import catalog

# Availability keywords (civitai-trainer-facts §4.1, the subset this service has).
MOD = "mod"
BRONZE = "bronze"
SILVER = "silver"
GOLD = "gold"
MEMBER = "member"  # any paid tier
USER = "user"  # any logged-in user
PUBLIC = "public"  # everyone, anonymous visitors included
GRANTED = "granted"  # the users listed on the flag row

PAID_TIERS: tuple[str, ...] = (BRONZE, SILVER, GOLD)  # lowest first
GROUP_KEYWORDS: frozenset[str] = frozenset({MOD, *PAID_TIERS})
KEYWORDS: frozenset[str] = frozenset({*GROUP_KEYWORDS, MEMBER, USER, PUBLIC, GRANTED})


@dataclass(frozen=True)
class Feature:
    key: str
    display_name: str
    description: str
    availability: tuple[str, ...]
    toggleable: bool
    default: bool
    # The engine whose finished runs gate promotion past `mods`; None: no staged rollout.
    rollout_engine: str | None = None

    @property
    def env_name(self) -> str:
        return env_name_for(self.key)


def env_name_for(key: str) -> str:
    """`aiToolkitTraining` -> `FEATURE_FLAG_AI_TOOLKIT_TRAINING`, `sd3Training` -> `..._SD3_TRAINING`."""
    return "FEATURE_FLAG_" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).upper()


# The keys the training catalog gates on, named once there.
AI_TOOLKIT_TRAINING = catalog.AI_TOOLKIT_FEATURE
SD3_TRAINING = catalog.SD3_FEATURE

FEATURES: dict[str, Feature] = {
    feature.key: feature
    for feature in (
        Feature(
            key=AI_TOOLKIT_TRAINING,
            display_name="AI Toolkit Training",
            description="Enable AI Toolkit as a training engine option",
            availability=(MOD,),  # start with mods only (plan §2.1); widened by the rollout
            toggleable=True,
            default=False,
            rollout_engine=catalog.AI_TOOLKIT,
        ),
        Feature(
            key=SD3_TRAINING,
            display_name="SD 3.5 Training",
            description="SD 3.5 Medium and Large as training base models",
            availability=(MOD,),
            # Not toggleable: which base models a platform offers is its decision, not a user
            # setting, and Civitai makes no training flag toggleable (facts §4.2).
            toggleable=False,
            default=False,
        ),
    )
}


class UnknownFeature(LookupError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"Unknown feature {self.key!r}; known: {', '.join(sorted(FEATURES))}."


def feature_get(key: str) -> Feature:
    try:
        return FEATURES[key]
    except KeyError:
        raise UnknownFeature(key) from None
