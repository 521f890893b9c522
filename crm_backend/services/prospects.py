"""Prospects who qualified themselves in a conversation: the lead they leave behind, who owns it, and the
demo they book.

The assistant acts for an anonymous visitor here, so nothing runs as a CRM user: these functions write as
the system, inside the caller's unit of work, and read only what the visitor gave plus what routing needs.

- `capture` dedupes against existing leads (same email, same phone, or a similar name at the same
  company) and contacts (same email: an existing customer gets no lead), then creates or updates the lead
  (source, BANT answers, contact details), attaches the transcript with per-turn sentiment as a note, keeps
  a sentiment summary on the lead, links the conversation, scores the lead with the scoring engine, routes
  it (existing owner → the matching account's owner → the reps of the matching territory → every rep,
  least recently given a chat lead first) and tells the owner at once when the lead is hot.
- `demo_slots` offers free times from the owner's calendar; `book_demo` books one with the prospect as
  attendee (an .ics invitation is `calendar.booking_ics`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from statistics import fmean
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import func, or_, select

from crm_backend import notifications
from crm_backend.errors import Conflict, NotFound, ValidationFailed
from crm_backend.models.accounts import Account
from crm_backend.models.activities import (
    Activity,
    ActivityStatus,
    ActivityType,
    BookingAttendee,
    BookingStatus,
    BookingType,
    CalendarBooking,
)
from crm_backend.models.automation import EntityType
from crm_backend.models.base import utcnow
from crm_backend.models.contacts import Contact
from crm_backend.models.conversations import Conversation
from crm_backend.models.leads import Lead, LeadSource, LeadStatus
from crm_backend.models.territories import Territory
from crm_backend.models.users import Role, User
from crm_backend.scoring import engine as scoring
from crm_backend.services import calendar, conversations, users
from crm_backend.services.leads import set_keys, twin_clauses, twin_reason
from crm_backend.services.matching import normal_company, normal_email, normal_phone, split_name
from crm_backend.services.validation import validated
from crm_backend.store import UnitOfWork

log = logging.getLogger(__name__)

HOT_SCORE = 70  # a lead scoring this or more is hot (so is a sales-ready one): its owner hears at once
DEMO_MINUTES = 30
DEMO_NOTICE = dt.timedelta(hours=2)  # the earliest a demo can start
DEMO_WINDOW = dt.timedelta(days=10)
TRANSCRIPT_TURNS = 200
SOURCES = {"web": LeadSource.WEBSITE}  # other channels (telegram, slack) leave a "Chat" lead
# Country calling codes we can route by (the phone number is the one place a visitor says where they are).
CALLING_CODES = {"1": "US", "44": "GB", "49": "DE", "33": "FR", "34": "ES", "39": "IT", "31": "NL", "61": "AU"}


# The qualification form's slots (domain.yml `prospect_form`) and how it keeps answers: budget "20000 USD",
# authority "yes" / "shared" / "no", contact "email", "phone" or "email, phone", SKIPPED for a skipped question.
SKIPPED = "-"
NEED, TIMELINE, BUDGET, AUTHORITY = "prospect_need", "prospect_timeline", "prospect_budget", "prospect_authority"
NAME, COMPANY, CONTACT, CONFIRM = "prospect_name", "prospect_company", "prospect_contact", "prospect_confirm"
SLOTS = (NEED, TIMELINE, BUDGET, AUTHORITY, NAME, COMPANY, CONTACT, CONFIRM)
ANSWER_SLOTS = SLOTS[:-1]


def split_contact(value: str | None) -> tuple[str | None, str | None]:
    """(email, phone) from the contact slot."""
    email = phone = None
    for part in (value or "").split(", "):
        if "@" in part:
            email = part
        elif part and part != SKIPPED:
            phone = part
    return email, phone


def answers_from_form(slots: Mapping[str, Any]) -> dict[str, Any]:
    """The form's slots as `ProspectAnswers` data (also the BANT snapshot of a ticket opened mid-form)."""

    def given(slot: str) -> str | None:
        value = slots.get(slot)
        return None if value in (None, "", SKIPPED) else str(value)

    email, phone = split_contact(given(CONTACT))
    budget = given(BUDGET)
    authority = given(AUTHORITY)
    return {
        "name": given(NAME),
        "company": given(COMPANY),
        "email": email,
        "phone": phone,
        "need": given(NEED),
        "timeline": given(TIMELINE),
        "budget": budget.split()[0] if budget else None,
        "has_authority": None if authority is None else authority in ("yes", "shared"),
    }


