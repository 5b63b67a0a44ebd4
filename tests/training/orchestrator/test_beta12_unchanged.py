"""beta12 payloads stay byte-identical through #17.

beta12_golden.json holds 968 requests (every base model × engine; each parameter at its default,
at each end of its range, each option; a custom checkpoint, high priority, a negative prompt)
previewed through the API on main at fb81ffc, before #17 changed anything, with the SHA-256 of the
exact body each produced (key order included; only the callback token, which depends on the
deployment's secret, is cut off, and #19's `job:processing` subscription is taken out). Each
must still produce exactly that body.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from rest_framework.test import APIClient

GOLDEN = Path(__file__).with_name("beta12_golden.json")
PREVIEW = "/api/v1/training-runs/preview/"
Client = Callable[[User | None], APIClient]


def fingerprint(workflow: dict[str, Any]) -> str:
    body = copy.deepcopy(workflow)
    for callback in body.get("callbacks") or []:
        callback["url"] = callback["url"].split("?token=")[0]
        # #19 subscribes every workflow to job progress as well, the one change to every body made
        # on purpose (each epoch shows as it finishes); what is trained is unchanged.
        callback["type"] = [kind for kind in callback["type"] if kind != "job:processing"]
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()


def changed_on_purpose(request: dict[str, Any]) -> bool:
    """#17 item 6: `textEncoderLr: 0` on AI Toolkit now means the text encoder is not trained
    (tests/training/test_wire_rules.py); it used to send trainTextEncoder true with rate 0."""
    return request.get("engine") == "ai-toolkit" and request.get("params") == {"textEncoderLr": 0}


@pytest.fixture
def sd3_on(mod: User) -> None:
    from waffle.models import Flag

    assert Flag.objects.get(name="sd3Training").groups.filter(name="mod").exists()


@pytest.mark.django_db
def test_beta12_bodies_are_byte_identical_to_those_of_main_before_17(
    ai_mod: User, client_for: Client, sd3_on: None
) -> None:
    client = client_for(ai_mod)
    golden = json.loads(GOLDEN.read_text())
    assert len(golden) == 968
    changed = []
    with override_settings(ORCHESTRATOR_CONTRACT="beta12"):
        for case in golden:
            if changed_on_purpose(case["request"]):
                continue
            response = client.post(PREVIEW, case["request"], "json")
            if response.status_code != 200:
                changed.append((case["request"], response.json()))
            elif fingerprint(response.json()["workflow"]) != case["sha256"]:
                changed.append((case["request"], response.json()["workflow"]))
    assert changed == []
