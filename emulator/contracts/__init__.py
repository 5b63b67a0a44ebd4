"""Wire contracts the emulator speaks, by name (EMULATOR_CONTRACT). Add beta86 here later."""

from __future__ import annotations

from emulator.contracts.base import EmulatorContract
from emulator.contracts.beta12 import Beta12Contract

CONTRACTS: dict[str, EmulatorContract] = {"beta12": Beta12Contract()}


def get_contract(name: str) -> EmulatorContract:
    return CONTRACTS[name]


__all__ = ["CONTRACTS", "EmulatorContract", "get_contract"]
