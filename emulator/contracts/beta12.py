"""beta12 (orchestrator-api-beta12.md): flat `training` input, legacy `imageResourceTraining`."""

from __future__ import annotations

from collections.abc import Mapping

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
from emulator.records import JsonObject, PriceFamily, StepPlan, WorkflowRecord
from training.orchestrator.contracts.base import WireError
from training.orchestrator.contracts.beta12 import validate_workflow

DEFAULT_EPOCHS = 5
DEFAULT_REPEATS = 8
AI_TOOLKIT_LORA_NAME = "lora"  # the new step's input carries no lora name

_LEGACY_FAMILY: dict[str, PriceFamily] = {
    "kohya": "kohya",
    "ai-toolkit": "kohya",  # beta12's legacy ai-toolkit engine has Kohya's knobs
    "flux-dev-fast": "rapid",
    "musubi": "musubi",
}


class Beta12Contract:
    name = "beta12"
    reports_moderation = False

    def validate(self, body: Mapping[str, object]) -> list[WireError]:
        return validate_workflow(body)

    def plan(self, body: Mapping[str, object]) -> StepPlan:
        template = first_step(body)
        step_type = text(template, "$type", "")
        data = obj(template, "input")
        priority = text(template, "priority", "normal")
        model_ecosystem = air_ecosystem(text(data, "model", ""))
        if step_type == "training":
            epochs = integer(data, "epochs", DEFAULT_EPOCHS)
            return StepPlan(
                step_type=step_type,
                family="ai-toolkit",
                epochs=max(1, epochs),
                priced_epochs=epochs,
                image_count=integer(obj(data, "trainingData"), "count", 0),
                num_repeats=integer(data, "numRepeats", DEFAULT_REPEATS),
                batch_size=integer(data, "trainBatchSize", 1),
                model_ecosystem=model_ecosystem,
                ecosystem=text(data, "ecosystem", ""),
                priority=priority,
                prompts=strings(obj(data, "samples"), "prompts"),
                lora_name=AI_TOOLKIT_LORA_NAME,
            )
        family = _LEGACY_FAMILY.get(text(data, "engine", ""), "kohya")
        epochs = 1 if family == "rapid" else integer(data, "maxTrainEpochs", DEFAULT_EPOCHS)
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

    def event_details(self, wf: WorkflowRecord) -> JsonObject | None:
        return None  # beta12's WorkflowCallback has no `detailed`

    def render_workflow(
        self,
        wf: WorkflowRecord,
        *,
        base_url: str,
        preceding_jobs: int,
        eta: float,
        url_ttl_seconds: float,  # beta12 blob URLs carry no expiry
    ) -> JsonObject:
        epochs: list[JsonObject] = [
            {
                "epochNumber": epoch.number,
                "blobName": epoch.blob_name,
                "blobSize": epoch.blob_size,
                "sampleImages": [blob_url(base_url, wf.id, f) for f in epoch.sample_files],
                "blobUrl": blob_url(base_url, wf.id, epoch.blob_name),
            }
            for epoch in wf.epochs
        ]
        output: JsonObject
        if wf.plan.step_type == "training":
            output = {
                "status": wf.status,
                "epochs": epochs,
                "samples": _samples(wf, base_url),
                "eta": eta,
            }
        else:
            output = {
                "epochs": epochs,
                "moderationStatus": "approved",
                "sampleImagesPrompts": list(wf.plan.prompts),
                "eta": eta,
            }
        return workflow(wf, [step(wf, output, preceding_jobs)])


def _samples(wf: WorkflowRecord, base_url: str) -> list[JsonObject]:
    """The newest epoch's sample images, one per prompt."""
    if not wf.epochs:
        return []
    latest = wf.epochs[-1]
    prompts = list(wf.plan.prompts) or [""]
    return [
        {
            "prompt": prompt,
            "blob": {
                "type": "image",
                "id": f"{wf.id}-e{latest.number}-{index}",
                "available": True,
                "url": blob_url(base_url, wf.id, file),
                "width": SAMPLE_SIZE,
                "height": SAMPLE_SIZE,
            },
        }
        for index, (prompt, file) in enumerate(zip(prompts, latest.sample_files, strict=False))
    ]
