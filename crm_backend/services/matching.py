"""Normalising names, emails and phone numbers, and finding likely twins of a record."""

from __future__ import annotations

import re

from rapidfuzz import fuzz

COMPANY_SUFFIXES = re.compile(
    r"\b(inc|incorporated|ltd|limited|llc|plc|corp|corporation|co|company|gmbh|ag|sa|sarl|bv|pty|srl)\b\.?", re.I
)


def split_name(full: str) -> tuple[str | None, str]:
    """A person's full name as (first names or None, last name): "Mary Ann Lee" → ("Mary Ann", "Lee")."""
    parts = full.split()
    return (" ".join(parts[:-1]) or None, parts[-1]) if parts else (None, "")


def normal_email(email: str | None) -> str | None:
    return email.strip().lower() if email and email.strip() else None


def normal_phone(phone: str | None) -> str | None:
    """Digits only, compared on the last ten so "+1 (555) 010-2030" matches "555-010-2030"."""
    digits = re.sub(r"\D", "", phone or "")
    return digits[-10:] if len(digits) >= 7 else None


def normal_company(name: str | None) -> str | None:
    if not name:
        return None
    cleaned = COMPANY_SUFFIXES.sub(" ", name.lower())
    cleaned = re.sub(r"[^a-z0-9]+", " ", cleaned).strip()
    return cleaned or None


def similar_names(a: str, b: str, threshold: float = 88.0) -> bool:
    """Names that are the same up to order, case, punctuation and a typo or two."""
    return fuzz.token_sort_ratio(a.lower(), b.lower()) >= threshold


def dedup_key(email: str | None, phone: str | None, company: str | None) -> str | None:
    """The lead's identity for duplicate checks: email, else phone, else company."""
    return (
        normal_email(email)
        or (f"tel:{normal_phone(phone)}" if normal_phone(phone) else None)
        or (f"co:{normal_company(company)}" if normal_company(company) else None)
    )
