"""Reads of training runs for a request, scoped by the acting user (operator-wide aggregates,
for the console: training/stats.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from experiments.defaults import effective_defaults
from experiments.defaults import snapshot as defaults_snapshot
from flags.gates import is_feature_active
from flags.services import SuccessRate
from training.models import FINISHED_STATUSES, RunStatus, TrainingRun
from training.orchestrator.contracts import active as active_contract
from training.runspec import ai_toolkit_unavailable
from vocabulary import catalog


def ecosystem_of(base_model: str) -> str:
    """The family a base model trains in: its AI Toolkit ecosystem, else its base type
    (Hunyuan Video has none). The admin's filter and the console's rollups group by it."""
    base = catalog.BASE_MODELS.get(base_model)
    if base is None:
        return "unknown"
    return base.ecosystem or base.base_type


def training_run_list(
    *, user: Any, status: str | None = None, engine: str | None = None
) -> QuerySet[TrainingRun]:
    runs = TrainingRun.objects.filter(owner=user)
    if status:
        runs = runs.filter(status=status)
    if engine:
        runs = runs.filter(engine=engine)
    return runs.order_by("-created_at")


def training_run_get(*, user: Any, run_id: UUID | str) -> TrainingRun:
    """The caller's run; anyone else's is DoesNotExist, which the API answers with 404."""
    return TrainingRun.objects.get(owner=user, pk=run_id)


def engine_success_rate(*, engine: str, days: int) -> SuccessRate:
    """Succeeded / finished runs of an engine that completed in the last `days` days.

    The rollout guard and the moderator dashboard both read this one number."""
    since = timezone.now() - timedelta(days=days)
    row = TrainingRun.objects.filter(
        engine=engine, status__in=FINISHED_STATUSES, completed_at__gte=since
    ).aggregate(
        finished=Count("pk"),
        succeeded=Count("pk", filter=Q(status=RunStatus.SUCCEEDED)),
    )
    return SuccessRate(succeeded=row["succeeded"] or 0, finished=row["finished"] or 0)


def _param_rows(base_key: str, engine: catalog.Engine, contract: str) -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "label": s.label,
            "type": s.kind,
            "default": s.default,
            "min": s.minimum,
            "max": s.maximum,
            "options": list(s.options),
            "locked": s.locked,
            "nullable": s.nullable,
            "step": s.step,
            "computed": s.computed,
            "help": s.help,
        }
        for s in catalog.param_specs(base_key, engine, contract)
    ]


def training_catalog(*, user: Any) -> dict[str, Any]:
    """Base models the caller may use, and for each the engines with their availability for the
    caller (flags and the active contract applied) and their parameters."""
    contract = active_contract().name
    ai_toolkit_active = is_feature_active(user, catalog.AI_TOOLKIT_FEATURE)
    snap = defaults_snapshot() if ai_toolkit_active else None  # one cache read for every row
    gated: dict[str, bool] = {}
    models = []
    for base in catalog.BASE_MODELS.values():
        if base.required_feature:
            if base.required_feature not in gated:
                gated[base.required_feature] = is_feature_active(user, base.required_feature)
            if not gated[base.required_feature]:
                continue
        engines = []
        for key in catalog.ENGINES:
            if key not in base.engines and not (
                key == catalog.AI_TOOLKIT and base.ai_toolkit_unavailable
            ):
                continue
            reason: str | None = None
            if key == catalog.AI_TOOLKIT:
                reason = ai_toolkit_unavailable(base)
                if reason is None and not ai_toolkit_active:
                    reason = "AI Toolkit is in beta and not enabled for your account yet."
            rows = _param_rows(base.key, key, contract) if reason is None else []
            if rows and key == catalog.AI_TOOLKIT and snap is not None:
                # This user's defaults: catalog <- active overrides <- their experiment arm.
                chosen = effective_defaults(user=user, base_model=base.key, snap=snap).values
                for row in rows:
                    if row["name"] in chosen and not row["locked"]:
                        row["default"] = chosen[row["name"]]
            engines.append(
                {
                    "key": key,
                    "label": catalog.ENGINES[key].label,
                    "available": reason is None,
                    "reason": reason,
                    "default": key == base.default_engine,
                    "params": rows,
                }
            )
        models.append(
            {
                "key": base.key,
                "label": base.label,
                "family": base.family,
                "baseType": base.base_type,
                "mediaType": base.media_type,
                "air": base.air,
                "ecosystem": base.ecosystem,
                "modelVariant": base.variant,
                "defaultEngine": base.default_engine,
                "engines": engines,
            }
        )
    return {
        "contract": contract,
        "baseModels": models,
        "engines": [
            {"key": e.key, "label": e.label, "description": e.description}
            for e in catalog.ENGINES.values()
        ],
    }