def form_snapshot(slots: Mapping[str, Any]) -> dict[str, Any]:
    """The answers a prospect gave so far, without the missing ones; empty when there are none."""
    if not any(slots.get(s) not in (None, "", SKIPPED) for s in ANSWER_SLOTS):
        return {}
    return {k: v for k, v in answers_from_form(slots).items() if v is not None}


class ProspectAnswers(BaseModel):
    """What a prospect told the assistant; every field may be missing (skipped)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, max_length=200)
    company: str | None = Field(default=None, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=40, pattern=r"^\+?[\d ()./-]{6,40}$")
    need: str | None = Field(default=None, max_length=1000)
    budget: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    has_authority: bool | None = None
    timeline: str | None = Field(default=None, max_length=100)

    @property
    def bant(self) -> dict[str, Any]:
        return {
            "budget": str(self.budget) if self.budget is not None else None,
            "has_authority": self.has_authority,
            "need": self.need,
            "timeline": self.timeline,
        }


@dataclass(frozen=True)
class Captured:
    """What became of a prospect's answers."""

    lead_id: int | None  # None when they are an existing customer's contact (no lead is made for them)
    contact_id: int | None
    created: bool
    owner_id: int
    owner_name: str
    score: int
    hot: bool


def twin_lead(uow: UnitOfWork, answers: ProspectAnswers) -> Lead | None:
    """The open lead these answers belong to: same email, same phone, or a similar name at the same company."""
    email, phone, company = normal_email(answers.email), normal_phone(answers.phone), normal_company(answers.company)
    clauses = twin_clauses(email, phone, company)
    if not clauses:
        return None
    stmt = (
        select(Lead)
        .where(or_(*clauses), Lead.deleted_at.is_(None), Lead.status.not_in((LeadStatus.CONVERTED, LeadStatus.LOST)))
        .order_by(Lead.updated_at.desc(), Lead.id.desc())
        .limit(200)
    )
    full = " ".join((answers.name or "").split())
    return next((lead for lead in uow.session.scalars(stmt) if twin_reason(email, phone, company, full, lead)), None)


def known_contact(uow: UnitOfWork, answers: ProspectAnswers) -> Contact | None:
    """An existing customer contact with this email (a customer chatting on the website is not a new lead)."""
    email = normal_email(answers.email)
    if not email:
        return None
    return uow.session.scalar(
        select(Contact)
        .where(func.lower(Contact.email) == email, Contact.deleted_at.is_(None))
        .order_by(Contact.id)
        .limit(1)
    )


def _account_named(uow: UnitOfWork, company: str | None) -> Account | None:
    key = normal_company(company)
    if not key:
        return None
    first_word = key.split()[0]
    for account in uow.session.scalars(
        select(Account).where(Account.deleted_at.is_(None), func.lower(Account.name).contains(first_word)).limit(50)
    ):
        if normal_company(account.name) == key:
            return account
    return None


def country_of(phone: str | None, email: str | None) -> str | None:
    """An ISO country guessed from an international phone number or a country-code email domain."""
    if phone and phone.strip().startswith(("+", "00")):
        digits = re.sub(r"\D", "", phone)
        digits = digits[2:] if phone.strip().startswith("00") else digits
        for length in (1, 2):
            if digits[:length] in CALLING_CODES:
                return CALLING_CODES[digits[:length]]
    if email and (tld := email.rsplit(".", 1)[-1].lower()) and len(tld) == 2 and tld.isalpha():
        return "GB" if tld == "uk" else tld.upper()
    return None


