from __future__ import annotations

import pytest

from emulator.config import ConfigError, EmulatorConfig


def test_the_environment_sets_every_knob() -> None:
    config = EmulatorConfig.from_env(
        {
            "EMULATOR_TOKEN": "t",
            "EMULATOR_FAIL_RATE": "0.25",
            "EMULATOR_FAIL_STATUS": "502",
            "EMULATOR_SECONDS_PER_EPOCH": "0.5",
            "EMULATOR_FAIL_AT_EPOCH": "3",
            "EMULATOR_REJECT_ALL": "No Buzz",
            "EMULATOR_DROP_CALLBACKS": "true",
            "EMULATOR_SUBMIT_HANG_AFTER_ACCEPT_SECONDS": "12",
        }
    )

    assert config.token == "t"
    assert (config.fail_rate, config.fail_status, config.seconds_per_epoch) == (0.25, 502, 0.5)
    assert (config.fail_at_epoch, config.reject_all, config.drop_callbacks) == (3, "No Buzz", True)
    assert config.submit_hang_after_accept_seconds == 12


def test_without_environment_it_uses_the_documented_defaults() -> None:
    config = EmulatorConfig.from_env({})

    assert config == EmulatorConfig()
    assert (config.token, config.queue_seconds, config.seconds_per_epoch) == (
        "emulator-token",
        1,
        1,
    )
    assert (config.fail_status, config.hang_seconds, config.callback_retries) == (503, 30, 5)


def test_a_bad_environment_value_names_its_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        EmulatorConfig.from_env({"EMULATOR_FAIL_RATE": "often", "EMULATOR_CONTRACT": "beta99"})

    assert set(caught.value.problems) == {"EMULATOR_FAIL_RATE", "EMULATOR_CONTRACT"}


def test_runtime_changes_are_limited_to_the_faults() -> None:
    with pytest.raises(ConfigError) as caught:
        EmulatorConfig().with_changes({"token": "x", "fail_rate": 0.5}, runtime=True)

    assert caught.value.problems == {"token": "fixed at start"}
