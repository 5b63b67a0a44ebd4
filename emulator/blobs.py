"""Deterministic fake blobs: a tiny valid safetensors LoRA and solid-colour PNG samples."""

from __future__ import annotations

import hashlib
import json
import random
import re
import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SAMPLE_SIZE = 64
_TENSOR_SIDE = 32  # one 32x32 float32 tensor: a 4 KiB body
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    # Blob names end up in URL paths; a lora name may contain anything.
    return _UNSAFE.sub("_", name).strip("._") or "lora"


def model_file(lora_name: str, epoch: int) -> str:
    return f"{safe_name(lora_name)}_e{epoch}.safetensors"


def sample_file(lora_name: str, epoch: int, index: int) -> str:
    return f"{safe_name(lora_name)}_e{epoch}_{index}.png"


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    row = b"\x00" + bytes(rgb) * width  # filter byte 0, then RGB pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit truecolour
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(row * height, 9))
        + _chunk(b"IEND", b"")
    )


def sample_png(workflow_id: str, epoch: int, index: int) -> bytes:
    digest = hashlib.sha256(f"{workflow_id}/{epoch}/{index}".encode()).digest()
    return png(SAMPLE_SIZE, SAMPLE_SIZE, (digest[0], digest[1], digest[2]))


def safetensors(workflow_id: str, lora_name: str, epoch: int) -> bytes:
    count = _TENSOR_SIDE * _TENSOR_SIDE
    header = {
        "__metadata__": {
            "format": "pt",
            "ss_output_name": lora_name,
            "ss_epoch": str(epoch),
            "emulator_workflow_id": workflow_id,
        },
        "lora_unet_emulator.lora_down.weight": {
            "dtype": "F32",
            "shape": [_TENSOR_SIDE, _TENSOR_SIDE],
            "data_offsets": [0, count * 4],
        },
    }
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format recommends an 8-byte aligned body
    rng = random.Random(f"{workflow_id}/{epoch}")  # str seeds are stable across runs
    body = struct.pack(f"<{count}f", *(rng.uniform(-0.01, 0.01) for _ in range(count)))
    return struct.pack("<Q", len(encoded)) + encoded + body
