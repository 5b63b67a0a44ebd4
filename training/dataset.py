"""An uploaded training zip in view: its images with their captions, a summary with warnings, small
thumbnails, and caption edits written into the zip the run trains on.

Everything is read from the stored zip one entry at a time and bounded: the entry count is
checked before listing (training.uploads), at most `GRID_LIMIT` images are shown, a thumbnail is
made only from an entry of at most `THUMB_MAX_BYTES` whose header declares at most
`THUMB_MAX_PIXELS`, and nothing is ever extracted to disk on the web process."""

from __future__ import annotations

import io
import tempfile
import uuid
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any

from django.core.cache import cache
from django.core.files.base import File
from django.core.files.storage import default_storage
from PIL import Image, UnidentifiedImageError

from training import uploads

GRID_LIMIT = 60  # images shown (and captioned) on the page; the rest are counted only
SIDES_LIMIT = 1000  # images whose size is read (from their headers) for the summary
THUMB_SIZE = 192
THUMB_MAX_BYTES = 40 * 1024 * 1024  # an image entry larger than this gets no thumbnail
THUMB_MAX_PIXELS = 64_000_000  # ~8000 x 8000; larger headers are refused before decoding
CAPTION_MAX_BYTES = 4096
MIN_IMAGES = 5  # fewer trains a LoRA that copies its images
SMALL_SIDE = 512  # images smaller than this on a side train blurry
_TTL = 24 * 3600
_PIL_FORMATS = ("PNG", "JPEG", "WEBP")


@dataclass(frozen=True)
class Item:
    index: int
    name: str  # the entry's path in the zip
    kind: str  # image | video
    caption: str | None  # None: no name.txt beside it
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Summary:
    images: int
    videos: int
    captioned: int
    smallest_side: int | None
    duplicates: int  # entries whose content repeats an earlier one
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DataSet:
    name: str  # the storage name of the zip
    items: list[Item]  # the first GRID_LIMIT media entries
    summary: Summary

    @property
    def key(self) -> str:
        """The zip's id in its thumbnails' URLs."""
        return PurePosixPath(self.name).stem

    @property
    def hidden(self) -> int:
        return self.summary.images + self.summary.videos - len(self.items)


def _is_media(path: PurePosixPath) -> str | None:
    if "__MACOSX" in path.parts or path.name.startswith("."):
        return None
    suffix = path.suffix.lower().lstrip(".")
    if suffix in uploads.IMAGE_EXTENSIONS:
        return "image"
    if suffix in uploads.VIDEO_EXTENSIONS:
        return "video"
    return None


def caption_name(entry: str) -> str:
    return str(PurePosixPath(entry).with_suffix(".txt"))


