"""Wire contracts, one module each, chosen by the ORCHESTRATOR_CONTRACT setting (DESIGN.md §4,
docs/contracts.md).

Code outside this package asks `active()` for the contract and uses only what it declares."""

from __future__ import annotations

from django.conf import settings

from training.orchestrator.contracts.base import Contract, RunLike, WireError
from training.orchestrator.contracts.beta12 import Beta12
from training.orchestrator.contracts.beta86 import Beta86

CONTRACTS: dict[str, Contract] = {"beta12": Beta12(), "beta86": Beta86()}


def get(name: str) -> Contract:
    return CONTRACTS[name]


def active() -> Contract:
    return CONTRACTS[settings.ORCHESTRATOR_CONTRACT]


__all__ = ["CONTRACTS", "Contract", "RunLike", "WireError", "active", "get"]
