"""Training-data zips uploaded through the pages: checked, counted and stored with Django's storage
API, and given an absolute URL the orchestrator can download (PUBLIC_BASE_URL + storage URL)."""

from __future__ import annotations

import re
import struct
import uuid
import zipfile
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import PurePosixPath
from typing import IO, Any

from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler
from django.http import HttpRequest, QueryDict
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.datastructures import MultiValueDict

from vocabulary import catalog
from vocabulary.catalog import MediaType

IMAGE_EXTENSIONS: tuple[str, ...] = ("png", "jpg", "jpeg", "webp")
VIDEO_EXTENSIONS: tuple[str, ...] = ("mp4", "webm")
UPLOAD_DIR = "training-data"  # <UPLOAD_DIR>/<user id>/<uuid>.zip in Django's storage
_COUNT_TTL = 24 * 3600  # the count of a stored zip never changes; re-read it at most daily
# Read from the end record before zipfile lists anything: zipfile builds one object per entry, so
# a zip of a million empty entries cost seconds of CPU and hundreds of MB (#16.4). Images, one
# caption each, folders and a few strays fit well within these.
MAX_ENTRIES = 3 * catalog.MAX_IMAGES
MAX_DIRECTORY_BYTES = 2 * 1024 * 1024
_END = struct.Struct("<4sHHHHIIH")  # end of central directory record
_END64_LOCATOR = struct.Struct("<4sIQI")
_END64 = struct.Struct("<4sQHHIIQQQQ")


class UploadRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ZipContents:
    images: int
    videos: int

    def count_for(self, media_type: MediaType) -> int:
        return self.images + (self.videos if media_type == "video" else 0)


@dataclass(frozen=True)
class StoredZip:
    name: str  # storage name: training-data/<user id>/<uuid>.zip
    url: str  # absolute http(s) URL
    image_count: int


def upload_max_bytes() -> int:
    return int(settings.TRAINING_UPLOAD_MAX_BYTES)


def _extensions(media_type: MediaType) -> tuple[str, ...]:
    return IMAGE_EXTENSIONS + (VIDEO_EXTENSIONS if media_type == "video" else ())


NOT_A_ZIP = "That file is not a zip archive. Upload a .zip of your training images."


def directory_size(file: IO[bytes]) -> tuple[int, int]:
    """(entries, central directory bytes) from the zip's end record (and its ZIP64 record), read
    with two small seeks: nothing is listed or decompressed."""
    file.seek(0, 2)
    size = file.tell()
    tail_start = max(0, size - _END.size - 0xFFFF)
    file.seek(tail_start)
    tail = file.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END.size:
        raise UploadRejected("not_a_zip", NOT_A_ZIP)
    _, _, _, _, entries, cd_bytes, cd_offset, _ = _END.unpack_from(tail, at)
    locator_at = tail_start + at - _END64_LOCATOR.size
    if (entries == 0xFFFF or cd_bytes == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF) and (
        locator_at >= 0
    ):
        file.seek(locator_at)
        signature, _, end64_at, _ = _END64_LOCATOR.unpack(file.read(_END64_LOCATOR.size))
        if signature == b"PK\x06\x07" and 0 <= end64_at < size:
            file.seek(end64_at)
            record = file.read(_END64.size)
            if len(record) == _END64.size and record[:4] == b"PK\x06\x06":
                entries, cd_bytes = _END64.unpack(record)[7:9]
    file.seek(0)
    return entries, cd_bytes


def check_directory(file: IO[bytes]) -> None:
    entries, cd_bytes = directory_size(file)
    if entries > MAX_ENTRIES:
        raise UploadRejected(
            "too_many_entries",
            f"The zip has {entries:,} entries; the limit is {MAX_ENTRIES:,} (images, their "
            "captions and folders). Remove what is not training data and upload it again.",
        )
    if cd_bytes > MAX_DIRECTORY_BYTES:
        raise UploadRejected(
            "too_many_entries",
            "The zip's list of files is unusually large (very long file names?). "
            "Rename the files shorter and upload it again.",
        )


def inspect_zip(file: IO[bytes]) -> ZipContents:
    """Counts media entries from the zip's directory (nothing is decompressed); the number of
    entries is checked first, from the end record, so listing stays bounded."""
    try:
        check_directory(file)
        with zipfile.ZipFile(file) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, struct.error):
        raise UploadRejected("not_a_zip", NOT_A_ZIP) from None
    images = videos = 0
    for name in names:
        path = PurePosixPath(name)
        # macOS resource forks and hidden files are not training data.
        if "__MACOSX" in path.parts or path.name.startswith("."):
            continue
        suffix = path.suffix.lower().lstrip(".")
        if suffix in IMAGE_EXTENSIONS:
            images += 1
        elif suffix in VIDEO_EXTENSIONS:
            videos += 1
    return ZipContents(images=images, videos=videos)


def _check_count(contents: ZipContents, media_type: MediaType) -> int:
    count = contents.count_for(media_type)
    kinds = ", ".join(_extensions(media_type))
    if count == 0:
        raise UploadRejected(
            "no_images",
            f"The zip has no training files ({kinds}). Add your images and upload it again.",
        )
    if count > catalog.MAX_IMAGES:
        raise UploadRejected(
            "too_many_files",
            f"The zip has {count} training files; the limit is {catalog.MAX_IMAGES}. "
            "Remove some and upload it again.",
        )
    return count