def _read_caption(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    with archive.open(info) as member:
        return member.read(CAPTION_MAX_BYTES).decode("utf-8", "replace").strip()


def _image_size(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[int, int] | None:
    """The size from the image's header (Pillow reads only the first bytes)."""
    try:
        with archive.open(info) as member, Image.open(member, formats=_PIL_FORMATS) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError, zipfile.BadZipFile):
        return None


def _warnings(summary: Summary, media_type: str, unreadable: int) -> list[str]:
    out = []
    count = summary.images + (summary.videos if media_type == "video" else 0)
    if count < MIN_IMAGES:
        out.append(
            f"Only {count} training file{'s' if count != 1 else ''}: "
            f"at least {MIN_IMAGES} (better 15-30) give a LoRA that generalises."
        )
    if summary.videos and media_type != "video":
        out.append(
            f"{summary.videos} video file(s) will be ignored: this base model trains on images."
        )
    missing = count - summary.captioned
    if missing:
        out.append(
            f"{missing} of {count} files have no caption (name.txt beside the image): "
            "they train on the trigger word alone. Add captions below."
        )
    if summary.smallest_side is not None and summary.smallest_side < SMALL_SIDE:
        out.append(
            f"The smallest image is {summary.smallest_side} px on a side; images under "
            f"{SMALL_SIDE} px train blurry. Replace or upscale them."
        )
    if summary.duplicates:
        out.append(
            f"{summary.duplicates} file(s) repeat another one exactly: duplicates weigh that image "
            "double. Remove them."
        )
    if unreadable:
        out.append(
            f"{unreadable} image(s) could not be read; the trainer will skip or fail on them."
        )
    return out


def _inspect(file: IO[bytes], name: str, media_type: str) -> DataSet:
    uploads.check_directory(file)
    with zipfile.ZipFile(file) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        by_name = {i.filename: i for i in infos}
        items: list[Item] = []
        images = videos = captioned = unreadable = 0
        sides: list[int] = []
        seen: Counter[tuple[int, int]] = Counter()
        for info in infos:
            kind = _is_media(PurePosixPath(info.filename))
            if kind is None:
                continue
            # Same CRC-32 and size is the same content for any real data set; read from the
            # directory, so duplicates cost nothing to find.
            seen[(info.CRC, info.file_size)] += 1
            images += kind == "image"
            videos += kind == "video"
            caption_info = by_name.get(caption_name(info.filename))
            captioned += caption_info is not None
            size = None
            if kind == "image" and images <= SIDES_LIMIT:
                size = _image_size(archive, info)
                if size is None:
                    unreadable += 1
                else:
                    sides.append(min(size))
            if len(items) < GRID_LIMIT:
                caption = _read_caption(archive, caption_info) if caption_info else None
                width, height = size if size else (None, None)
                items.append(Item(len(items), info.filename, kind, caption, width, height))
    duplicates = sum(n - 1 for n in seen.values())
    summary = Summary(images, videos, captioned, min(sides) if sides else None, duplicates)
    summary = Summary(**{**asdict(summary), "warnings": _warnings(summary, media_type, unreadable)})
    return DataSet(name, items, summary)


def _key(name: str, media_type: str) -> str:
    return f"dataset:{name}:{media_type}"


def dataset_get(*, user: Any, name: str, media_type: str) -> DataSet:
    """This user's uploaded zip, listed and summarised (cached: a stored zip never changes)."""
    uploads.storage_name(user=user, name=name)
    cached = cache.get(_key(name, media_type))
    if isinstance(cached, dict):
        summary = Summary(**cached["summary"])
        return DataSet(name, [Item(**i) for i in cached["items"]], summary)
    try:
        with default_storage.open(name, "rb") as stored:
            data = _inspect(stored, name, media_type)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise uploads.UploadRejected("not_a_zip", uploads.NOT_A_ZIP) from None
    payload = {"items": [asdict(i) for i in data.items], "summary": asdict(data.summary)}
    cache.set(_key(name, media_type), payload, _TTL)
    return data


def dataset_thumbnail(*, user: Any, name: str, index: int) -> bytes | None:
    """A small WebP of the index-th media entry, or None (a video, unreadable or too large)."""
    uploads.storage_name(user=user, name=name)
    key = f"dataset-thumb:{name}:{index}"
    cached = cache.get(key)
    if isinstance(cached, bytes):
        return cached or None
    thumb = b""
    with default_storage.open(name, "rb") as stored:
        uploads.check_directory(stored)
        with zipfile.ZipFile(stored) as archive:
            media = [
                i
                for i in archive.infolist()
                if not i.is_dir() and _is_media(PurePosixPath(i.filename)) is not None
            ]
            if 0 <= index < min(len(media), GRID_LIMIT):
                thumb = _thumbnail(archive, media[index])
    cache.set(key, thumb, _TTL)
    return thumb or None


def _thumbnail(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if _is_media(PurePosixPath(info.filename)) != "image" or info.file_size > THUMB_MAX_BYTES:
        return b""
    try:
        with archive.open(info) as member:
            raw = member.read(THUMB_MAX_BYTES + 1)
        with Image.open(io.BytesIO(raw), formats=_PIL_FORMATS) as image:
            width, height = image.size
            if width * height > THUMB_MAX_PIXELS:
                return b""  # a decompression bomb, or just huge: no decoding
            image.draft("RGB", (THUMB_SIZE, THUMB_SIZE))  # JPEG decodes at a reduced scale
            image.thumbnail((THUMB_SIZE, THUMB_SIZE))
            out = io.BytesIO()
            image.convert("RGB").save(out, "WEBP", quality=70)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return b""


def dataset_captions_save(
    *, user: Any, name: str, media_type: str, captions: dict[int, str]
) -> uploads.StoredZip:
    """Write the edited captions (by grid index) into a new copy of the zip, entry by entry, and
    return it: the run trains on the copy. Unchanged captions leave the zip as it is."""
    data = dataset_get(user=user, name=name, media_type=media_type)
    changes: dict[str, str] = {}
    for item in data.items:
        if item.index in captions:
            text = captions[item.index].strip()
            if text != (item.caption or "") and (text or item.caption is not None):
                changes[caption_name(item.name)] = text
    if not changes:
        return uploads.training_zip_get(user=user, name=name, media_type=media_type)  # type: ignore[arg-type]
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as copy:
        with default_storage.open(name, "rb") as stored, zipfile.ZipFile(stored) as source:
            with zipfile.ZipFile(copy, "w") as target:
                for info in source.infolist():
                    if info.filename in changes:
                        continue
                    with source.open(info) as src, target.open(info, "w") as dst:
                        while chunk := src.read(1024 * 1024):
                            dst.write(chunk)
                for entry, text in changes.items():
                    target.writestr(entry, text.encode("utf-8"), zipfile.ZIP_DEFLATED)
        copy.seek(0)
        new_name = default_storage.save(
            f"{uploads.UPLOAD_DIR}/{user.pk}/{uuid.uuid4().hex}.zip", File(copy)
        )
    return uploads.training_zip_get(user=user, name=new_name, media_type=media_type)  # type: ignore[arg-type]
