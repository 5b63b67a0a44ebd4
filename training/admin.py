from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from training.console import rollup  # noqa: F401  (registers the rollup models at start-up)
from training.models import RunEvent, TrainingRun
from training.payloads import workflow_body


class RunEventInline(admin.TabularInline[RunEvent, TrainingRun]):
    model = RunEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "from_status", "to_status", "message")
    readonly_fields = fields

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin[TrainingRun]):
    list_display = (
        "id", "owner", "lora_name", "base_model", "engine", "status", "estimated_cost",
        "created_at",
    )  # fmt: skip
    list_filter = ("status", "engine", "ecosystem", "base_model", "created_at")
    search_fields = ("=id", "=workflow_id", "owner__username", "lora_name")
    list_select_related = ("owner",)
    show_full_result_count = False  # a COUNT(*) over millions of runs on every page is waste
    date_hierarchy = "created_at"
    inlines = [RunEventInline]
    readonly_fields = [f.name for f in TrainingRun._meta.fields] + ["orchestrator_payload"]
    fieldsets = (
        (None, {"fields": ("id", "owner", "status", "lora_name", "base_model", "custom_model")}),
        ("Engine", {"fields": ("engine", "ecosystem", "model_variant", "params", "priority")}),
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
        body = json.dumps(workflow_body(run, run_id=run.id), indent=2)
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", body)

    def has_add_permission(self, request: object) -> bool:
        return False  # runs are created through the API and the pages, which validate them
