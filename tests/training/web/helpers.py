"""Small builders for the page tests: zips, runs, and reading a rendered field's error."""

from __future__ import annotations

import html
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.throttling import SimpleRateThrottle

from training.models import TrainingRun


def png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    """A real PNG, made with zlib and struct only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def zip_bytes(names: Iterable[str], content: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, png() if content is None else content)
    return buffer.getvalue()


def make_run(owner: User, **fields: Any) -> TrainingRun:
    values: dict[str, Any] = {
        "base_model": "sdxl",
        "engine": "kohya",
        "training_data_url": "https://data.example.com/set.zip",
        "image_count": 12,
        "lora_name": "my-style",
        "params": {"maxTrainEpochs": 5},
        "sample_prompts": ["a portrait"],
    }
    values.update(fields)
    return TrainingRun.objects.create(owner=owner, **values)


def field_error(page: str, input_name: str) -> str:
    """The text shown next to a page input (its `<id>-error` element)."""
    element_id = "f-" + input_name.replace(".", "-") + "-error"
    match = re.search(rf'<p class="field-error" id="{re.escape(element_id)}"[^>]*>(.*?)</p>', page)
    assert match, f"no error element for {input_name}"
    return html.unescape(match.group(1)).strip()


def form_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "baseModel": "sdxl",
        "loraName": "my-style",
        "dataSource": "url",
        "dataUrl": "https://data.example.com/set.zip",
        "imageCount": "12",
        "samplePrompts": "a portrait in my style",
        "priority": "normal",
    }
    data.update(overrides)
    return data


def throttle_rate(monkeypatch: pytest.MonkeyPatch, scope: str, rate: str) -> None:
    """One throttle scope at another rate for this test (DRF reads its rates once, at import)."""
    rates = {**SimpleRateThrottle.THROTTLE_RATES, scope: rate}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
