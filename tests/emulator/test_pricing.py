"""The cost model of docs/emulator.md, number by number, as the wire input yields it."""

from __future__ import annotations

from typing import Any

import pytest

from emulator import pricing
from emulator.contracts import get_contract
from tests.emulator.helpers import ai_toolkit_body, kohya_body, legacy_body, with_priority

contract = get_contract("beta12")


def cost(body: dict[str, Any]) -> int:
    assert contract.validate(body) == []
    return pricing.price(contract.plan(body))


@pytest.mark.parametrize(
    ("ecosystem", "epochs", "expected"),
    [("sd1", 4, 200), ("sdxl", 2, 100), ("flux1", 3, 600), ("chroma", 1, 200),
     ("sd3", 2, 300), ("wan", 2, 600), ("qwen", 4, 400)],
)  # fmt: skip
def test_ai_toolkit_costs_a_price_per_epoch_by_ecosystem(
    ecosystem: str, epochs: int, expected: int
) -> None:
    assert cost(ai_toolkit_body(ecosystem=ecosystem, epochs=epochs)) == expected


def test_ai_toolkit_prices_five_epochs_when_none_are_sent() -> None:
    body = ai_toolkit_body(ecosystem="sdxl")
    del body["steps"][0]["input"]["epochs"]

    assert cost(body) == 250


def test_kohya_costs_its_steps_times_the_rate_of_the_models_ecosystem() -> None:
    # 100 images x 10 repeats x 10 epochs / batch 2 = 5000 steps at 1.0 (sdxl)
    body = kohya_body(
        trainingDataImagesCount=100, numRepeats=10, maxTrainEpochs=10, trainBatchSize=2
    )

    assert cost(body) == 5000


def test_kohya_on_flux_costs_one_and_a_half_per_step() -> None:
    body = kohya_body(
        model="urn:air:flux1:checkpoint:civitai:618692@691639",
        trainingDataImagesCount=100,
        numRepeats=10,
        maxTrainEpochs=1,
        trainBatchSize=1,
    )

    assert cost(body) == 1500


def test_kohya_rounds_half_steps_up() -> None:
    # 1001 steps at 0.5 (sd1) = 500.5, which rounds to 501 (round() would give 500)
    body = kohya_body(
        model="urn:air:sd1:checkpoint:civitai:4201@130072",
        trainingDataImagesCount=1001,
        numRepeats=1,
        maxTrainEpochs=1,
        trainBatchSize=1,
    )

    assert cost(body) == 501


def test_kohya_costs_at_least_500() -> None:
    assert cost(kohya_body()) == 500  # 12 x 17 x 3 / 4 = 153 steps


def test_kohya_defaults_to_eight_repeats_and_a_batch_of_one() -> None:
    body = kohya_body(trainingDataImagesCount=100, maxTrainEpochs=1)
    del body["steps"][0]["input"]["numRepeats"]
    del body["steps"][0]["input"]["trainBatchSize"]

    assert cost(body) == 800


@pytest.mark.parametrize(
    ("images", "expected"), [(150, 4000), (200, 4000), (201, 4500), (350, 5000)]
)
def test_rapid_costs_the_historical_flat_price(images: int, expected: int) -> None:
    assert cost(legacy_body("flux-dev-fast", images)) == expected


@pytest.mark.parametrize(("images", "epochs", "expected"), [(25, 5, 1500), (5, 1, 1000)])
def test_musubi_costs_per_epoch_and_ten_images(images: int, epochs: int, expected: int) -> None:
    assert cost(legacy_body("musubi", images, maxTrainEpochs=epochs)) == expected


@pytest.mark.parametrize(
    ("base", "priority", "expected"),
    [(600, "high", 700), (5000, "high", 5500), (600, "low", 540), (5000, "low", 4500),
     (600, "normal", 600)],
)  # fmt: skip
def test_priority_adds_or_takes_a_tenth(base: int, priority: str, expected: int) -> None:
    body = (
        ai_toolkit_body(ecosystem="flux1", epochs=3)
        if base == 600
        else kohya_body(
            trainingDataImagesCount=100, numRepeats=10, maxTrainEpochs=10, trainBatchSize=2
        )
    )

    assert cost(with_priority(body, priority)) == expected


def test_rapid_trains_one_epoch_whatever_it_is_sent() -> None:
    plan = contract.plan(legacy_body("flux-dev-fast", 10))

    assert plan.epochs == 1
    assert pricing.eta_minutes(plan, queue_seconds=60, seconds_per_epoch=120) == 3.0


def test_eta_is_the_epochs_time_plus_the_queue_time_in_minutes() -> None:
    plan = contract.plan(ai_toolkit_body(epochs=4))

    assert pricing.eta_minutes(plan, queue_seconds=30, seconds_per_epoch=60) == 4.5