def public_url(name: str) -> str:
    url = default_storage.url(name)
    if url.startswith(("http://", "https://")):
        return url  # a remote storage already answers with an absolute URL
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/{url.lstrip('/')}"


def too_large_message(limit: int) -> str:
    return (
        f"The zip is larger than the limit of {filesizeformat(limit)}. "
        "Upload fewer or smaller images, or give a URL instead."
    )


class BoundedUploadHandler(TemporaryFileUploadHandler):
    """Streams a request's files to temporary files and stops at the upload limit: a body declared
    larger than the limit (plus room for the form's fields) is not read at all, and a file that
    grows past it is dropped before the chunk that would cross it is written. Django's default
    handlers wrote a whole 700 MB body to disk before the size could be checked (#16.4)."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = upload_max_bytes()
        self.too_large = False
        self.written = 0  # bytes handed to temporary files, over the whole request

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],  # Django's parameter name
        content_length: int,
        boundary: str,
        encoding: str | None = None,
    ) -> tuple[QueryDict, MultiValueDict[str, UploadedFile]] | None:
        if content_length > self.limit + int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0):
            self.too_large = True
            return QueryDict(encoding=encoding), MultiValueDict()
        return None

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if start + len(raw_data) > self.limit:
            self.too_large = True
            raise SkipFile  # Django closes (deletes) the partial file and skips the rest unread
        self.written += len(raw_data)
        return super().receive_data_chunk(raw_data, start)


def bounded_uploads(request: HttpRequest) -> BoundedUploadHandler:
    """Install the bounded handler on a request whose body has not been read yet."""
    handler = BoundedUploadHandler(request)
    request.upload_handlers = [handler]
    return handler


def _cache_key(name: str) -> str:
    return f"training-zip:{name}"


def training_zip_store(*, user: Any, upload: UploadedFile, media_type: MediaType) -> StoredZip:
    """Check the upload (size, zip, count), store it and return where the orchestrator finds it."""
    limit = upload_max_bytes()
    if upload.size is not None and upload.size > limit:
        raise UploadRejected(
            "too_large",
            f"The zip is {filesizeformat(upload.size)}; the limit is {filesizeformat(limit)}. "
            "Upload fewer or smaller images, or give a URL instead.",
        )
    contents = inspect_zip(upload)  # type: ignore[arg-type]  # an UploadedFile is file-like
    count = _check_count(contents, media_type)
    upload.seek(0)
    name = default_storage.save(f"{UPLOAD_DIR}/{user.pk}/{uuid.uuid4().hex}.zip", upload)
    cache.set(_cache_key(name), asdict(contents), _COUNT_TTL)
    return StoredZip(name=name, url=public_url(name), image_count=count)


def storage_name(*, user: Any, name: str) -> str:
    """`name` if it is one of this user's uploaded zips (still stored); else UploadRejected."""
    pattern = rf"{UPLOAD_DIR}/{re.escape(str(user.pk))}/[0-9a-f]{{32}}\.zip"
    if not re.fullmatch(pattern, name) or not default_storage.exists(name):
        raise UploadRejected(
            "upload_missing", "The uploaded zip is no longer available; upload it again."
        )
    return name


def training_zip_get(*, user: Any, name: str, media_type: MediaType) -> StoredZip:
    """A zip this user uploaded earlier (the page keeps its name while the form is corrected),
    counted for this media type."""
    storage_name(user=user, name=name)
    cached = cache.get(_cache_key(name))
    if isinstance(cached, dict):
        contents = ZipContents(**cached)
    else:
        with default_storage.open(name, "rb") as stored:
            contents = inspect_zip(stored)
        cache.set(_cache_key(name), asdict(contents), _COUNT_TTL)
    count = _check_count(contents, media_type)
    return StoredZip(name=name, url=public_url(name), image_count=count)


def training_zips_prune(*, older_than: timedelta) -> int:
    """Delete uploaded zips that no run uses, once they are `older_than` old: a zip chosen on the
    page and then abandoned (or replaced by another) would otherwise stay forever. A zip a run
    uses is kept, so that run can be retried. Returns how many were deleted."""
    from training.models import TrainingRun  # models import the catalog; keep this module light

    cutoff = timezone.now() - older_than
    deleted = 0
    if not default_storage.exists(UPLOAD_DIR):
        return 0
    owners, _ = default_storage.listdir(UPLOAD_DIR)
    for owner in owners:
        if not owner.isdigit():
            continue
        _, files = default_storage.listdir(f"{UPLOAD_DIR}/{owner}")
        names = [
            f"{UPLOAD_DIR}/{owner}/{file}"
            for file in files
            if default_storage.get_modified_time(f"{UPLOAD_DIR}/{owner}/{file}") < cutoff
        ]
        if not names:
            continue
        # The runs name their zip by URL, whose base (PUBLIC_BASE_URL, the storage's) may have
        # changed since: compare the storage names the URLs end with.
        used = {
            url.rsplit(f"/{UPLOAD_DIR}/", 1)[-1]
            for url in TrainingRun.objects.filter(
                owner_id=int(owner), training_data_url__contains=f"/{UPLOAD_DIR}/{owner}/"
            ).values_list("training_data_url", flat=True)
        }
        for name in names:
            if name.split(f"{UPLOAD_DIR}/", 1)[1] not in used:
                default_storage.delete(name)
                cache.delete(_cache_key(name))
                deleted += 1
    return deleted
