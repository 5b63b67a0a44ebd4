"""Wire contracts the emulator speaks, by name (EMULATOR_CONTRACT)."""

from __future__ import annotations

from emulator.contracts.base import EmulatorContract
from emulator.contracts.beta12 import Beta12Contract
from emulator.contracts.beta86 import Beta86Contract

CONTRACTS: dict[str, EmulatorContract] = {
    "beta12": Beta12Contract(),
    "beta86": Beta86Contract(),
}


def get_contract(name: str) -> EmulatorContract:
    return CONTRACTS[name]


__all__ = ["CONTRACTS", "EmulatorContract", "get_contract"]
