"""How runs read on the pages: labels, progress and cost, from the catalog and the run row."""

from __future__ import annotations

from typing import Any

from flags.tiers import is_moderator, user_tier
from training.models import ACTIVE_STATUSES, TrainingRun
from training.progress import epochs_total
from training.services import RETRYABLE
from vocabulary import catalog


def navigation(request: Any) -> dict[str, Any]:
    """The navigation bar's facts about the visitor (also usable as a context processor)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav": None}
    return {
        "nav": {
            "tier": user_tier(user),
            "moderator": is_moderator(user),
            "staff": bool(user.is_staff),
        }
    }


def run_summary(run: TrainingRun) -> dict[str, Any]:
    epochs = list((run.outputs or {}).get("epochs", []))
    base = catalog.BASE_MODELS.get(run.base_model)
    engine = catalog.ENGINES.get(run.engine)  # type: ignore[call-overload]
    cost = run.charged_cost if run.charged_cost is not None else run.estimated_cost
    return {
        "run": run,
        "id": str(run.pk),
        "base_label": base.label if base else run.base_model,
        "engine_label": engine.label if engine else run.engine,
        "active": run.status in ACTIVE_STATUSES,
        "retryable": run.status in RETRYABLE,
        "epochs_done": len(epochs),
        "epochs_total": epochs_total(run),
        "cost": cost,
        "cost_is_estimate": run.charged_cost is None and run.estimated_cost is not None,
    }
