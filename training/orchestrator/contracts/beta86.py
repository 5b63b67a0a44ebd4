"""The orchestrator contract of `@civitai/client` 0.2.0-beta.86, today's orchestrator.

The plan's run is translated, not reshaped: its epoch count becomes both `steps` (the length and
the price: one pass over the images per epoch, batch 1) and `epochs` (the checkpoints kept), and
what beta86 no longer has (`resolution`, `numRepeats`, `trainBatchSize`, the Wan and SD3
ecosystems) is not sent, or, where it matters, refused with the reason (docs/contracts.md).
The schema lives in beta86_schema.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from posixpath import basename
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from training import catalog
from training.catalog import BaseModel as CatalogBaseModel
from training.orchestrator.contracts.base import (
    RunLike,
    WireError,
    WorkflowState,
    parse_time,
    training_step,
    workflow_state,
)
from training.orchestrator.contracts.beta86_schema import (
    AI_TOOLKIT_ECOSYSTEMS,
    CURRENCIES,
    ECOSYSTEMS_WITH_MIN_SNR,
    ECOSYSTEMS_WITH_MODEL,
    validate_workflow,
)

NAME = "beta86"
AI_TOOLKIT_EPOCHS = (1, 200)  # AIToolkitTrainingInput.epochs (§6.2): checkpoints kept
AI_TOOLKIT_STEPS = (1, 10_000)  # AIToolkitTrainingInput.steps (§6.2)
AI_TOOLKIT_BATCH_SIZE = 1  # what the steps formula assumes; every ecosystem allows it
# Ours, but no beta86 field: not sent (Musubi's repeats/batch went with maxTrainEpochs, §10).
_NOT_ON_AI_TOOLKIT = frozenset({"resolution", "numRepeats", "trainBatchSize"})
_NOT_ON_MUSUBI = frozenset({"numRepeats", "trainBatchSize"})
_INT_FIELDS = frozenset({"minSnrGamma", "networkDim", "networkAlpha", "keepTokens"})
_ECOSYSTEM_LABELS = {"wan": "Wan", "sd3": "SD3"}
# The preview/estimate placeholder run id (training.payloads.PREVIEW_RUN_ID).
_PREVIEW_RUN_ID = str(UUID(int=0))


def currencies() -> list[str]:
    """ORCHESTRATOR_CURRENCIES, checked against BuzzClientAccount before anything is sent."""
    values = [str(v) for v in getattr(settings, "ORCHESTRATOR_CURRENCIES", [])]
    unknown = [v for v in values if v not in CURRENCIES]
    if unknown:
        raise ImproperlyConfigured(
            f"ORCHESTRATOR_CURRENCIES has {', '.join(unknown)}; beta86 accepts "
            f"{', '.join(CURRENCIES)} (comma-separated) or nothing."
        )
    return values


def _clamp(value: int, bounds: tuple[int, int]) -> int:
    return max(bounds[0], min(bounds[1], value))


def ai_toolkit_epochs(run: RunLike) -> int:
    epochs = run.params.get("epochs")
    if isinstance(epochs, bool) or not isinstance(epochs, int):
        epochs = AI_TOOLKIT_EPOCHS[0]
    return _clamp(epochs, AI_TOOLKIT_EPOCHS)


def ai_toolkit_steps(run: RunLike) -> int:
    """One pass over the data per epoch at batch 1: epochs × images, within 1..10000."""
    return _clamp(ai_toolkit_epochs(run) * max(1, run.image_count), AI_TOOLKIT_STEPS)


def _model_air(run: RunLike) -> str:
    return run.custom_model or catalog.BASE_MODELS[run.base_model].air


def _wire_value(name: str, value: Any) -> Any:
    # Our catalog keeps minSnrGamma as a number; beta86 wants an int32. 5.0 is 5; 2.5 stays
    # 2.5 and the schema refuses it with the field's path.
    if name in _INT_FIELDS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _ai_toolkit_input(run: RunLike) -> dict[str, Any]:
    ecosystem = run.ecosystem
    body: dict[str, Any] = {"engine": "ai-toolkit", "ecosystem": ecosystem}
    if AI_TOOLKIT_ECOSYSTEMS.get(ecosystem) and run.model_variant:
        body["modelVariant"] = run.model_variant
    # A custom checkpoint on an ecosystem without `model` is sent anyway, so that the schema
    # refuses the run with the reason instead of silently training the base model.
    if ecosystem in ECOSYSTEMS_WITH_MODEL or run.custom_model:
        body["model"] = _model_air(run)
    body["trainingData"] = {
        "type": "zip",
        "sourceUrl": run.training_data_url,
        "count": run.image_count,
    }
    body["samples"] = {"prompts": list(run.sample_prompts)}
    body["steps"] = ai_toolkit_steps(run)
    body["epochs"] = ai_toolkit_epochs(run)
    body["batchSize"] = AI_TOOLKIT_BATCH_SIZE
    for name, value in run.params.items():
        if name == "epochs" or name in _NOT_ON_AI_TOOLKIT or value is None:
            continue  # None: absent, and beta86's nulls only ever mean "not set"
        if name == "minSnrGamma" and ecosystem not in ECOSYSTEMS_WITH_MIN_SNR:
            continue
        body[name] = _wire_value(name, value)
    return body


def _legacy_input(run: RunLike) -> dict[str, Any]:
    info = catalog.ENGINES[run.engine]  # type: ignore[index]
    body: dict[str, Any] = {
        "engine": info.wire_engine,
        "model": _model_air(run),
        "trainingData": run.training_data_url,
        "trainingDataImagesCount": run.image_count,
        "loraName": run.lora_name,
        "samplePrompts": list(run.sample_prompts),
    }
    if run.negative_prompt:
        body["negativePrompt"] = run.negative_prompt
    if run.engine == catalog.RAPID:
        return body  # Rapid sends no training parameters at all
    for name, value in run.params.items():
        if value is None:
            continue
        if run.engine == catalog.MUSUBI:
            if name in _NOT_ON_MUSUBI:
                continue
            if name == "maxTrainEpochs":
                name = "epochs"
        body[name] = value
    return body


def build_step(run: RunLike, *, run_id: str) -> dict[str, Any]:
    return training_step(
        run, run_id=run_id, new_input=_ai_toolkit_input, legacy_input=_legacy_input
    )


def build_workflow(run: RunLike, *, run_id: str, callback_url: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"runId": run_id},
        "tags": ["training", f"run:{run_id}", f"engine:{run.engine}"],
        # detailed=false: the payload is never trusted for state (a fresh GET is), so the step
        # input and output with their signed URLs would only be sent to be thrown away.
        "callbacks": [
            {"url": callback_url, "type": ["workflow:*", "job:processing"], "detailed": False}
        ],
        "currencies": currencies(),
        "steps": [build_step(run, run_id=run_id)],
    }
    if run_id != _PREVIEW_RUN_ID:
        # The orchestrator's idempotency key: a repeated submit returns the first workflow. The
        # preview/estimate placeholder id is shared by every estimate, and the key also covers a
        # prior whatif, so it must never carry one.
        body["externalId"] = run_id
    return body


def ai_toolkit_unavailable(base: CatalogBaseModel) -> str | None:
    ecosystem = base.ecosystem
    if ecosystem is None:
        return None  # not an AI Toolkit base model at all: the catalog says why
    alternative = catalog.ENGINES[base.default_engine].label
    variants = AI_TOOLKIT_ECOSYSTEMS.get(ecosystem)
    if variants is None:
        label = _ECOSYSTEM_LABELS.get(ecosystem, ecosystem)
        return (
            f"Today's orchestrator (beta86) has no {label} ecosystem for AI Toolkit; "
            f"train {base.label} with {alternative}."
        )
    if variants and base.variant not in variants:
        return (
            f"Today's orchestrator (beta86) has no {ecosystem} variant {base.variant!r} for AI "
            f"Toolkit (only {', '.join(variants)}); train {base.label} with {alternative}."
        )
    return None


def params_not_sent(run: RunLike) -> frozenset[str]:
    params = frozenset(run.params)
    if run.engine == catalog.RAPID:
        return params
    if run.engine == catalog.MUSUBI:
        return params & _NOT_ON_MUSUBI
    if run.engine == catalog.AI_TOOLKIT:
        dropped = params & _NOT_ON_AI_TOOLKIT
        if run.ecosystem not in ECOSYSTEMS_WITH_MIN_SNR:
            dropped |= params & {"minSnrGamma"}
        return dropped
    return frozenset()


# --- reading workflows --------------------------------------------------------------------------


def _url(blob: Any) -> str | None:
    url = blob.get("url") if isinstance(blob, Mapping) else None
    return url if isinstance(url, str) and url else None


def _blob_name(blob: Mapping[str, Any]) -> str | None:
    url = _url(blob)
    name = unquote(basename(urlsplit(url).path)) if url else ""
    return name or (str(blob["id"]) if blob.get("id") else None)


def _training_epoch(item: Mapping[str, Any]) -> dict[str, Any]:
    """TrainingOutputEpochResult {epochNumber, model: Blob, samples: Blob[]} (§6.4)."""
    model: Mapping[str, Any] = item["model"] if isinstance(item.get("model"), Mapping) else {}
    samples = [s for s in item.get("samples") or [] if isinstance(s, Mapping)]
    epoch: dict[str, Any] = {
        "epochNumber": item.get("epochNumber"),
        "modelName": _blob_name(model),
        "modelUrl": _url(model),
        "modelSize": None,  # a Blob carries no size
        "sampleImages": [url for url in map(_url, samples) if url],
    }
    expiries: list[datetime] = []
    for blob in (model, *samples):
        if _url(blob):
            moment = parse_time(blob.get("urlExpiresAt"))
            if moment is not None:
                expiries.append(moment)
    if expiries:
        # The first URL to expire decides when the epoch's links must be fetched again.
        epoch["urlExpiresAt"] = min(expiries).isoformat()
    return epoch


def _legacy_epoch(item: Mapping[str, Any]) -> dict[str, Any]:
    """EpochResult {epochNumber, blobName, blobUrl, blobSize, sampleImages} (§7.3)."""
    return {
        "epochNumber": item.get("epochNumber"),
        "modelName": item.get("blobName"),
        "modelUrl": item.get("blobUrl"),
        "modelSize": item.get("blobSize"),
        "sampleImages": [u for u in item.get("sampleImages") or [] if isinstance(u, str)],
    }


def _epochs(output: Mapping[str, Any]) -> list[dict[str, Any]]:
    epochs = [
        _training_epoch(item) if "model" in item else _legacy_epoch(item)
        for item in output.get("epochs") or []
        if isinstance(item, Mapping)
    ]
    return sorted(epochs, key=lambda e: e["epochNumber"] or 0)


def _eta_minutes(output: Mapping[str, Any], job: Mapping[str, Any]) -> float | None:
    eta = output.get("eta")  # the legacy output still has one; TrainingOutput does not
    if isinstance(eta, int | float) and not isinstance(eta, bool):
        return float(eta)
    complete_at = parse_time((job.get("queuePosition") or {}).get("completeAt"))
    if complete_at is None:
        return None
    return max(0.0, (complete_at - timezone.now()).total_seconds() / 60)


def parse_workflow(workflow: Mapping[str, Any]) -> WorkflowState:
    return workflow_state(workflow, epochs=_epochs, eta_minutes=_eta_minutes)


class Beta86:
    name = NAME

    def build_workflow(self, run: RunLike, *, run_id: str, callback_url: str) -> dict[str, Any]:
        return build_workflow(run, run_id=run_id, callback_url=callback_url)

    def validate_workflow(self, body: Mapping[str, Any]) -> list[WireError]:
        return validate_workflow(body)

    def ai_toolkit_unavailable(self, base: CatalogBaseModel) -> str | None:
        return ai_toolkit_unavailable(base)

    def parse_workflow(self, workflow: Mapping[str, Any]) -> WorkflowState:
        return parse_workflow(workflow)

    def ai_toolkit_epochs_range(self) -> tuple[int, int]:
        return AI_TOOLKIT_EPOCHS

    def ai_toolkit_steps(self, run: RunLike) -> int | None:
        return ai_toolkit_steps(run)

    def params_not_sent(self, run: RunLike) -> frozenset[str]:
        return params_not_sent(run)
