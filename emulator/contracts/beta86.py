"""beta86 (orchestrator-api-beta86.md): the `engine` -> `ecosystem` -> `modelVariant` training
input priced by `steps`, TrainingOutput with Blobs whose signed URLs expire, moderation,
`externalId` idempotency (in the store) and detailed callbacks."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from emulator.blobs import SAMPLE_SIZE
from emulator.contracts.base import (
    air_ecosystem,
    blob_url,
    first_step,
    integer,
    obj,
    step,
    strings,
    text,
    workflow,
)
from emulator.records import JsonObject, PriceFamily, StepPlan, WorkflowRecord, iso, utc_now
from training.orchestrator.contracts.base import WireError
from training.orchestrator.contracts.beta86_schema import validate_workflow

DEFAULT_LEGACY_EPOCHS = 5
DEFAULT_REPEATS = 8
AI_TOOLKIT_LORA_NAME = "lora"  # the new step's input carries no lora name
# `defaultSteps` when a training input gives neither steps nor epochs (Civitai's UI defaults).
DEFAULT_STEPS = {"ltx2": 3000, "ltx23": 3000, "boogu": 3000, "anima": 1500}
OTHER_DEFAULT_STEPS = 2000
DERIVED_EPOCHS_MAX = 20  # epochs derived from steps are capped, to keep simulations short
USER_ID = 1  # the one consumer behind the emulator's token: externalId reads "1-<value>"

_LEGACY_FAMILY: dict[str, PriceFamily] = {
    "kohya": "kohya",
    "flux-dev-fast": "rapid",
    "flux2-dev": "rapid",  # FAL trainers with fixed steps: priced like Rapid
    "flux2-dev-edit": "rapid",
    "musubi": "musubi",
}


def _optional_int(mapping: Mapping[str, object], key: str) -> int | None:
    value = mapping.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Beta86Contract:
    name = "beta86"
    reports_moderation = True

    def validate(self, body: Mapping[str, object]) -> list[WireError]:
        return validate_workflow(body)

    def plan(self, body: Mapping[str, object]) -> StepPlan:
        template = first_step(body)
        step_type = text(template, "$type", "")
        data = obj(template, "input")
        priority = text(template, "priority", "normal")
        model_ecosystem = air_ecosystem(text(data, "model", ""))
        if step_type == "training":
            ecosystem = text(data, "ecosystem", "")
            count = integer(obj(data, "trainingData"), "count", 0)
            steps = _optional_int(data, "steps")
            epochs = _optional_int(data, "epochs")
            if steps is None and epochs is None:
                steps = DEFAULT_STEPS.get(ecosystem, OTHER_DEFAULT_STEPS)
            if epochs is None:
                assert steps is not None
                epochs = min(DERIVED_EPOCHS_MAX, max(1, math.ceil(steps / max(1, count))))
            return StepPlan(
                step_type=step_type,
                family="ai-toolkit",
                epochs=max(1, epochs),
                priced_epochs=epochs,
                image_count=count,
                num_repeats=1,
                batch_size=integer(data, "batchSize", 1),
                model_ecosystem=model_ecosystem,
                ecosystem=ecosystem,
                priority=priority,
                prompts=strings(obj(data, "samples"), "prompts"),
                lora_name=AI_TOOLKIT_LORA_NAME,
                steps=steps,  # None: epochs without steps, the legacy per-epoch price
            )
        family = _LEGACY_FAMILY.get(text(data, "engine", ""), "kohya")
        if family == "rapid":
            epochs = 1
        elif family == "musubi":
            epochs = integer(data, "epochs", DEFAULT_LEGACY_EPOCHS)  # maxTrainEpochs in beta12
        else:
            epochs = integer(data, "maxTrainEpochs", DEFAULT_LEGACY_EPOCHS)
        return StepPlan(
            step_type=step_type,
            family=family,
            epochs=max(1, epochs),
            priced_epochs=epochs,
            image_count=integer(data, "trainingDataImagesCount", 0),
            num_repeats=integer(data, "numRepeats", DEFAULT_REPEATS),
            batch_size=integer(data, "trainBatchSize", 1),
            model_ecosystem=model_ecosystem,
            ecosystem="",
            priority=priority,
            prompts=strings(data, "samplePrompts"),
            lora_name=text(data, "loraName", "my-lora"),
        )

    def render_workflow(
        self,
        wf: WorkflowRecord,
        *,
        base_url: str,
        preceding_jobs: int,
        eta: float,
        url_ttl_seconds: float,
    ) -> JsonObject:
        output: JsonObject
        if wf.plan.step_type == "training":
            output = {
                "moderationStatus": wf.moderation,
                "epochs": _training_epochs(wf, base_url, url_ttl_seconds),
            }
        else:
            output = {
                "epochs": [
                    {
                        "epochNumber": epoch.number,
                        "blobName": epoch.blob_name,
                        "blobSize": epoch.blob_size,
                        "sampleImages": [blob_url(base_url, wf.id, f) for f in epoch.sample_files],
                        "blobUrl": blob_url(base_url, wf.id, epoch.blob_name),
                    }
                    for epoch in wf.epochs
                ],
                "moderationStatus": wf.moderation,
                "sampleImagesPrompts": list(wf.plan.prompts),
                "eta": eta,
            }
        the_step = step(wf, output, preceding_jobs)
        if not wf.terminal:
            job = the_step["jobs"][0]  # type: ignore[index]
            job["queuePosition"]["completeAt"] = iso(utc_now() + timedelta(minutes=eta))
        body = workflow(wf, [the_step])
        body["forceRefunded"] = False
        if wf.external_id is not None:
            body["externalId"] = f"{USER_ID}-{wf.external_id}"  # stored as "{userId}-{value}"
        if "ephemeral" in wf.template:
            body["ephemeral"] = wf.template["ephemeral"]
        return body

    def event_details(self, wf: WorkflowRecord) -> JsonObject | None:
        template = first_step(wf.template)
        return {
            "createdAt": iso(wf.created_at),
            "startedAt": iso(wf.started_at),
            "completedAt": iso(wf.completed_at),
            "metadata": wf.metadata,
            "arguments": wf.template.get("arguments") or {},
            "steps": [
                {
                    "name": text(template, "name", "") or "0",
                    "status": wf.status,
                    "startedAt": iso(wf.started_at),
                    "completedAt": iso(wf.completed_at),
                    "metadata": template.get("metadata") or {},
                    "input": template.get("input"),
                    "cost": wf.cost,
                }
            ],
        }


def _training_epochs(wf: WorkflowRecord, base_url: str, ttl: float) -> list[JsonObject]:
    """TrainingOutputEpochResult: the LoRA and its samples as Blobs with expiring links."""
    expires = int(time.time() + ttl)
    expires_at = iso(datetime.fromtimestamp(expires, UTC))

    def blob(kind: str, blob_id: str, file: str) -> JsonObject:
        return {
            "type": kind,
            "id": blob_id,
            "available": True,
            "url": f"{blob_url(base_url, wf.id, file)}?expires={expires}",
            "urlExpiresAt": expires_at,
            "jobId": wf.job_id,
            "nsfwLevel": "pg",
        }

    epochs: list[JsonObject] = []
    for epoch in wf.epochs:
        prefix = f"{wf.id}-e{epoch.number}"
        samples = [
            {**blob("image", f"{prefix}-{i}", f), "width": SAMPLE_SIZE, "height": SAMPLE_SIZE}
            for i, f in enumerate(epoch.sample_files)
        ]
        # The spec names no Blob type for a LoRA; "model" is our guess (docs/emulator.md).
        model = blob("model", prefix, epoch.blob_name)
        epochs.append({"epochNumber": epoch.number, "model": model, "samples": samples})
    return epochs
