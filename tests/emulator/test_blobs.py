"""The fake blobs are real files: a PNG a browser shows, a safetensors file a loader can parse."""

from __future__ import annotations

import json
import struct
import zlib

from emulator import blobs


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == blobs.PNG_SIGNATURE
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, body))
        offset += 12 + length
    return chunks


def test_a_sample_image_is_a_well_formed_64_pixel_png() -> None:
    chunks = png_chunks(blobs.sample_png("wf", 1, 0))

    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (width, height, depth, colour) == (64, 64, 8, 2)
    assert len(zlib.decompress(chunks[1][1])) == 64 * (1 + 64 * 3)


def test_sample_images_are_deterministic_and_differ_by_epoch_and_prompt() -> None:
    assert blobs.sample_png("wf", 1, 0) == blobs.sample_png("wf", 1, 0)
    assert blobs.sample_png("wf", 1, 0) != blobs.sample_png("wf", 2, 0)
    assert blobs.sample_png("wf", 1, 0) != blobs.sample_png("wf", 1, 1)


def test_a_model_blob_is_a_parseable_safetensors_file() -> None:
    data = blobs.safetensors("wf", "my-lora", 3)

    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    tensor = header["lora_unet_emulator.lora_down.weight"]
    start, end = tensor["data_offsets"]
    assert size % 8 == 0
    assert len(data) == 8 + size + end
    assert tensor["dtype"] == "F32" and end - start == 4 * 32 * 32
    assert header["__metadata__"]["ss_epoch"] == "3"
    assert data == blobs.safetensors("wf", "my-lora", 3)


def test_blob_file_names_are_safe_in_a_url_path() -> None:
    assert blobs.model_file("my lora/v2?", 1) == "my_lora_v2_e1.safetensors"
    assert blobs.sample_file("../..", 2, 0) == "lora_e2_0.png"
