"""#16.4: uploads cannot exhaust the machine. The three repros, with their numbers: zips stored
past the upload throttle by posting them with an otherwise invalid form, a 700 MB upload written to
disk before it was refused, and a zip of 1,000,000 empty entries listed before its 400."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http.multipartparser import MultiPartParser
from django.test import Client, override_settings

from tests.training.web.helpers import form_data, zip_bytes
from training import uploads
from training.models import TrainingRun

pytestmark = pytest.mark.django_db
Browser = Callable[[User], Client]
MB = 1000 * 1000


def _stored(media: Path) -> list[Path]:
    return [p for p in media.rglob("*.zip")] if media.exists() else []


def _zip() -> SimpleUploadedFile:
    return SimpleUploadedFile("set.zip", zip_bytes(["1.png"]), content_type="application/zip")


def _rates(upload: str) -> dict[str, object]:
    from django.conf import settings

    framework = dict(settings.REST_FRAMEWORK)
    framework["DEFAULT_THROTTLE_RATES"] = {
        **framework["DEFAULT_THROTTLE_RATES"],
        "training_upload": upload,
    }
    return framework


def test_zips_posted_with_the_form_are_stored_only_when_it_is_valid_and_under_the_throttle(
    owner: User, browser_for: Browser, _media: Path
) -> None:
    client = browser_for(owner)
    with override_settings(REST_FRAMEWORK=_rates("2/hour")):
        from rest_framework.throttling import SimpleRateThrottle

        SimpleRateThrottle.THROTTLE_RATES = _rates("2/hour")["DEFAULT_THROTTLE_RATES"]  # type: ignore[assignment]
        try:
            codes = [client.post("/train/upload", {"trainingZip": _zip()}).status_code
                     for _ in range(3)]  # fmt: skip
            assert codes == [201, 201, 429] and len(_stored(_media)) == 2
            # The repro: 10 page posts with a zip and an invalid form, past the 429.
            invalid = form_data(dataSource="upload", dataUrl="", imageCount="", loraName="")
            for _ in range(10):
                answer = client.post("/train/new", {**invalid, "trainingZip": _zip()})
                assert answer.status_code == 400
                assert "Your zip was not stored" in answer.content.decode()
            # ... and 10 with a valid form, past the 429: refused, nothing stored either.
            valid = form_data(dataSource="upload", dataUrl="", imageCount="")
            for _ in range(10):
                assert (
                    client.post("/train/new", {**valid, "trainingZip": _zip()}).status_code == 429
                )
            # The data step stores under the same throttle.
            step = {"step": "data", "action": "upload", "baseModel": "sdxl", "trainingZip": _zip()}
            assert client.post("/train/new", step).status_code == 429
        finally:
            from django.conf import settings

            SimpleRateThrottle.THROTTLE_RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert len(_stored(_media)) == 2 and TrainingRun.objects.count() == 0


class LazyBody:
    """A multipart body of `size` bytes made as it is read, counting what the server read."""

    def __init__(self, size: int, boundary: str = "B0UNDARY") -> None:
        self.head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="trainingZip"; '
            f'filename="big.zip"\r\nContent-Type: application/zip\r\n\r\n'
        ).encode()
        self.tail = f"\r\n--{boundary}--\r\n".encode()
        self.size = size
        self.read_bytes = 0

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.read_bytes
        n = left if n is None or n < 0 else min(n, left)
        start = self.read_bytes
        self.read_bytes += n
        out = bytearray(n)
        if start < len(self.head):
            part = self.head[start : start + n]
            out[: len(part)] = part
        tail_start = self.size - len(self.tail)
        if start + n > tail_start:
            for i in range(max(start, tail_start), start + n):
                out[i - start] = self.tail[i - tail_start]
        return bytes(out)

    def readline(self, size: int = -1) -> bytes:  # not used by the multipart parser
        return self.read(size)


@pytest.mark.parametrize("path", ["/train/new", "/train/upload"])
def test_a_700_mb_upload_is_refused_before_its_body_is_read_or_written(
    owner: User, browser_for: Browser, _media: Path, path: str, tmp_path: Path
) -> None:
    body = LazyBody(700 * MB)
    temp = tmp_path / "uploads-tmp"
    temp.mkdir()
    with override_settings(
        TRAINING_UPLOAD_MAX_BYTES=512 * 1024 * 1024, FILE_UPLOAD_TEMP_DIR=str(temp)
    ):
        answer = browser_for(owner).generic(
            "POST",
            path,
            b"x",
            content_type="multipart/form-data; boundary=B0UNDARY",
            **{"wsgi.input": body, "CONTENT_LENGTH": str(body.size)},
        )
    assert answer.status_code == 413
    assert "The zip is larger than the limit of 512.0\xa0MB" in answer.content.decode()
    assert body.read_bytes == 0  # Before: 679 MiB were written to disk, then refused.
    assert list(temp.iterdir()) == [] and _stored(_media) == []


def test_a_file_that_streams_past_the_limit_stops_being_written_at_the_limit() -> None:
    limit = 1024 * 1024
    size = 3 * limit  # within the declared-size slack, so only the stream can tell
    body = LazyBody(size)
    meta = {
        "CONTENT_TYPE": "multipart/form-data; boundary=B0UNDARY",
        "CONTENT_LENGTH": str(size),
    }
    with override_settings(TRAINING_UPLOAD_MAX_BYTES=limit):
        handler = uploads.BoundedUploadHandler()
        _post, files = MultiPartParser(meta, body, [handler]).parse()  # type: ignore[arg-type]
    assert handler.too_large and "trainingZip" not in files
    assert handler.written <= limit  # at most the limit (< limit + one chunk) was ever written
    assert body.read_bytes == size  # the rest was read and dropped, not written


def million_empty_entries() -> bytes:
    """A ZIP64 archive whose central directory lists 1,000,000 empty entries (all pointing at one
    local header): 47 MB, built by repetition in a few milliseconds."""
    name = b"a.png"
    local = struct.pack(zipfile.structFileHeader, zipfile.stringFileHeader, 20, 0, 0, 0, 0, 0,
                        0, 0, 0, len(name), 0) + name  # fmt: skip
    central = struct.pack(zipfile.structCentralDir, zipfile.stringCentralDir, 20, 0, 20, 0, 0, 0,
                          0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, 0) + name  # fmt: skip
    count = 1_000_000
    directory = central * count
    cd_offset = len(local)
    end64_offset = cd_offset + len(directory)
    end64 = struct.pack(zipfile.structEndArchive64, zipfile.stringEndArchive64, 44, 45, 45, 0, 0,
                        count, count, len(directory), cd_offset)  # fmt: skip
    locator = struct.pack(zipfile.structEndArchive64Locator, zipfile.stringEndArchive64Locator, 0,
                          end64_offset, 1)  # fmt: skip
    end = struct.pack(zipfile.structEndArchive, zipfile.stringEndArchive, 0, 0, 0xFFFF, 0xFFFF,
                      len(directory), cd_offset, 0)  # fmt: skip
    return local + directory + end64 + locator + end


def test_a_zip_of_a_million_empty_entries_is_refused_from_its_end_record(
    owner: User, browser_for: Browser, _media: Path
) -> None:
    data = million_empty_entries()  # zipfile lists all 1,000,000 (seconds of CPU; not done here)
    tracemalloc.start()
    with pytest.raises(uploads.UploadRejected) as refused:
        uploads.inspect_zip(io.BytesIO(data))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert refused.value.code == "too_many_entries"
    assert peak < 1 * MB  # before: 550 MB (zipfile's objects for every entry)

    answer = browser_for(owner).post(
        "/train/upload", {"trainingZip": SimpleUploadedFile("m.zip", data), "baseModel": "sdxl"}
    )
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("The zip has 1,000,000 entries; the limit is 3,000")
    assert _stored(_media) == []