def _least_recently_given(uow: UnitOfWork, reps: list[int]) -> int:
    """Round robin that survives restarts and many processes: the rep whose newest chat lead is oldest."""
    last = func.max(Lead.created_at)
    given = dict(
        uow.session.execute(
            select(Lead.owner_id, last)
            .where(Lead.owner_id.in_(reps), Lead.source.in_((LeadSource.WEBSITE, LeadSource.CHAT)))
            .group_by(Lead.owner_id)
        ).all()
    )
    never = [r for r in reps if r not in given]
    if never:
        return never[0]
    return min(reps, key=lambda r: (given[r], r))


def route(uow: UnitOfWork, answers: ProspectAnswers, country: str | None) -> tuple[int, int | None]:
    """(owner id, territory id) for a new prospect lead: the owner of their company's account, else a rep of
    the territory covering their country (round robin), else any rep (round robin), else an admin."""
    account = _account_named(uow, answers.company)
    if account is not None and account.owner_id is not None:
        return account.owner_id, account.territory_id
    territory = None
    if country:
        territory = uow.session.scalar(
            select(Territory).where(func.upper(Territory.country) == country).order_by(Territory.id).limit(1)
        )
    if territory is not None and (reps := users.active_reps(uow, User.territory_id == territory.id)):
        return _least_recently_given(uow, reps), territory.id
    if reps := users.active_reps(uow):
        return _least_recently_given(uow, reps), territory.id if territory else None
    admin = uow.session.scalar(
        select(User.id).where(User.is_active.is_(True), User.role.in_((Role.ADMIN, Role.MANAGER))).order_by(User.id)
    )
    if admin is None:
        raise Conflict("There is no active user to give the lead to.")
    return int(admin), None


def mood_summary(uow: UnitOfWork, conversation_id: str) -> str:
    """One line on how the conversation felt, from the sentiment of every user turn."""
    scores = conversations.sentiment_scores(uow, conversation_id)
    if not scores:
        return "mood unknown"
    mean = fmean(scores)
    word = conversations.mood_word(mean)
    trend = ""
    if len(scores) >= 3:
        delta = fmean(scores[-2:]) - fmean(scores[:2])
        trend = ", warming up" if delta >= 0.4 else ", cooling down" if delta <= -0.4 else ", steady"
    return f"mood {word} (mean {mean:+.2f} over {len(scores)} turns{trend})"


def transcript_text(uow: UnitOfWork, conversation_id: str) -> str:
    lines = []
    for turn in conversations.recent_turns(uow, conversation_id, TRANSCRIPT_TURNS):
        who = {"user": "Prospect", "bot": "Assistant"}.get(turn.speaker, turn.speaker.title())
        mood = f" [{turn.sentiment_label} {turn.sentiment_score:+.2f}]" if turn.sentiment_label else ""
        lines.append(f"{turn.at:%H:%M} {who}{mood}: {turn.text}")
    return "\n".join(lines)[-9500:]


def _fill(lead: Lead, answers: ProspectAnswers) -> None:
    """Given answers replace what the lead had; skipped ones leave it as it was."""
    if answers.name:
        lead.first_name, lead.last_name = split_name(answers.name)
    for field in ("company", "email", "phone", "need", "budget", "has_authority", "timeline"):
        value = getattr(answers, field)
        if value is not None:
            setattr(lead, field, str(value) if field == "email" else value)
    set_keys(lead, lead.email, lead.phone, lead.company)
    bant = (lead.budget, lead.has_authority, lead.need, lead.timeline)
    if lead.status in (LeadStatus.NEW, LeadStatus.CONTACTED):
        lead.status = LeadStatus.QUALIFIED if all(v not in (None, "") for v in bant) else LeadStatus.CONTACTED


def sales_ready(lead: Lead) -> bool:
    """All four BANT answers known, a budget stated and the prospect decides (alone or with others): hot
    whatever the score says (the model, trained on past leads, knows little of a first chat)."""
    return (
        lead.status is LeadStatus.QUALIFIED
        and lead.has_authority is True
        and lead.budget is not None
        and lead.budget > 0
    )


