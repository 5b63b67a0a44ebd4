"""Plain data the emulator keeps per workflow; no behaviour, so every module can import it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

PriceFamily = Literal["ai-toolkit", "kohya", "rapid", "musubi"]
JsonObject = dict[str, object]

TERMINAL = frozenset({"succeeded", "failed", "expired", "canceled"})


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class StepPlan:
    """What a contract reads out of a step's wire input: enough to price and simulate it."""

    step_type: str
    family: PriceFamily
    epochs: int  # epochs the simulation produces (at least 1)
    priced_epochs: int  # the epoch count as sent, for the price formula
    image_count: int
    num_repeats: int
    batch_size: int
    model_ecosystem: str  # the ecosystem segment of the model AIR ("" when it has none)
    ecosystem: str  # AI Toolkit's `ecosystem` ("" for the legacy step)
    priority: str
    prompts: tuple[str, ...]
    lora_name: str
    steps: int | None = None  # AI Toolkit's `steps` (beta86): prices the run when given

    @property
    def samples_per_epoch(self) -> int:
        return max(1, len(self.prompts))


@dataclass(frozen=True)
class EpochRecord:
    number: int  # 1-based
    blob_name: str
    blob_size: int
    sample_files: tuple[str, ...]


@dataclass
class WorkflowRecord:
    id: str | None  # None for a whatif estimate, which is never stored
    template: JsonObject
    plan: StepPlan
    cost: int
    job_id: str
    created_at: datetime
    created_mono: float
    tags: list[str]
    metadata: JsonObject
    status: str = "unassigned"
    started_at: datetime | None = None
    completed_at: datetime | None = None
    next_epoch_due: float | None = None  # monotonic time the next epoch completes
    epochs: list[EpochRecord] = field(default_factory=list)
    # "underReview" holds a processing workflow (no epochs) until released; "rejected" fails it.
    moderation: str = "approved"
    external_id: str | None = None  # the client's idempotency key (beta86 `externalId`)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL
