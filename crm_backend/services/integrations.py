"""Social integrations: credentials are encrypted at rest (Fernet) and never read back out."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.fernet import Fernet

from crm_backend.errors import CrmError
from crm_backend.models.integrations import SocialIntegration
from crm_backend.store import UnitOfWork

SECRET_FIELDS = ("api_key", "api_secret", "access_token")


def cipher(uow: UnitOfWork) -> Fernet:
    if uow.store is None or not uow.store.secret:
        raise CrmError("Integration credentials cannot be stored: the server has no secret key configured.")
    key = hashlib.sha256(b"crm-integrations:" + uow.store.secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def prepare(uow: UnitOfWork, values: dict[str, Any]) -> dict[str, Any]:
    """Replace plain credentials in a payload by their encrypted columns."""
    for name in SECRET_FIELDS:
        if name in values:
            plain = values.pop(name)
            values[f"{name}_encrypted"] = cipher(uow).encrypt(plain.encode()).decode() if plain else None
    return values


def configured(integration: SocialIntegration) -> dict[str, Any]:
    """What the API may say about credentials: only whether each is set."""
    return {f"has_{name}": getattr(integration, f"{name}_encrypted") is not None for name in SECRET_FIELDS}


def reveal(uow: UnitOfWork, integration: SocialIntegration, name: str) -> str | None:
    """The plain credential, for the sync engine only; never exposed through the API."""
    token = getattr(integration, f"{name}_encrypted")
    return cipher(uow).decrypt(token.encode()).decode() if token else None
