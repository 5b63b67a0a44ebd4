"""The stored workflows, their simulated lifecycle and the submission counters."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from emulator import blobs, pricing
from emulator.config import EmulatorConfig
from emulator.contracts import EmulatorContract
from emulator.records import EpochRecord, JsonObject, WorkflowRecord, iso, utc_now

# Called with the store's lock held, so one workflow's events are queued in the order they happen.
Emit = Callable[..., None]  # (workflow, status, timestamp, *, progress=None)


class Store:
    def __init__(self, contract: EmulatorContract, emit: Emit) -> None:
        self.contract = contract
        self._emit = emit
        self.lock = threading.Condition()
        self._workflows: dict[str, WorkflowRecord] = {}  # creation order
        self.submissions = 0
        self.whatifs = 0
        self.by_tag: Counter[str] = Counter()
        self._by_external_id: dict[str, str] = {}  # beta86 `externalId` -> workflow id

    def new_record(
        self, body: Mapping[str, object], *, stored: bool, moderation: str = "approved"
    ) -> WorkflowRecord:
        plan = self.contract.plan(body)
        created = utc_now()
        tags = body.get("tags")
        metadata = body.get("metadata")
        return WorkflowRecord(
            id=f"{created:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:12]}" if stored else None,
            template=dict(body),
            plan=plan,
            cost=pricing.price(plan),
            job_id=uuid.uuid4().hex,
            created_at=created,
            created_mono=time.monotonic(),
            tags=[t for t in tags if isinstance(t, str)] if isinstance(tags, list) else [],
            metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
            moderation=moderation if self.contract.reports_moderation else "approved",
            external_id=_external_id(body),
        )

    def add(self, wf: WorkflowRecord) -> WorkflowRecord:
        """Store a new workflow and return it, or, when its externalId is already known, return
        the workflow first submitted with it (idempotency: nothing new is stored or counted)."""
        assert wf.id is not None
        with self.lock:
            known = self.by_external_id(wf.external_id)
            if known is not None:
                return known
            if wf.external_id is not None:
                self._by_external_id[wf.external_id] = wf.id
            self._workflows[wf.id] = wf
            self.submissions += 1
            self.by_tag.update(set(wf.tags))
            self._emit(wf, wf.status, iso(wf.created_at) or "")
            self.lock.notify_all()
            return wf

    def by_external_id(self, external_id: str | None) -> WorkflowRecord | None:
        with self.lock:
            known = self._by_external_id.get(external_id) if external_id else None
            return self._workflows.get(known) if known else None

    def note_whatif(self) -> None:
        with self.lock:
            self.whatifs += 1

    def active_count(self) -> int:
        with self.lock:
            return sum(1 for wf in self._workflows.values() if not wf.terminal)

    def get(self, workflow_id: str) -> WorkflowRecord | None:
        with self.lock:
            return self._workflows.get(workflow_id)

    def query(self, tags: Sequence[str], take: int, *, ascending: bool) -> list[WorkflowRecord]:
        wanted = set(tags)
        with self.lock:
            found = [wf for wf in self._workflows.values() if wanted <= set(wf.tags)]
        if not ascending:
            found.reverse()
        return found[:take]

    def cancel(self, workflow_id: str) -> bool:
        """Cancel a workflow that is still running; False if there is no such workflow."""
        with self.lock:
            wf = self._workflows.get(workflow_id)
            if wf is None:
                return False
            if not wf.terminal:
                self._finish(wf, "canceled")
            return True

    def update(
        self, workflow_id: str, *, metadata: JsonObject | None, tags: list[str] | None
    ) -> bool:
        with self.lock:
            wf = self._workflows.get(workflow_id)
            if wf is None:
                return False
            if metadata is not None:
                wf.metadata = metadata
            if tags is not None:
                wf.tags = tags
            return True

    def wait_terminal(self, workflow_id: str, timeout: float, abort: Callable[[], bool]) -> bool:
        def settled() -> bool:
            wf = self._workflows.get(workflow_id)
            return abort() or wf is None or wf.terminal

        with self.lock:
            self.lock.wait_for(settled, timeout)
            wf = self._workflows.get(workflow_id)
            return wf is not None and wf.terminal

    def tick(self, config: EmulatorConfig, now: float) -> None:
        with self.lock:
            for wf in self._workflows.values():
                if wf.status == "unassigned" and now - wf.created_mono >= config.queue_seconds:
                    wf.started_at = utc_now()
                    wf.next_epoch_due = now + config.seconds_per_epoch
                    self._set(wf, "processing")
                while (
                    wf.status == "processing"
                    and wf.moderation != "underReview"  # held until a moderator decides
                    and wf.next_epoch_due is not None
                    and now >= wf.next_epoch_due
                ):
                    if wf.moderation == "rejected":
                        self._finish(wf, "failed")
                        break
                    number = len(wf.epochs) + 1
                    if number == config.fail_at_epoch:
                        self._finish(wf, "failed")
                        break
                    wf.epochs.append(self._epoch(wf, number))
                    if number >= wf.plan.epochs:
                        self._finish(wf, "succeeded")
                        break
                    if wf.id is not None:  # the job's progress, as `job:processing` events
                        progress = round(number / wf.plan.epochs, 4)
                        self._emit(wf, "processing", iso(utc_now()) or "", progress=progress)
                    wf.next_epoch_due += config.seconds_per_epoch

    def moderate(self, workflow_id: str, decision: str, *, next_epoch_due: float) -> bool:
        """A moderator's decision on a held workflow: "approved" resumes it, "rejected" fails it.
        False if there is no such workflow."""
        with self.lock:
            wf = self._workflows.get(workflow_id)
            if wf is None:
                return False
            if wf.terminal or wf.moderation != "underReview":
                return True
            wf.moderation = decision
            if decision == "rejected":
                self._finish(wf, "failed")
            elif wf.status == "processing":
                wf.next_epoch_due = next_epoch_due
            self.lock.notify_all()
            return True

    def _epoch(self, wf: WorkflowRecord, number: int) -> EpochRecord:
        assert wf.id is not None
        name = wf.plan.lora_name
        return EpochRecord(
            number=number,
            blob_name=blobs.model_file(name, number),
            blob_size=len(blobs.safetensors(wf.id, name, number)),
            sample_files=tuple(
                blobs.sample_file(name, number, i) for i in range(wf.plan.samples_per_epoch)
            ),
        )

    def _set(self, wf: WorkflowRecord, status: str) -> None:
        wf.status = status
        if wf.id is not None:
            self._emit(wf, status, iso(utc_now()) or "")
        self.lock.notify_all()

    def _finish(self, wf: WorkflowRecord, status: str) -> None:
        wf.completed_at = utc_now()
        wf.next_epoch_due = None
        self._set(wf, status)

    def render(self, wf: WorkflowRecord, config: EmulatorConfig, base_url: str) -> JsonObject:
        with self.lock:
            if wf.id is None:  # whatif: the queue ahead of a new workflow, its full ETA
                preceding = sum(1 for other in self._workflows.values() if not other.terminal)
                eta = pricing.eta_minutes(
                    wf.plan,
                    queue_seconds=config.queue_seconds,
                    seconds_per_epoch=config.seconds_per_epoch,
                )
            else:
                preceding = self._preceding(wf)
                eta = self._remaining_minutes(wf, config)
            return self.contract.render_workflow(
                wf,
                base_url=base_url,
                preceding_jobs=preceding,
                eta=eta,
                url_ttl_seconds=config.url_ttl_seconds,
            )

    def _preceding(self, wf: WorkflowRecord) -> int:
        if wf.status != "unassigned":
            return 0
        count = 0
        for other in self._workflows.values():
            if other is wf:
                break
            count += not other.terminal
        return count

    def _remaining_minutes(self, wf: WorkflowRecord, config: EmulatorConfig) -> float:
        now = time.monotonic()
        spe = config.seconds_per_epoch
        if wf.terminal:
            return 0.0
        if wf.status == "unassigned":
            queue = max(0.0, wf.created_mono + config.queue_seconds - now)
            return (queue + wf.plan.epochs * spe) / 60
        current = max(0.0, (wf.next_epoch_due or now) - now)
        return (current + (wf.plan.epochs - len(wf.epochs) - 1) * spe) / 60

    def blob(self, workflow_id: str, file: str) -> tuple[bytes, str] | None:
        with self.lock:
            wf = self._workflows.get(workflow_id)
            epochs = list(wf.epochs) if wf is not None else []
            lora = wf.plan.lora_name if wf is not None else ""
        for epoch in epochs:
            if file == epoch.blob_name:
                return blobs.safetensors(
                    workflow_id, lora, epoch.number
                ), "application/octet-stream"
            if file in epoch.sample_files:
                index = epoch.sample_files.index(file)
                return blobs.sample_png(workflow_id, epoch.number, index), "image/png"
        return None

    def stats(self) -> dict[str, object]:
        with self.lock:
            return {
                "submissions": self.submissions,
                "whatif": self.whatifs,
                "byTag": dict(self.by_tag),
                "workflows": len(self._workflows),
                "active": sum(1 for wf in self._workflows.values() if not wf.terminal),
            }

    def reset(self) -> None:
        with self.lock:
            self._workflows.clear()
            self._by_external_id.clear()
            self.submissions = self.whatifs = 0
            self.by_tag.clear()
            self.lock.notify_all()


def _external_id(body: Mapping[str, object]) -> str | None:
    value = body.get("externalId")
    return value if isinstance(value, str) and value else None
