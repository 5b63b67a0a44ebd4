"""Admin: waffle's Flag admin with the rollout panel, and read-only audit and preference lists.

Moderators (group `mod`, is_staff) hold only the permissions flags.services.MOD_PERMISSIONS lists."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from waffle.admin import FlagAdmin
from waffle.models import Flag

from flags.models import FeaturePreference, RolloutChange, RolloutStage, StagedFeature
from flags.registry import FEATURES
from flags.selectors import rollout_status
from flags.services import RolloutError, rollout_promote, rollout_rollback, rollout_stage
from flags.stages import stage_label
from flags.tiers import is_moderator

# Who gets a staged feature: changed only by the rollout service (promote / roll back), which
# applies the guard and writes the audit record; never by the form.
ROLLOUT_FIELDS = ("everyone", "authenticated", "groups", "users")


def _has_rollout(flag: Flag | None) -> bool:
    feature = FEATURES.get(flag.name) if flag is not None else None
    return feature is not None and feature.rollout_engine is not None


def can_roll_out(user: Any) -> bool:
    return bool(user.is_superuser or (is_moderator(user) and user.has_perm("waffle.change_flag")))


class FlagAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    """A registered feature's row keeps its name, and no other row may take one: a rename would
    switch the feature off (its row gone) or hand it to whatever row took the name."""

    class Meta:
        model = Flag
        fields = ("name", "note", "everyone", "authenticated", "groups", "users")

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        old = self.instance.name if self.instance.pk else None
        if old is not None and old in FEATURES and name != old:
            raise forms.ValidationError(
                f"{old} is a registered feature: its flag cannot be renamed.", code="registered"
            )
        if name in FEATURES and name != old:
            raise forms.ValidationError(
                f"{name} is the name of a registered feature's flag; choose another name.",
                code="reserved",
            )
        return name


@admin.action(description="Delete selected flags (registered features are kept)", permissions=["delete"])  # fmt: skip
def delete_unregistered(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
    kept = sorted(name for name in queryset.values_list("name", flat=True) if name in FEATURES)
    # One by one, as waffle's own action does, so each delete flushes waffle's cache.
    deleted = 0
    for flag in queryset.exclude(name__in=list(FEATURES)):
        flag.delete()
        deleted += 1
    if deleted:
        modeladmin.message_user(request, f"Deleted {deleted} flags.", messages.SUCCESS)
    if kept:
        modeladmin.message_user(
            request,
            f"Kept {', '.join(kept)}: registered features' flags cannot be deleted.",
            messages.WARNING,
        )


class RolloutForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("promote", "Promote"), ("rollback", "Roll back"), ("off", "Turn off now")]
    )
    # The stage the moderator was looking at: if someone else changed it meanwhile, refuse.
    expected_stage = forms.CharField()
    reason = forms.CharField(required=False, max_length=2000, widget=forms.Textarea)


if admin.site.is_registered(Flag):
    admin.site.unregister(Flag)


@admin.register(Flag)
class RolloutFlagAdmin(FlagAdmin):
    change_form_template = "admin/waffle/flag/change_form.html"
    form = FlagAdminForm
    # Only what the gate reads (flags.gates): superusers, staff, percent, testing, languages and
    # rollout mode are ignored there, so they are not offered here.
    fields = ("name", "note", "everyone", "authenticated", "groups", "users")
    filter_horizontal = ("groups",)
    # waffle's FlagAdmin has longer tuples, which mypy takes for their type.
    list_display = ("name", "note", "everyone", "authenticated", "rollout_stage")  # type: ignore[assignment]
    list_filter = ("everyone", "authenticated")  # type: ignore[assignment]
    # "Enable/disable for everyone" would move a staged feature past the guard without an audit
    # record; moderators use the rollout panel (or the form, for unstaged flags) instead.
    actions = [delete_unregistered]

    @admin.display(description="Rollout stage")
    def rollout_stage(self, obj: Flag) -> str:
        return stage_label(rollout_stage(key=obj.name)) if _has_rollout(obj) else "-"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.name in FEATURES:
            return False  # the feature would silently switch off for everyone
        return super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if _has_rollout(obj):
            # A staged flag's audience changes only through promote/roll back, which apply the
            # guard and write the audit record.
            return readonly + ROLLOUT_FIELDS
        return readonly

    def save_model(self, request: HttpRequest, obj: Flag, form: Any, change: bool) -> None:
        # The gate ignores these columns; keep them off so waffle's own tools agree with it.
        obj.superusers = False
        obj.staff = False
        obj.percent = None
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # The group/user lists changed after save() scheduled its flush; flush once more at commit.
        transaction.on_commit(form.instance.flush)

    def get_urls(self) -> list[URLPattern]:
        urls: list[URLPattern] = [
            path(
                "<path:object_id>/rollout/",
                self.admin_site.admin_view(self.rollout_view),
                name="waffle_flag_rollout",
            ),
        ]
        return urls + super().get_urls()

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        flag = self.get_object(request, unquote(object_id))
        if _has_rollout(flag) and self.has_view_or_change_permission(request, flag):
            assert flag is not None
            extra_context["rollout"] = rollout_status(key=flag.name)
            extra_context["rollout_form_url"] = reverse("admin:waffle_flag_rollout", args=[flag.pk])
            extra_context["can_roll_out"] = can_roll_out(request.user)
        return super().change_view(request, object_id, form_url, extra_context)

    def rollout_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        flag = self.get_object(request, unquote(object_id))
        if flag is None or not _has_rollout(flag):
            raise PermissionDenied
        if not can_roll_out(request.user):
            raise PermissionDenied
        change_url = reverse("admin:waffle_flag_change", args=[flag.pk])
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        form = RolloutForm(request.POST)
        if not form.is_valid():
            messages.error(request, "The rollout form was incomplete; nothing changed.")
            return HttpResponseRedirect(change_url)
        data = form.cleaned_data
        current = rollout_status(key=flag.name).stage
        if data["expected_stage"] != current:
            messages.error(
                request,
                f"The stage changed to {stage_label(current)} while you were looking; "
                "nothing changed. Check the page and try again.",
            )
            return HttpResponseRedirect(change_url)
        try:
            if data["action"] == "promote":
                change = rollout_promote(actor=request.user, key=flag.name, reason=data["reason"])
            else:
                # "off" is the one-click kill switch: a rollback straight to the first stage.
                change = rollout_rollback(
                    actor=request.user,
                    key=flag.name,
                    to_stage=RolloutStage.OFF if data["action"] == "off" else None,
                    reason=data["reason"],
                )
        except RolloutError as exc:
            messages.error(request, str(exc))
        else:
            note = (
                " The guard was overridden; your reason is in the audit log."
                if change.override_used
                else ""
            )
            messages.success(
                request,
                f"{flag.name}: {stage_label(change.from_stage)} -> "
                f"{stage_label(change.to_stage)}.{note}",
            )
        return HttpResponseRedirect(change_url)


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RolloutChange)
class RolloutChangeAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "feature_key",
        "from_stage",
        "to_stage",
        "actor_name",
        "via",
        "success_rate",
        "finished_runs",
        "override_used",
    )
    list_filter = ("feature_key", "to_stage", "override_used", "via")
    search_fields = ("actor_name", "reason")
    date_hierarchy = "created_at"


@admin.register(StagedFeature)
class StagedFeatureAdmin(ReadOnlyAdmin):
    list_display = ("key", "stage", "changed_at", "changed_by_name", "reason")


@admin.register(FeaturePreference)
class FeaturePreferenceAdmin(ReadOnlyAdmin):
    list_display = ("user", "key", "enabled", "updated_at")
    list_filter = ("key", "enabled")
    search_fields = ("user__username",)
    list_select_related = ("user",)
