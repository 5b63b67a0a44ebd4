"""Admin: experiments with their arms (start / end actions), defaults overrides (manual new
defaults, roll back action) and the read-only audit of every defaults change.

Open to moderators (group `mod`, is_staff) and superusers: who moderates is the group, so these
pages ask flags.tiers.is_moderator rather than per-model permission rows."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from experiments import services
from experiments.models import (
    Arm,
    DefaultsChange,
    DefaultsOverride,
    Experiment,
    ExperimentStatus,
)
from flags.tiers import can_moderate


class ModeratorsOnly:
    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_moderate(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_moderate(request.user)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return can_moderate(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_moderate(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ArmFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    def clean(self) -> None:
        super().clean()
        if not _draft(self.instance):
            return  # read-only once started (ArmInline): nothing was posted to check
        live = [
            f.cleaned_data
            for f in self.forms
            if getattr(f, "cleaned_data", None) and not f.cleaned_data.get("DELETE")
        ]
        if sum(1 for d in live if d.get("is_control")) != 1:
            raise ValidationError("Give the experiment exactly one control arm (no overrides).")
        if not any(not d.get("is_control") for d in live):
            raise ValidationError("Add at least one arm that overrides a default.")


def _draft(obj: Any) -> bool:
    return obj is None or getattr(obj, "status", ExperimentStatus.DRAFT) == ExperimentStatus.DRAFT


class ArmInline(ModeratorsOnly, admin.TabularInline[Arm, Experiment]):
    model = Arm
    formset = ArmFormSet
    extra = 2
    fields = ("name", "is_control", "weight", "overrides")

    # The split must not move under running users: arms change only while the experiment is a draft.
    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return can_moderate(request.user) and _draft(args[0] if args else None)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_moderate(request.user) and _draft(obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_moderate(request.user) and _draft(obj)


@admin.register(Experiment)
class ExperimentAdmin(ModeratorsOnly, admin.ModelAdmin[Experiment]):
    list_display = (
        "name", "ecosystem", "base_model", "status", "starts_at", "ends_at", "in_effect",
        "results",
    )  # fmt: skip
    list_filter = ("status", "ecosystem")
    search_fields = ("name", "hypothesis")
    inlines = [ArmInline]
    actions = ["start", "end"]
    readonly_fields = (
        "status", "results", "created_by", "created_at", "started_at", "started_by",
        "ended_at", "ended_by", "promoted_arm",
    )  # fmt: skip
    fields = (
        "name", "hypothesis", "ecosystem", "base_model", "starts_at", "ends_at",
        *readonly_fields,
    )  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if _draft(obj):
            return self.readonly_fields
        return (*self.readonly_fields, "ecosystem", "base_model")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A draft has no runs; anything later is evidence (and runs PROTECT it anyway).
        return obj is not None and can_moderate(request.user) and _draft(obj)

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="In effect", boolean=True)
    def in_effect(self, obj: Experiment) -> bool:
        return obj.in_effect_at(timezone.now())

    @admin.display(description="Results")
    def results(self, obj: Experiment) -> str:
        if not obj.pk:
            return "-"
        return format_html('<a href="{}">Results</a>', reverse("experiments:detail", args=[obj.pk]))

    def save_model(self, request: HttpRequest, obj: Experiment, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    @admin.action(description="Start the selected experiments")
    def start(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        for experiment in queryset:
            try:
                services.experiment_start(actor=request.user, experiment=experiment)
            except services.ExperimentError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"Started {experiment.name}.", messages.SUCCESS)

    @admin.action(description="End the selected experiments")
    def end(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        for experiment in queryset:
            try:
                services.experiment_end(actor=request.user, experiment=experiment)
            except services.ExperimentError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"Ended {experiment.name}.", messages.SUCCESS)


class OverrideForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = DefaultsOverride
        fields = ("ecosystem", "base_model", "values", "reason")

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        ecosystem = data.get("ecosystem")
        if (
            ecosystem
            and Experiment.objects.filter(
                ecosystem=ecosystem, status=ExperimentStatus.RUNNING
            ).exists()
        ):
            raise ValidationError(
                f"An experiment is running on ecosystem {ecosystem}; changing its defaults now "
                "would change its control arm. End or promote the experiment first."
            )
        return data


@admin.register(DefaultsOverride)
class DefaultsOverrideAdmin(ModeratorsOnly, admin.ModelAdmin[DefaultsOverride]):
    form = OverrideForm
    list_display = (
        "id", "scope", "active", "values", "source_experiment", "created_by", "created_at",
        "reason",
    )  # fmt: skip
    list_filter = ("active", "ecosystem")
    actions = ["rollback"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        # Saved values never change in place: new defaults replace them, a rollback undoes that.
        return [f.name for f in DefaultsOverride._meta.fields]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("ecosystem", "base_model", "values", "reason")
        return [f.name for f in DefaultsOverride._meta.fields]

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(
        self, request: HttpRequest, obj: DefaultsOverride, form: Any, change: bool
    ) -> None:
        # Through the service: it replaces the active override and writes the audit record.
        created = services.defaults_override_create(
            actor=request.user,
            ecosystem=obj.ecosystem,
            base_model=obj.base_model,
            values=obj.values,
            reason=obj.reason,
        )
        obj.pk = created.pk
        obj._state.adding = False

    @admin.action(description="Roll back the selected (active) overrides")
    def rollback(self, request: HttpRequest, queryset: QuerySet[DefaultsOverride]) -> None:
        for override in queryset:
            try:
                restored = services.defaults_override_rollback(
                    actor=request.user, override=override, reason="rolled back in admin"
                )
            except services.ExperimentError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                now = f"override #{restored.pk}" if restored else "the catalog's defaults"
                self.message_user(
                    request, f"Rolled back {override.scope}: {now} apply.", messages.SUCCESS
                )


@admin.register(DefaultsChange)
class DefaultsChangeAdmin(ModeratorsOnly, admin.ModelAdmin[DefaultsChange]):
    list_display = (
        "created_at", "action", "ecosystem", "base_model", "actor_name", "changes",
        "experiment", "arm", "reason",
    )  # fmt: skip
    list_filter = ("action", "ecosystem")
    search_fields = ("actor_name", "reason")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Changed")
    def changes(self, obj: DefaultsChange) -> str:
        return ", ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in obj.changed.items()) or "-"
