"""Training runs in Django admin, built to stay fast at millions of rows: no full COUNT (the
paginator counts at most COUNT_CAP rows), no date hierarchy (a DISTINCT over every date), no
filter whose choices need a query, exact-match search that lands on indexes, and the default order
(-created_at, -pk) read straight off the run_created_id index (migration 0004)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.functional import cached_property
from django.utils.html import format_html

from flags.tiers import is_moderator
from training import lifecycle, services
from training.models import RunEvent, TrainingRun
from training.orchestrator.callbacks import callback_tokens_redacted
from training.orchestrator.client import OrchestratorError
from training.payloads import stored_workflow_body
from training.selectors import ecosystem_of
from training.tasks import refresh_run_task
from training.webhooks.admin import WebhookDeliveryInline
from vocabulary import catalog

COUNT_CAP = 10_000
MAX_ACTION_RUNS = 100  # cancel/retry act on at most this many selected runs
SYNC_RECHECK_RUNS = 20  # re-check this many in the request; more go to the workers


class AtLeast(int):
    """A count that stopped at the cap: the admin prints it as "10000+"."""

    def __str__(self) -> str:
        return f"{int(self)}+"


class CappedCountPaginator(Paginator):
    @cached_property
    def count(self) -> int:  # type: ignore[override]
        # COUNT over at most COUNT_CAP + 1 rows of the filtered list, never the whole table.
        found = int(self.object_list.order_by().values("pk")[: COUNT_CAP + 1].count())  # type: ignore[attr-defined]
        return AtLeast(COUNT_CAP) if found > COUNT_CAP else found


class EcosystemFilter(admin.SimpleListFilter):
    """Base model family, from the catalog: its choices cost no query (a plain list_filter on the
    `ecosystem` column would run SELECT DISTINCT over every run, and it is set only for AI
    Toolkit runs)."""

    title = "ecosystem"
    parameter_name = "family"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        seen: dict[str, str] = {}
        for key, base in catalog.BASE_MODELS.items():
            seen.setdefault(ecosystem_of(key), base.family)
        return [(eco, f"{family} ({eco})") for eco, family in seen.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        bases = [key for key in catalog.BASE_MODELS if ecosystem_of(key) == value]
        return queryset.filter(base_model__in=bases)


class CancelReasonForm(forms.Form):
    reason = forms.CharField(
        min_length=services.MIN_CANCEL_REASON,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown to each run's owner on the run's timeline.",
    )


class RunEventInline(admin.TabularInline[RunEvent, TrainingRun]):
    model = RunEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "from_status", "to_status", "message")
    readonly_fields = fields
    verbose_name_plural = "Timeline"

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin[TrainingRun]):
    list_display = (
        "id", "owner", "lora_name", "base_model", "engine", "status", "charged_cost", "error_code",
        "created_at",
    )  # fmt: skip
    list_filter = (
        "status",
        "engine",
        EcosystemFilter,
        "base_model",
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("=workflow_id",)  # shows the box; get_search_results does the matching
    search_help_text = "Exact run id, workflow id or username."
    list_select_related = ("owner",)
    ordering = ("-created_at",)
    paginator = CappedCountPaginator
    show_full_result_count = False  # a COUNT(*) over millions of runs on every page is waste
    show_facets = admin.ShowFacets.NEVER  # facets count per filter choice: full scans
    actions = ("recheck_runs", "cancel_runs")
    inlines = [RunEventInline, WebhookDeliveryInline]
    readonly_fields = [f.name for f in TrainingRun._meta.fields] + ["orchestrator_payload"]
    fieldsets = (
        (None, {"fields": ("id", "owner", "status", "lora_name", "base_model", "custom_model")}),
        ("Engine", {"fields": ("engine", "ecosystem", "model_variant", "params", "priority")}),
        ("Experiment", {"fields": ("experiment", "experiment_arm", "experiment_outcome")}),
        ("Data", {"fields": ("training_data_url", "image_count", "sample_prompts", "negative_prompt")}),
        ("Orchestrator", {"fields": (
            "workflow_id", "orchestrator_status", "estimated_cost", "charged_cost",
            "submit_attempts", "outputs", "error_code", "error_message", "retried_from",
            "orchestrator_payload",
        )}),
        ("Times", {"fields": ("created_at", "updated_at", "submitted_at", "started_at", "completed_at")}),
    )  # fmt: skip

    @admin.display(description="Orchestrator payload (exact body)")
    def orchestrator_payload(self, run: TrainingRun) -> str:
        body = json.dumps(callback_tokens_redacted(stored_workflow_body(run)), indent=2)
        return format_html('<pre class="payload">{}</pre>', body)

    def has_add_permission(self, request: object) -> bool:
        return False  # runs are created through the API and the pages, which validate them

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[TrainingRun], search_term: str
    ) -> tuple[QuerySet[TrainingRun], bool]:
        """Exact matches only, each on its own index (pk, run_workflow, run_owner_created);
        a substring search would scan every run."""
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(workflow_id=term)
        owners = list(
            get_user_model().objects.filter(username=term).values_list("pk", flat=True)[:1]
        )
        if owners:
            match |= Q(owner_id__in=owners)
        try:
            match |= Q(pk=uuid.UUID(term))
        except ValueError:
            pass
        return queryset.filter(match), False

    # --- actions -------------------------------------------------------------------------------

    def _selected(self, request: HttpRequest, queryset: QuerySet[TrainingRun]) -> list[TrainingRun]:
        runs = list(queryset.select_related("owner")[: MAX_ACTION_RUNS + 1])
        if len(runs) > MAX_ACTION_RUNS:
            self.message_user(
                request,
                f"Select at most {MAX_ACTION_RUNS} runs for this action; nothing was done.",
                messages.ERROR,
            )
            return []
        return runs

    @admin.action(description="Re-check selected runs with the orchestrator", permissions=["view"])
    def recheck_runs(self, request: HttpRequest, queryset: QuerySet[TrainingRun]) -> None:
        runs = self._selected(request, queryset)
        live = [r for r in runs if not r.is_terminal and r.workflow_id]
        skipped = len(runs) - len(live)
        if len(live) > SYNC_RECHECK_RUNS:
            for run in live:
                refresh_run_task.delay(str(run.pk))
            self.message_user(request, f"Queued a re-check of {len(live)} runs.", messages.INFO)
            return
        changed: list[str] = []
        for run in live:
            try:
                status = lifecycle.run_refresh(run_id=run.pk)
            except OrchestratorError as exc:
                self.message_user(request, f"Run {run.pk}: {exc.message}", messages.ERROR)
                continue
            if status != run.status:
                changed.append(f"{run.pk} {run.status} → {status}")
        if live:
            detail = f" Changed: {'; '.join(changed)}." if changed else " No status changed."
            self.message_user(request, f"Re-checked {len(live)} runs.{detail}", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"Skipped {skipped} runs that have finished or have no workflow yet.",
                messages.WARNING,
            )

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        """Moderators (group `mod`) and superusers may cancel anyone's active run, with a reason.
        Nobody creates or retries runs in another user's account here: only owners do that, in
        the API or the pages (docs/console.md)."""
        user: Any = request.user
        return bool(user.is_superuser or (is_moderator(user) and user.is_staff))

    @admin.action(description="Cancel selected runs (asks for a reason the owners will read)", permissions=["cancel"])  # fmt: skip
    def cancel_runs(
        self, request: HttpRequest, queryset: QuerySet[TrainingRun]
    ) -> TemplateResponse | None:
        runs = self._selected(request, queryset)
        if not runs:
            return None
        form = CancelReasonForm(request.POST if "confirm" in request.POST else None)
        if not form.is_valid():
            # The intermediate page: which runs, and the reason the owners will read.
            context = {
                **self.admin_site.each_context(request),
                "title": "Cancel runs",
                "opts": self.model._meta,
                "runs": runs,
                "form": form,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/training/trainingrun/cancel_runs.html", context)
        canceled = 0
        for run in runs:
            try:
                services.training_run_cancel(
                    run=run, actor=request.user, reason=form.cleaned_data["reason"]
                )
            except (services.RunConflict, services.OrchestratorUnavailable) as exc:
                self.message_user(request, f"Run {run.pk}: {exc}", messages.ERROR)
                continue
            canceled += 1
        if canceled:
            self.message_user(
                request,
                f"Canceled {canceled} runs. Their owners see your reason on the run's timeline.",
                messages.SUCCESS,
            )
        return None