def capture(
    uow: UnitOfWork,
    conversation_id: str,
    data: ProspectAnswers | dict[str, Any],
    *,
    now: dt.datetime | None = None,
) -> Captured:
    """The lead (or existing contact) behind a qualified conversation, routed, scored and linked; one transaction."""
    answers = validated(ProspectAnswers, data)
    now = now or utcnow()
    found = uow.session.get(Conversation, conversation_id)
    if found is None:
        raise NotFound("No such conversation.")
    summary = mood_summary(uow, conversation_id)
    transcript = transcript_text(uow, conversation_id)
    contact = known_contact(uow, answers)
    if contact is not None:
        found.contact_id, found.account_id = contact.id, contact.account_id
        owner = _owner(uow, contact.owner_id)
        _note(uow, f"Website chat with {answers.name or 'a contact'}", summary, transcript, owner.id, contact=contact)
        notifications.notify(
            uow,
            owner.id,
            "prospect",
            f"{answers.name or 'Your contact'} ({answers.company or 'customer'}) asked about buying in a chat",
            f"Need: {answers.need or '-'}; timeline: {answers.timeline or '-'}. {summary}.",
            entity_type=EntityType.CONTACT,
            entity_id=contact.id,
            dedupe_key=f"prospect:{conversation_id}",
            important=True,
        )
        return Captured(None, contact.id, False, owner.id, owner.full_name, 0, False)

    lead = (uow.session.get(Lead, found.lead_id) if found.lead_id else None) or twin_lead(uow, answers)
    created = lead is None
    if lead is None:
        country = country_of(answers.phone, answers.email)
        owner_id, territory_id = route(uow, answers, country)
        lead = Lead(
            source=SOURCES.get(found.channel, LeadSource.CHAT),
            status=LeadStatus.NEW,
            owner_id=owner_id,
            territory_id=territory_id,
            country=country,
            custom_fields={},
        )
        uow.session.add(lead)
    _fill(lead, answers)
    lead.description = f"{found.channel} chat {now:%Y-%m-%d}: {summary}. Need: {answers.need or '-'}"[:2000]
    lead.custom_fields = {
        **(lead.custom_fields or {}),
        "chat": {"conversation_id": conversation_id, "sentiment": summary, "at": now.isoformat()},
    }
    uow.session.flush()
    found.lead_id = lead.id
    owner = _owner(uow, lead.owner_id)
    _note(uow, f"Website chat with {answers.name or 'a prospect'}", summary, transcript, owner.id, lead=lead)
    uow.session.flush()
    scoring.score_ids(uow, EntityType.LEAD, [lead.id])
    uow.session.refresh(lead, ["score"])
    hot = (lead.score or 0) >= HOT_SCORE or sales_ready(lead)
    if hot:
        who = " ".join(p for p in (lead.first_name, lead.last_name) if p)
        notifications.notify(
            uow,
            owner.id,
            "hot_lead",
            f"Hot lead from chat: {who} ({lead.company or 'no company'}), score {lead.score}",
            f"Need: {lead.need or '-'}; budget: {lead.budget if lead.budget is not None else '-'}; "
            f"timeline: {lead.timeline or '-'}. {summary}.",
            entity_type=EntityType.LEAD,
            entity_id=lead.id,
            dedupe_key=f"hot-lead:{lead.id}:{conversation_id}",
            important=True,
        )
    return Captured(lead.id, None, created, owner.id, owner.full_name, int(lead.score or 0), hot)


def _owner(uow: UnitOfWork, user_id: int | None) -> User:
    user = uow.session.get(User, user_id) if user_id is not None else None
    if user is None:
        raise Conflict("The record has no owner to hand the prospect to.")
    return user


def _note(
    uow: UnitOfWork,
    subject: str,
    summary: str,
    transcript: str,
    owner_id: int,
    *,
    lead: Lead | None = None,
    contact: Contact | None = None,
) -> None:
    uow.session.add(
        Activity(
            type=ActivityType.NOTE,
            subject=subject[:300],
            description=f"{summary.capitalize()}.\n\n{transcript}"[:10000],
            status=ActivityStatus.COMPLETED,
            completed_at=utcnow(),
            owner_id=owner_id,
            lead_id=lead.id if lead is not None else None,
            contact_id=contact.id if contact is not None else None,
            account_id=contact.account_id if contact is not None else None,
        )
    )


# --- demos ----------------------------------------------------------------------------------------------


