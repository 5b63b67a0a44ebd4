"""The orchestrator contract of `@civitai/client` 0.2.0-beta.86, today's orchestrator.

AI Toolkit runs say how long they train: `steps` (the length and the price) and `epochs` (the
checkpoints saved) are parameters of their own under beta86 (#17), offered by the catalog from its
contract table, which also leaves out what beta86 cannot carry (`resolution`, `numRepeats`,
`trainBatchSize`, the Wan and SD3 ecosystems): such a parameter is refused, never dropped
(docs/contracts.md). The schema lives in beta86_schema.py.
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
from vocabulary import catalog
from vocabulary.catalog import BaseModel as CatalogBaseModel

NAME = "beta86"
_VOCABULARY = catalog.contract_vocabulary(NAME)
AI_TOOLKIT_EPOCHS = (1, 200)  # AIToolkitTrainingInput.epochs (§6.2): checkpoints kept
AI_TOOLKIT_STEPS = (1, 10_000)  # AIToolkitTrainingInput.steps (§6.2)
AI_TOOLKIT_BATCH_SIZE = 1  # every ecosystem allows it; the steps are images seen at batch 1
# The preview/estimate placeholder run id (training.payloads.PREVIEW_RUN_ID).
_PREVIEW_RUN_ID = str(UUID(int=0))


def currencies() -> list[str]:
    """ORCHESTRATOR_CURRENCIES, checked against BuzzClientAccount before anything is sent."""
    values = [str(v) for v in settings.ORCHESTRATOR_CURRENCIES]
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
    """The run's `steps`; a run stored before #17 has none and keeps the length it was quoted:
    one pass over the data per epoch at batch 1, within 1..10000."""
    steps = run.params.get("steps")
    if isinstance(steps, bool) or not isinstance(steps, int):
        steps = ai_toolkit_epochs(run) * max(1, run.image_count)
    return _clamp(steps, AI_TOOLKIT_STEPS)


def _model_air(run: RunLike) -> str:
    return run.custom_model or catalog.BASE_MODELS[run.base_model].air


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
    unsent = params_not_sent(run)  # empty for runs accepted under beta86; see params_not_sent
    for name, value in run.params.items():
        if name in ("steps", "epochs") or name in unsent or value is None:
            continue  # None: absent, and beta86's nulls only ever mean "not set"
        if name in _VOCABULARY.ai_toolkit_int_fields and isinstance(value, float):
            # A run stored before #17 kept minSnrGamma as a number: 5.0 is 5 (the catalog now
            # offers only integers, so 2.5 cannot be accepted any more).
            value = int(value) if value.is_integer() else value
        body[name] = value
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
    unsent = params_not_sent(run)
    for name, value in run.params.items():
        if value is None or name in unsent:
            continue
        if run.engine == catalog.MUSUBI and name == "maxTrainEpochs":
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
    return _VOCABULARY.ai_toolkit_unavailable(base)


def params_not_sent(run: RunLike) -> frozenset[str]:
    """The run's parameters beta86 has no field for: empty for every run the catalog accepts
    under beta86 (payloads.checked_workflow_body refuses a run where it is not). Only a run stored
    under beta12 and sent after a switch to beta86 has any; they are left out of its body."""
    params = frozenset(run.params)
    if run.engine == catalog.RAPID:
        return params  # Rapid's rows are shown, never sent, and its params are always {}
    dropped = params & _VOCABULARY.not_carried.get(run.engine, frozenset())  # type: ignore[call-overload]
    if run.engine == catalog.AI_TOOLKIT and run.ecosystem not in ECOSYSTEMS_WITH_MIN_SNR:
        dropped |= params & {"minSnrGamma"}
    return dropped


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
