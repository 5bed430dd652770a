"""Where product images live: local disk (served under /media) or Cloudinary (when CLOUDINARY_URL is set).

Both backends get a name that already carries a content hash, so a stored asset never changes under
its URL and can be cached for a year. ``save`` returns the key to keep for ``delete``, the public URL
and responsive variants (width → URL).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import cloudinary.exceptions
import cloudinary.uploader
import cloudinary.utils
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.config import Settings
from app.core.errors import ServiceUnavailable

log = logging.getLogger("app.storage")

IMMUTABLE = "public, max-age=31536000, immutable"
VARIANT_WIDTHS = (320, 640, 960, 1280, 1920)
CLOUDINARY_FOLDER = "amour-florals"
CLOUDINARY_TIMEOUT = 60


@dataclass(frozen=True)
class StoredAsset:
    key: str
    url: str
    variants: dict[str, str] = field(default_factory=dict)


class Storage(Protocol):
    name: str

    async def save(self, name: str, data: bytes, ext: str) -> StoredAsset:
        """Store ``data`` as ``name`` (a relative path without extension, content-hash based)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the asset; a missing one is not an error."""
        ...


class LocalStorage:
    name = "local"

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root
        self.base_url = base_url.rstrip("/")

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key escapes the media folder: {key!r}")
        return path

    async def save(self, name: str, data: bytes, ext: str) -> StoredAsset:
        key = f"{name}.{ext}"
        await asyncio.to_thread(self._write, self._path(key), data)
        return StoredAsset(key=key, url=f"{self.base_url}/{key}")

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)  # atomic: a reader sees the whole file or none
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)


class CloudinaryStorage:
    """The real Cloudinary SDK (blocking, so each call runs in a worker thread); signed with SHA-256."""

    name = "cloudinary"

    def __init__(self, cloudinary_url: str, upload_prefix: str | None = None) -> None:
        parts = urlsplit(cloudinary_url)
        # Passed per call rather than through cloudinary.config(): no process-wide state to leak.
        self.options: dict[str, object] = {
            "cloud_name": parts.hostname, "api_key": parts.username, "api_secret": parts.password,
            "signature_algorithm": "sha256", "timeout": CLOUDINARY_TIMEOUT,
        }
        if upload_prefix:
            self.options["upload_prefix"] = upload_prefix.rstrip("/")
        self.cloud_name = parts.hostname

    async def save(self, name: str, data: bytes, ext: str) -> StoredAsset:
        public_id = f"{CLOUDINARY_FOLDER}/{name}"
        try:
            result = await asyncio.to_thread(
                cloudinary.uploader.upload, io.BytesIO(data), public_id=public_id, resource_type="image",
                overwrite=False, unique_filename=False, filename=f"{name.rsplit('/', 1)[-1]}.{ext}", **self.options)
        except cloudinary.exceptions.Error as exc:
            log.error("cloudinary upload of %s failed: %s", public_id, exc)
            raise ServiceUnavailable("Image storage is unavailable; try again shortly.") from exc
        version = result.get("version")
        key = result.get("public_id", public_id)
        variants = {str(w): self.url(key, version, width=w) for w in VARIANT_WIDTHS}
        return StoredAsset(key=key, url=self.url(key, version), variants=variants)

    def url(self, public_id: str, version: int | None, width: int | None = None) -> str:
        """Delivery URL with automatic format and quality, optionally limited to ``width`` pixels."""
        opts: dict[str, object] = {"fetch_format": "auto", "quality": "auto"}
        if width:
            opts.update(width=width, crop="limit")
        url: str
        url, _ = cloudinary.utils.cloudinary_url(public_id, cloud_name=self.cloud_name, secure=True,
                                                 version=version, **opts)
        return url

    async def delete(self, key: str) -> None:
        try:
            result = await asyncio.to_thread(cloudinary.uploader.destroy, key, resource_type="image", invalidate=True,
                                             **self.options)
        except cloudinary.exceptions.Error as exc:
            log.error("cloudinary destroy of %s failed: %s", key, exc)
            raise ServiceUnavailable("Image storage is unavailable; try again shortly.") from exc
        if result.get("result") not in ("ok", "not found"):
            log.warning("cloudinary destroy of %s answered %r", key, result)


def make_storage(settings: Settings) -> Storage:
    if settings.cloudinary_url is not None:
        return CloudinaryStorage(settings.cloudinary_url.get_secret_value(), settings.cloudinary_upload_prefix)
    prefix = settings.media_url_prefix
    base = prefix if prefix.startswith(("http://", "https://")) else settings.public_base_url.rstrip("/") + prefix
    return LocalStorage(settings.media_dir, base)


class ImmutableStaticFiles(StaticFiles):
    """StaticFiles whose files are cached for a year: their names change whenever their content does."""

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = IMMUTABLE
        return response


def media_app(settings: Settings) -> ImmutableStaticFiles:
    settings.media_dir.mkdir(parents=True, exist_ok=True)  # StaticFiles answers 500 for a missing folder
    return ImmutableStaticFiles(directory=settings.media_dir)
