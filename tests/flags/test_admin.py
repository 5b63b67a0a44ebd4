"""The moderator's rollout panel on the waffle Flag admin page, and who may use it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from waffle.models import Flag

from flags.models import FeaturePreference, RolloutChange
from flags.registry import SD3_TRAINING
from flags.services import rollout_stage
from tests.flags.helpers import AI, at_stage, make_runs

pytestmark = pytest.mark.django_db

REASON = "Paid members asked for it; failures were all bad datasets"


def _flag(key: str = AI) -> Flag:
    return Flag.objects.get(name=key)


def _change_url(key: str = AI) -> str:
    return reverse("admin:waffle_flag_change", args=[_flag(key).pk])


def _rollout_url(key: str = AI) -> str:
    return reverse("admin:waffle_flag_rollout", args=[_flag(key).pk])


def _logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_a_moderator_sees_the_stage_the_audience_and_the_numbers(moderator: Any) -> None:
    make_runs(moderator, succeeded=17, failed=3)
    response = _logged_in(moderator).get(_change_url())
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-stage="mods"' in page
    assert '<span id="rollout-audience">Moderators.</span>' in page
    assert "17 of 20 finished ai-toolkit runs succeeded" in page
    assert "85%" in page
    assert "Promote to: Paid tiers and moderators" in page
    assert "Roll back to: Off" in page


def test_a_moderator_promotes_with_a_reason_and_the_audit_records_it(moderator: Any) -> None:
    response = _logged_in(moderator).post(
        _rollout_url(),
        {"action": "promote", "expected_stage": "mods", "reason": REASON},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == _change_url()
    assert rollout_stage(key=AI) == "paid"
    change = RolloutChange.objects.get()
    assert (change.actor, change.from_stage, change.to_stage) == (moderator, "mods", "paid")
    assert (change.reason, change.override_used, change.finished_runs) == (REASON, True, 0)
    assert any("Moderators -> Paid tiers" in m for m in _messages(response))
    assert set(_flag().groups.values_list("name", flat=True)) == {"mod", "bronze", "silver", "gold"}


def test_the_guards_refusal_is_shown_as_an_admin_error(moderator: Any) -> None:
    make_runs(moderator, succeeded=5, failed=5)
    response = _logged_in(moderator).post(
        _rollout_url(), {"action": "promote", "expected_stage": "mods", "reason": ""}, follow=True
    )
    assert response.status_code == 200
    errors = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "error"]
    assert errors and errors[0].startswith("Not promoted: 5 of 10 finished runs succeeded (50%)")
    assert rollout_stage(key=AI) == "mods"
    assert not RolloutChange.objects.exists()


def test_a_moderator_rolls_back_at_once(moderator: Any) -> None:
    at_stage("everyone")
    _logged_in(moderator).post(
        _rollout_url(), {"action": "rollback", "expected_stage": "everyone", "reason": ""}
    )
    assert rollout_stage(key=AI) == "paid"
    assert RolloutChange.objects.filter(actor=moderator, to_stage="paid").exists()


def test_turn_off_now_goes_straight_to_off(moderator: Any) -> None:
    at_stage("everyone")
    page = _logged_in(moderator).get(_change_url()).content.decode()
    assert "Turn off now" in page
    _logged_in(moderator).post(
        _rollout_url(), {"action": "off", "expected_stage": "everyone", "reason": "incident 42"}
    )
    assert rollout_stage(key=AI) == "off"
    change = RolloutChange.objects.get(actor=moderator)
    assert (change.from_stage, change.to_stage, change.reason) == ("everyone", "off", "incident 42")


def test_a_stale_page_changes_nothing(moderator: Any) -> None:
    at_stage("paid")  # someone else promoted while this moderator was looking at "mods"
    response = _logged_in(moderator).post(
        _rollout_url(),
        {"action": "promote", "expected_stage": "mods", "reason": REASON},
        follow=True,
    )
    assert rollout_stage(key=AI) == "paid"
    assert any("while you were looking" in m for m in _messages(response))


def test_a_plain_user_is_sent_to_the_admin_login(plain_user: Any) -> None:
    client = _logged_in(plain_user)
    for url in (_change_url(), _rollout_url()):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    response = client.post(_rollout_url(), {"action": "promote", "expected_stage": "mods"})
    assert response.status_code == 302
    assert rollout_stage(key=AI) == "mods"


def test_staff_outside_group_mod_cannot_see_flags_or_roll_out(staff: Any) -> None:
    client = _logged_in(staff)
    assert client.get(_change_url()).status_code == 403
    response = client.post(
        _rollout_url(), {"action": "rollback", "expected_stage": "mods", "reason": ""}
    )
    assert response.status_code == 403
    assert rollout_stage(key=AI) == "mods"


def test_a_superuser_may_roll_out_too(superuser: Any) -> None:
    _logged_in(superuser).post(
        _rollout_url(), {"action": "rollback", "expected_stage": "mods", "reason": ""}
    )
    assert rollout_stage(key=AI) == "off"


def test_the_flag_form_cannot_widen_a_staged_flag_past_the_guard(moderator: Any) -> None:
    flag = _flag()
    client = _logged_in(moderator)
    response = client.post(
        _change_url(),
        {
            "name": AI,
            "note": "edited",
            "everyone": "true",  # read-only on a staged flag: ignored
            "authenticated": "on",
            "users": str(moderator.pk),  # so is its user list
        },
    )
    assert response.status_code == 302
    flag.refresh_from_db()
    assert (flag.note, flag.everyone, flag.authenticated) == ("edited", None, False)
    assert rollout_stage(key=AI) == "mods"


def test_an_unstaged_flag_is_edited_in_the_form_with_superusers_forced_off(
    moderator: Any, gold_member: Any
) -> None:
    from django.contrib.auth.models import Group

    gold = Group.objects.get(name="gold")
    response = _logged_in(moderator).post(
        _change_url(SD3_TRAINING),
        {
            "name": SD3_TRAINING,
            "note": "gold too",
            "everyone": "",
            "groups": [gold.pk],
            "users": "",
        },
    )
    assert response.status_code == 302
    flag = _flag(SD3_TRAINING)
    assert list(flag.groups.values_list("name", flat=True)) == ["gold"]
    assert (flag.superusers, flag.staff) == (False, False)
    assert (
        "rollout-panel" not in _logged_in(moderator).get(_change_url(SD3_TRAINING)).content.decode()
    )


def test_the_audit_log_and_preferences_are_read_only_for_moderators(moderator: Any) -> None:
    at_stage("off")
    change = RolloutChange.objects.get()
    FeaturePreference.objects.create(user=moderator, key=AI, enabled=True)
    client = _logged_in(moderator)
    assert client.get(reverse("admin:flags_rolloutchange_changelist")).status_code == 200
    assert client.get(reverse("admin:flags_featurepreference_changelist")).status_code == 200
    assert client.get(reverse("admin:flags_rolloutchange_add")).status_code == 403
    assert (
        client.post(reverse("admin:flags_rolloutchange_delete", args=[change.pk])).status_code
        == 403
    )
    detail = client.post(
        reverse("admin:flags_rolloutchange_change", args=[change.pk]), {"reason": "rewritten"}
    )
    assert detail.status_code == 403
    change.refresh_from_db()
    assert change.reason == "test set-up, guard overridden"


def test_moderators_get_nothing_else_in_admin(moderator: Any) -> None:
    client = _logged_in(moderator)
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403
    assert client.get(reverse("admin:auth_group_changelist")).status_code == 403
    assert client.get(reverse("admin:waffle_flag_add")).status_code == 403
    assert client.get(reverse("admin:training_trainingrun_changelist")).status_code == 200


def test_renaming_flags_in_admin_cannot_hand_ai_toolkit_to_everyone(
    moderator: Any, superuser: Any, plain_user: Any, gold_member: Any
) -> None:
    """#16 item 1: rename aiToolkitTraining away, then rename another flag to it with
    `authenticated` on. Every step is refused, nothing changes, no stage moves unaudited."""
    from django.test import Client as PageClient

    client = _logged_in(moderator)
    sd3_before = (_flag(SD3_TRAINING).pk, _flag(SD3_TRAINING).authenticated)
    renamed = client.post(_change_url(), {"name": f"{AI}-disabled", "note": "parked", "users": ""})
    assert renamed.status_code == 200  # the form again, with the error
    assert "cannot be renamed" in renamed.content.decode()
    repointed = client.post(
        _change_url(SD3_TRAINING),
        {"name": AI, "note": "", "everyone": "", "authenticated": "on", "users": ""},
    )
    assert repointed.status_code == 200
    assert "cannot be renamed" in repointed.content.decode()
    # Deleting the row, one by one or in bulk, is refused too (even to a superuser).
    assert client.post(reverse("admin:waffle_flag_delete", args=[_flag().pk])).status_code == 403
    boss = _logged_in(superuser)
    assert boss.post(reverse("admin:waffle_flag_delete", args=[_flag().pk])).status_code == 403
    bulk = boss.post(
        reverse("admin:waffle_flag_changelist"),
        {"action": "delete_unregistered", "_selected_action": [_flag().pk, _flag(SD3_TRAINING).pk]},
        follow=True,
    )
    assert "cannot be deleted" in " ".join(_messages(bulk))

    assert Flag.objects.filter(name=AI).count() == 1
    assert rollout_stage(key=AI) == "mods"
    assert not RolloutChange.objects.exists()
    assert (_flag(SD3_TRAINING).pk, _flag(SD3_TRAINING).authenticated) == sd3_before
    # The plain user is still refused AI Toolkit, and SD 3.5 is unaffected.
    api = PageClient()
    api.force_login(plain_user)
    response = api.put(
        f"/api/v1/features/{AI}/", {"enabled": True}, content_type="application/json"
    )
    assert response.status_code == 403
    from flags.gates import is_feature_active

    assert not is_feature_active(plain_user, AI)
    assert is_feature_active(moderator, SD3_TRAINING)
    assert not is_feature_active(gold_member, SD3_TRAINING)


def test_a_new_flag_cannot_take_a_registered_features_name(superuser: Any) -> None:
    response = _logged_in(superuser).post(
        reverse("admin:waffle_flag_add"),
        {"name": AI, "note": "", "everyone": "", "authenticated": "on", "users": ""},
    )
    assert response.status_code == 200
    assert "registered feature" in response.content.decode()
    assert Flag.objects.filter(name=AI).count() == 1


def test_an_unregistered_flag_can_still_be_deleted_in_bulk(moderator: Any, superuser: Any) -> None:
    spare = Flag.objects.create(name="promoBanner", everyone=False)
    response = _logged_in(superuser).post(
        reverse("admin:waffle_flag_changelist"),
        {"action": "delete_unregistered", "_selected_action": [spare.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert not Flag.objects.filter(pk=spare.pk).exists()
