"""Training-data zips uploaded through the pages: checked, counted and stored with Django's storage
API, and given an absolute URL the orchestrator can download (PUBLIC_BASE_URL + storage URL)."""

from __future__ import annotations

import re
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
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from vocabulary import catalog
from vocabulary.catalog import MediaType

IMAGE_EXTENSIONS: tuple[str, ...] = ("png", "jpg", "jpeg", "webp")
VIDEO_EXTENSIONS: tuple[str, ...] = ("mp4", "webm")
UPLOAD_DIR = "training-data"  # <UPLOAD_DIR>/<user id>/<uuid>.zip in Django's storage
_COUNT_TTL = 24 * 3600  # the count of a stored zip never changes; re-read it at most daily


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


def inspect_zip(file: IO[bytes]) -> ZipContents:
    """Counts media entries from the zip's directory (nothing is decompressed)."""
    try:
        with zipfile.ZipFile(file) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError):
        raise UploadRejected(
            "not_a_zip",
            "That file is not a zip archive. Upload a .zip of your training images.",
        ) from None
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


def training_zip_get(*, user: Any, name: str, media_type: MediaType) -> StoredZip:
    """A zip this user uploaded earlier (the page keeps its name while the form is corrected),
    counted for this media type."""
    pattern = rf"{UPLOAD_DIR}/{re.escape(str(user.pk))}/[0-9a-f]{{32}}\.zip"
    if not re.fullmatch(pattern, name) or not default_storage.exists(name):
        raise UploadRejected(
            "upload_missing", "The uploaded zip is no longer available; upload it again."
        )
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
