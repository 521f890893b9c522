"""The CRM's domain errors: raised by services, mapped once to HTTP and once to sentences."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class CrmError(Exception):
    """Base of every error a service raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(CrmError):
    """The record does not exist, or the acting user may not see it (we never say which)."""


class PermissionDenied(CrmError):
    """The acting user may see the record but may not do this to it."""


class AuthenticationFailed(CrmError):
    """Credentials (an API token, a signed identity) are missing, unknown, expired or revoked."""


class VisitorOnly(AuthenticationFailed):
    """An anonymous visitor (a prospect on the website) asked for something only CRM users may do."""


class ValidationFailed(CrmError):
    """Input broke a rule; `fields` maps each bad field to what is wrong with it."""

    def __init__(self, fields: Mapping[str, str], message: str = "Some values are not valid.") -> None:
        super().__init__(message)
        self.fields = dict(fields)


class Conflict(CrmError):
    """The record changed under the caller (stale version) or the operation clashes with its state."""


class Busy(Conflict):
    """The database is busy with another writer past the wait limit; trying again shortly will do."""


class Duplicate(CrmError):
    """Creating this would make a twin of existing records; `candidates` are their summaries."""

    def __init__(self, candidates: Sequence[Mapping[str, Any]], message: str = "Possible duplicates exist.") -> None:
        super().__init__(message)
        self.candidates = [dict(c) for c in candidates]
