"""The one gate: availability keywords, each rollout stage for each persona, and waffle's pitfalls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group
from waffle.models import Flag

from flags.gates import feature_state, feature_states, is_feature_active, is_feature_available
from flags.registry import FEATURES, SD3_TRAINING, UnknownFeature
from flags.services import flag_set_availability, rollout_rollback
from flags.tiers import is_moderator, user_tier
from tests.flags.helpers import AI, PERSONAS, at_stage, make_user, opt_in

pytestmark = pytest.mark.django_db

LOGGED_IN = frozenset(PERSONAS) - {"anonymous"}
PAID = frozenset({"bronze_member", "silver_member", "gold_member"})

# Who each keyword admits (sd3Training is not toggleable, so available means active).
KEYWORD_AUDIENCE: dict[str, frozenset[str]] = {
    "mod": frozenset({"moderator"}),
    "bronze": frozenset({"bronze_member"}),
    "silver": frozenset({"silver_member"}),
    "gold": frozenset({"gold_member"}),
    "member": PAID,
    "user": LOGGED_IN,
    "public": frozenset(PERSONAS),
    "granted": frozenset({"plain_user"}),  # the one user listed on the flag
}

STAGE_AUDIENCE: dict[str, frozenset[str]] = {
    "off": frozenset(),
    "mods": frozenset({"moderator"}),
    "paid": PAID | {"moderator"},
    "everyone": LOGGED_IN,
}


def _cases(audiences: dict[str, frozenset[str]], thing: str) -> list[Any]:
    """Ids read as sentences: `gold_member_gets_ai_toolkit_at_paid`."""
    return [
        pytest.param(
            key,
            name,
            name in who,
            id=f"{name}_{'gets' if name in who else 'does_not_get'}_{thing}_at_{key}",
        )
        for key, who in audiences.items()
        for name in PERSONAS
    ]


@pytest.mark.parametrize(("keyword", "name", "expected"), _cases(KEYWORD_AUDIENCE, "sd3"))
def test_each_availability_keyword_on_the_waffle_row_admits_its_audience(
    persona: Callable[[str], Any], plain_user: Any, keyword: str, name: str, expected: bool
) -> None:
    flag = flag_set_availability(key=SD3_TRAINING, keywords=[keyword])
    if keyword == "granted":
        flag.users.add(plain_user)  # on the row, a listed user always gets the feature
    user = persona(name)
    assert is_feature_active(user, SD3_TRAINING) is expected
    assert is_feature_available(user, SD3_TRAINING) is expected


@pytest.mark.parametrize(("stage", "name", "expected"), _cases(STAGE_AUDIENCE, "ai_toolkit"))
def test_who_gets_ai_toolkit_at_each_rollout_stage_once_opted_in(
    persona: Callable[[str], Any], stage: str, name: str, expected: bool
) -> None:
    at_stage(stage)
    user = persona(name)
    opt_in(user)
    assert is_feature_available(user, AI) is expected
    assert is_feature_active(user, AI) is expected


def test_a_gold_member_gets_ai_toolkit_at_stage_paid(gold_member: Any) -> None:
    at_stage("paid")
    opt_in(gold_member)
    assert is_feature_active(gold_member, AI)


def test_a_plain_user_does_not_get_ai_toolkit_at_stage_paid(plain_user: Any) -> None:
    at_stage("paid")
    opt_in(plain_user)
    assert not is_feature_active(plain_user, AI)


def test_a_toggleable_feature_is_inactive_until_the_user_opts_in(gold_member: Any) -> None:
    at_stage("paid")
    state = feature_state(gold_member, AI)
    assert (state.available, state.toggleable, state.enabled_preference, state.active) == (
        True,
        True,
        False,  # the registry default
        False,
    )
    opt_in(gold_member)
    assert is_feature_active(gold_member, AI)
    opt_in(gold_member, enabled=False)
    assert not is_feature_active(gold_member, AI)
    assert is_feature_available(gold_member, AI)


def test_anonymous_visitors_never_get_a_toggleable_feature_even_when_public(
    anonymous: Any,
) -> None:
    # The waffle row written straight, as only a bug could: the gate still refuses anonymous.
    ai_flag = Flag.objects.get(name=AI)
    ai_flag.everyone = True
    ai_flag.save()
    ai_flag.flush()
    flag_set_availability(key=SD3_TRAINING, keywords=["public"])
    assert not is_feature_active(anonymous, AI)
    assert not is_feature_available(anonymous, AI)
    assert is_feature_active(anonymous, SD3_TRAINING)
    assert is_feature_active(None, SD3_TRAINING)  # no user at all, e.g. a script


def test_set_off_for_everyone_beats_groups_and_users_outside_a_request(moderator: Any) -> None:
    flag = Flag.objects.get(name=SD3_TRAINING)
    flag.users.add(moderator)
    assert is_feature_active(moderator, SD3_TRAINING)
    flag.everyone = False
    flag.save()
    flag.flush()  # the test transaction never commits, so waffle's on_commit flush never runs
    assert flag.groups.filter(name="mod").exists()
    assert not is_feature_active(moderator, SD3_TRAINING)


def test_a_missing_flag_row_is_off_even_for_a_superuser(superuser: Any, moderator: Any) -> None:
    Flag.objects.filter(name=SD3_TRAINING).delete()
    Flag(name=SD3_TRAINING).flush()
    assert not is_feature_active(superuser, SD3_TRAINING)
    assert not is_feature_active(moderator, SD3_TRAINING)


def test_a_superuser_or_staff_member_without_a_group_gets_nothing(
    superuser: Any, staff: Any
) -> None:
    flag = Flag.objects.get(name=SD3_TRAINING)
    # Even when someone ticks waffle's own superusers/staff boxes, the gate ignores them.
    flag.superusers = True
    flag.staff = True
    flag.save()
    flag.flush()
    assert not is_feature_active(superuser, SD3_TRAINING)
    assert not is_feature_active(staff, SD3_TRAINING)


def test_a_superuser_in_group_mod_gets_what_moderators_get(superuser: Any) -> None:
    superuser.groups.add(Group.objects.get(name="mod"))
    assert is_feature_active(superuser, SD3_TRAINING)


def test_a_percent_on_the_flag_never_rolls_dice(plain_user: Any) -> None:
    flag = Flag.objects.get(name=SD3_TRAINING)
    flag.percent = 99.9
    flag.save()
    flag.flush()
    assert not any(is_feature_active(plain_user, SD3_TRAINING) for _ in range(50))


def test_joining_a_group_takes_effect_on_the_next_check(plain_user: Any) -> None:
    assert not is_feature_active(plain_user, SD3_TRAINING)
    plain_user.groups.add(Group.objects.get(name="mod"))
    assert is_feature_active(plain_user, SD3_TRAINING)


def test_a_rollback_takes_effect_at_once_although_the_cache_is_warm(gold_member: Any) -> None:
    at_stage("paid")
    opt_in(gold_member)
    assert is_feature_active(gold_member, AI)  # waffle has now cached the row and its groups
    rollout_rollback(actor=None, key=AI)
    assert not is_feature_active(gold_member, AI)


def test_a_warm_check_costs_at_most_two_queries_and_every_feature_one_each(
    gold_member: Any, moderator: Any, django_assert_max_num_queries: Any
) -> None:
    at_stage("paid")
    opt_in(gold_member)
    assert is_feature_active(gold_member, AI)  # warms waffle's cache
    with django_assert_max_num_queries(2):  # the user's groups, the user's preferences
        assert is_feature_active(gold_member, AI)
    assert is_feature_active(moderator, SD3_TRAINING)
    with django_assert_max_num_queries(1):
        assert is_feature_active(moderator, SD3_TRAINING)
    # Every feature: waffle's public per-user check asks for the user's groups once per flag it
    # reads (the price of not reading its private cached ids), and the preferences once.
    with django_assert_max_num_queries(len(FEATURES) + 1):
        states = feature_states(moderator)
    assert states[SD3_TRAINING].active


def test_an_unknown_feature_key_is_an_error_not_silently_off(plain_user: Any) -> None:
    with pytest.raises(UnknownFeature):
        is_feature_active(plain_user, "aiToolkitTrainnig")


@pytest.mark.parametrize(
    ("groups", "tier"),
    [
        ((), "free"),
        (("bronze",), "bronze"),
        (("bronze", "gold"), "gold"),
        (("silver", "mod"), "silver"),
    ],
)
def test_a_users_tier_is_their_highest_paid_group(groups: tuple[str, ...], tier: str) -> None:
    user = make_user("tiered", *groups)
    assert user_tier(user) == tier


def test_a_moderator_is_a_member_of_group_mod(moderator: Any, staff: Any, anonymous: Any) -> None:
    assert is_moderator(moderator)
    assert not is_moderator(staff)
    assert not is_moderator(anonymous)
    assert user_tier(anonymous) == "free"
