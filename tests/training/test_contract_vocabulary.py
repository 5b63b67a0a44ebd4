"""The catalog's table of what each contract accepts agrees with the contract modules' schemas, so
what the catalog offers is exactly what the wire takes (#17)."""

from __future__ import annotations

from typing import get_args

from training.orchestrator.contracts import beta12, beta86, beta86_schema
from vocabulary import catalog


def test_the_beta86_row_is_the_beta86_schemas() -> None:
    row = catalog.contract_vocabulary("beta86")
    assert set(row.ai_toolkit_optimizers) == set(get_args(beta86_schema.AiToolkitOptimizer))
    assert set(row.ai_toolkit_schedulers) == set(get_args(beta86_schema.AiToolkitScheduler))
    for ecosystem, variants in row.ai_toolkit_ecosystems.items():
        assert beta86_schema.AI_TOOLKIT_ECOSYSTEMS[ecosystem] == variants
    ours = set(catalog.AI_TOOLKIT_VARIANTS)
    assert set(row.ai_toolkit_ecosystems) == ours & set(beta86_schema.AI_TOOLKIT_ECOSYSTEMS)
    assert row.ai_toolkit_model_ecosystems == ours & beta86_schema.ECOSYSTEMS_WITH_MODEL
    assert row.ai_toolkit_min_snr_ecosystems == ours & beta86_schema.ECOSYSTEMS_WITH_MIN_SNR
    assert row.ai_toolkit_steps == beta86.AI_TOOLKIT_STEPS
    fields = beta86_schema.SdxlInput.model_fields
    assert "steps" in fields and not {"resolution", "numRepeats", "trainBatchSize"} & set(fields)
    assert not {"numRepeats", "trainBatchSize"} & set(beta86_schema.MusubiInput.model_fields)


def test_the_beta12_row_keeps_the_plans_vocabulary() -> None:
    row = catalog.contract_vocabulary("beta12")
    legacy = beta12.LegacyAiToolkitInput.model_fields
    assert set(row.ai_toolkit_optimizers) == set(
        get_args(get_args(legacy["optimizerType"].annotation)[0])
    )
    assert row.ai_toolkit_steps is None and row.not_carried == {}
    assert "steps" not in beta12.TrainingInput.model_fields
    assert set(row.ai_toolkit_ecosystems) == set(catalog.AI_TOOLKIT_VARIANTS)


def test_checkpoints_stay_inside_each_contracts_epoch_range() -> None:
    _, low, high = catalog.AI_TOOLKIT_CHECKPOINTS
    assert beta86.AI_TOOLKIT_EPOCHS[0] <= low and high <= beta86.AI_TOOLKIT_EPOCHS[1]
    assert set(catalog.AI_TOOLKIT_DEFAULT_STEPS) == set(
        catalog.contract_vocabulary("beta86").ai_toolkit_ecosystems
    )
