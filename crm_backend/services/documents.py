"""The document library: file content kept on disk (by SHA-256), metadata in the database."""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import os
from typing import Any

from crm_backend.errors import CrmError, ValidationFailed
from crm_backend.models.documents import Document
from crm_backend.store import UnitOfWork

MAX_BYTES = 10 * 1024 * 1024


def prepare(uow: UnitOfWork, values: dict[str, Any]) -> dict[str, Any]:
    """Store `content_base64` (if sent) as a file and record its size, type and digest."""
    encoded = values.pop("content_base64", None)
    if encoded is None:
        return values
    try:
        content = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed({"content_base64": "is not valid base64"}) from exc
    if len(content) > MAX_BYTES:
        raise ValidationFailed({"content_base64": f"files are limited to {MAX_BYTES // 2**20} MiB"})
    if uow.store is None or uow.store.files_dir is None:
        raise CrmError("This server has no document storage configured.")
    digest = hashlib.sha256(content).hexdigest()
    folder = uow.store.files_dir / digest[:2]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / digest
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)
    values["storage_path"] = str(path.relative_to(uow.store.files_dir))
    values["size_bytes"] = len(content)
    values["sha256"] = digest
    if not values.get("mime_type"):
        values["mime_type"] = mimetypes.guess_type(values.get("name") or "")[0] or "application/octet-stream"
    return values


def read_content(uow: UnitOfWork, document: Document) -> bytes:
    if uow.store is None or uow.store.files_dir is None or not document.storage_path:
        raise ValidationFailed({"content": "this document has no file"})
    return (uow.store.files_dir / document.storage_path).read_bytes()


def before_update(uow: UnitOfWork, document: Document, changes: dict[str, tuple[Any, Any]]) -> None:
    """A new file (different content) is a new version of the document."""
    if "sha256" in changes:
        document.file_version += 1