def demo_slots(uow: UnitOfWork, owner_id: int, now: dt.datetime | None = None, count: int = 3) -> list[dt.datetime]:
    """Up to `count` free demo start times in the owner's working hours, at most one per day."""
    now = now or utcnow()
    free = calendar.free_slots(
        uow,
        [owner_id],
        dt.timedelta(minutes=DEMO_MINUTES),
        now + DEMO_NOTICE,
        now + DEMO_WINDOW,
        step=dt.timedelta(minutes=30),
        limit=400,
    )
    zone = calendar.zone(_owner(uow, owner_id).timezone)
    picked: list[dt.datetime] = []
    days: set[dt.date] = set()
    for start, _end in free:
        local = start.astimezone(zone)
        if local.date() in days or local.hour < 10:  # not first thing in the morning
            continue
        days.add(local.date())
        picked.append(start)
        if len(picked) == count:
            break
    return picked


def demo_owner(uow: UnitOfWork, conversation_id: str) -> int | None:
    """Whose calendar a conversation's demo goes in: the owner of its lead."""
    found = uow.session.get(Conversation, conversation_id)
    lead = uow.session.get(Lead, found.lead_id) if found is not None and found.lead_id else None
    return lead.owner_id if lead is not None else None


def book_demo(
    uow: UnitOfWork, conversation_id: str, start: dt.datetime, now: dt.datetime | None = None
) -> CalendarBooking:
    """A demo with the lead's owner at `start` (still free, still ahead), the prospect invited by email.
    A conversation books one demo: asking again returns the one already booked."""
    now = now or utcnow()
    found = uow.session.get(Conversation, conversation_id)
    lead = uow.session.get(Lead, found.lead_id) if found is not None and found.lead_id else None
    if lead is None:
        raise Conflict("There is no lead for this conversation yet, so there is no one to book a demo with.")
    booked = uow.session.scalar(
        select(CalendarBooking).where(
            CalendarBooking.lead_id == lead.id,
            CalendarBooking.type == BookingType.DEMO,
            CalendarBooking.start_at > now,
            CalendarBooking.status != BookingStatus.CANCELLED,
        )
    )
    if booked is not None:
        return booked
    if start.tzinfo is None:
        raise ValidationFailed({"start": "needs a time zone"})
    end = start + dt.timedelta(minutes=DEMO_MINUTES)
    if start < now + DEMO_NOTICE / 2:
        raise Conflict("That time is too soon now; please pick another.")
    if calendar.conflicts(uow, lead.owner_id, start, end):
        raise Conflict("That time was just taken; please pick another.")
    owner = _owner(uow, lead.owner_id)
    who = " ".join(p for p in (lead.first_name, lead.last_name) if p)
    booking = CalendarBooking(
        title=f"Demo: {who}" + (f" ({lead.company})" if lead.company else ""),
        type=BookingType.DEMO,
        start_at=start,
        end_at=end,
        timezone=owner.timezone or "UTC",
        description=f"Booked by the prospect in a chat. Need: {lead.need or '-'}"[:2000],
        owner_id=owner.id,
        lead_id=lead.id,
    )
    booking.attendees = [BookingAttendee(user_id=owner.id, required=True)]
    if lead.email:
        booking.attendees.append(BookingAttendee(email=lead.email, required=True))
    uow.session.add(booking)
    uow.session.flush()
    return booking


# --- invitation links -----------------------------------------------------------------------------------
INVITE_SALT = "demo-invite"


def invite_token(secret: str, booking_id: int) -> str:
    """An unguessable token naming one booking: the prospect's link to its .ics (they have no CRM login)."""
    return str(URLSafeSerializer(secret, salt=INVITE_SALT).dumps(booking_id))


def invited_booking(uow: UnitOfWork, secret: str, token: str) -> CalendarBooking:
    """The demo booking a genuine invitation token names (NotFound for anything else)."""
    try:
        booking_id = URLSafeSerializer(secret, salt=INVITE_SALT).loads(token)
    except BadSignature as exc:
        raise NotFound("No such invitation.") from exc
    booking = uow.session.get(CalendarBooking, booking_id) if isinstance(booking_id, int) else None
    if booking is None or booking.type is not BookingType.DEMO:
        raise NotFound("No such invitation.")
    return booking
