"""How one run reads on its page (#18.5): the samples as a prompt × epoch grid, a failure in
people's words with what happened to the Buzz and what to try next, and the links between a
retried run and its original."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from training.models import RunStatus, TrainingRun

# The orchestrator's and our own failure codes -> (what went wrong, what to try next).
EXPLANATIONS: dict[str, tuple[str, str]] = {
    "orchestrator_rejected": (
        "The orchestrator refused the run before it started, so it never trained.",
        "Read the reason below, change that setting, and start the run again.",
    ),
    "submit_exhausted": (
        "We could not reach the orchestrator to start the run, even after several tries.",
        "This is usually a short outage. Retry in a few minutes.",
    ),
    "orchestrator_auth": (
        "This service could not sign in to the orchestrator, so the run never started.",
        "This is a problem on our side, not with your run. Retry later; if it keeps happening, "
        "tell support.",
    ),
    "moderation_rejected": (
        "The orchestrator's moderation rejected the training data.",
        "Check your images against the content rules. Retrying with the same images will be "
        "rejected again.",
    ),
    "orchestrator_failed": (
        "Training stopped with an error on the orchestrator's side.",
        "Retry once: many failures are temporary. If it fails again, check that every image in "
        "the zip opens and that captions are .txt files beside their images, or try a lower "
        "learning rate or resolution.",
    ),
    "orchestrator_expired": (
        "The run waited in the queue too long and expired before it could train.",
        "Retry, perhaps at a higher priority or at a quieter time.",
    ),
}
FALLBACK = (
    "The run stopped with an error.",
    "Retry the run. If it fails the same way again, tell support and quote the code below.",
)


@dataclass(frozen=True)
class Explanation:
    cause: str
    advice: str
    code: str
    detail: str


def failure_explanation(run: TrainingRun) -> Explanation | None:
    if run.status not in (RunStatus.FAILED, RunStatus.EXPIRED) and not run.error_code:
        return None
    cause, advice = EXPLANATIONS.get(run.error_code, FALLBACK)
    return Explanation(cause, advice, run.error_code, run.error_message)


def buzz_outcome(run: TrainingRun) -> str | None:
    """What happened to the Buzz, for a finished run, in one sentence."""
    if not run.is_terminal:
        return None
    charged, estimated = run.charged_cost, run.estimated_cost
    if run.status == RunStatus.SUCCEEDED:
        return f"{charged or 0:,} Buzz charged." if charged is not None else None
    if not run.workflow_id:
        return "Nothing was charged: the run never reached the orchestrator."
    if charged == 0:
        refunded = f" ({estimated:,} Buzz refunded)" if estimated else ""
        return f"Nothing was charged in the end{refunded}."
    if charged is not None and estimated is not None and charged < estimated:
        return f"{charged:,} Buzz charged; {estimated - charged:,} Buzz refunded."
    if charged is not None:
        return (
            f"{charged:,} Buzz charged so far. The orchestrator refunds work that did not run; "
            "a refund shows here once it is made."
        )
    return None


def samples_grid(run: TrainingRun) -> dict[str, Any]:
    """Rows are the sample prompts (the Nth image of each epoch is the Nth prompt's), columns
    the epochs."""
    epochs = [e for e in (run.outputs or {}).get("epochs") or [] if isinstance(e, dict)]
    width = max((len(e.get("sampleImages") or []) for e in epochs), default=0)
    prompts = list(run.sample_prompts or [])
    rows = []
    for i in range(max(width, len(prompts) if epochs else 0)):
        label = prompts[i] if i < len(prompts) else f"Sample {i + 1}"
        cells = []
        for e in epochs:
            images = e.get("sampleImages") or []
            cells.append(
                {"epoch": e.get("epochNumber"), "url": images[i] if i < len(images) else None}
            )
        rows.append({"prompt": label, "cells": cells})
    return {"epochs": epochs, "rows": rows}


def duration_text(seconds: float) -> str:
    """Like App.formatDuration in static/js/common.js, so both read the same."""
    s = round(max(0.0, seconds))
    if s < 60:
        return f"{s} s"
    m = s // 60
    if m < 60:
        return f"{m} min {s % 60} s"
    return f"{m // 60} h {m % 60} min"


def time_texts(run: TrainingRun) -> dict[str, str]:
    from datetime import datetime

    from django.utils import timezone

    from training.progress import run_timing

    timing = run_timing(run)
    elapsed = duration_text(timing["elapsedSeconds"])
    eta = ""
    if timing["eta"]["at"]:
        left = datetime.fromisoformat(timing["eta"]["at"]) - timezone.now()
        eta = duration_text(left.total_seconds())
    return {"elapsed_text": elapsed + ("" if run.is_terminal else " so far"), "eta_text": eta}
