"""What a forecast counts and how it splits: the deals the user may see (narrowed to an owner or a
territory subtree), the grouping key (owner, team, territory), the territory roll-up, and the
conversion of each currency's sums into the one currency a forecast is stated in."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar

from sqlalchemy import Select, literal_column, null, select

from crm_backend.errors import ValidationFailed
from crm_backend.models.currencies import Currency
from crm_backend.models.deals import Deal
from crm_backend.models.territories import Territory
from crm_backend.models.users import Team, User
from crm_backend.services.deals import visible_deals
from crm_backend.store import Actor, UnitOfWork

T = TypeVar("T")
Key = int | None  # an owner, team or territory id; None: the whole scope, or "no team/territory"
DEFAULT_BASE = "USD"  # the deals' default currency, used as base while no currency is configured


class GroupBy(enum.StrEnum):
    OWNER = "owner"
    TEAM = "team"
    TERRITORY = "territory"


def parse_group_by(raw: str | None) -> GroupBy | None:
    if raw is None or raw == "" or raw == "none":
        return None
    try:
        return GroupBy(raw.lower())
    except ValueError:
        raise ValidationFailed({"by": "one of owner, team, territory"}) from None


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of `day`: periods are calendar days in UTC."""
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True)
class Rates:
    """Units of `target` one unit of each active currency is worth (through the base currency)."""

    target: str
    factors: dict[str, float]


def load_rates(uow: UnitOfWork, currency: str | None) -> Rates:
    """Rates from the Currency table; with no currency configured at all, only the default base."""
    rows = uow.session.execute(select(Currency.code, Currency.rate_to_base, Currency.is_base).where(Currency.is_active))
    to_base = {code.upper(): float(rate) for code, rate, _ in rows}
    base = next(
        (c.upper() for c in uow.session.scalars(select(Currency.code).where(Currency.is_base, Currency.is_active))),
        None,
    )
    if not to_base:
        to_base = {DEFAULT_BASE: 1.0}
    target = (currency or base or DEFAULT_BASE).upper()
    if target not in to_base:
        raise ValidationFailed({"currency": f"no active currency {target!r}"})
    return Rates(target, {code: rate / to_base[target] for code, rate in to_base.items()})


@dataclass
class TerritoryTree:
    """The territory hierarchy, read once per forecast (territories are a small reference table)."""

    parent: dict[int, int | None] = field(default_factory=dict)
    name: dict[int, str] = field(default_factory=dict)

    @classmethod
    def load(cls, uow: UnitOfWork) -> TerritoryTree:
        tree = cls()
        for tid, parent_id, name in uow.session.execute(select(Territory.id, Territory.parent_id, Territory.name)):
            tree.parent[tid] = parent_id
            tree.name[tid] = name
        return tree

    def ancestors_and_self(self, tid: int) -> list[int]:
        chain: list[int] = []
        current: int | None = tid
        while current is not None and current not in chain:  # a cycle would be bad data; stop at it
            chain.append(current)
            current = self.parent.get(current)
        return chain

    def subtree(self, tid: int) -> set[int]:
        return {t for t in self.parent if tid in self.ancestors_and_self(t)}


@dataclass(frozen=True)
class Scope:
    """Whose forecast: the acting user's visible deals (None: the system, everything), narrowed."""

    actor: Actor | None
    owner_id: int | None = None
    territory_id: int | None = None

    def deals(self, uow: UnitOfWork, tree: TerritoryTree) -> Select[Any]:
        stmt = visible_deals(self.actor) if self.actor else select(Deal).where(Deal.deleted_at.is_(None))
        if self.owner_id is not None:
            stmt = stmt.where(Deal.owner_id == self.owner_id)
        if self.territory_id is not None:
            if self.territory_id not in tree.parent:
                raise ValidationFailed({"territory_id": f"no territory with id {self.territory_id}"})
            stmt = stmt.where(Deal.territory_id.in_(sorted(tree.subtree(self.territory_id))))
        return stmt


def keyed(stmt: Select[Any], by: GroupBy | None, columns: Iterable[Any], group_by: Iterable[Any] = ()) -> Select[Any]:
    """`stmt` over deals reduced to (group key, *columns), grouped by the key and `group_by`; the
    key is NULL when not grouping (one group)."""
    group = list(group_by)
    if by is None:
        return stmt.with_only_columns(null().label("group_key"), *columns).group_by(*group)
    if by is GroupBy.TEAM:
        stmt, column = stmt.join(User, User.id == Deal.owner_id), User.team_id
    else:
        column = Deal.owner_id if by is GroupBy.OWNER else Deal.territory_id
    # "+ 0" keeps SQLite from walking the key's index to group (a random read per deal, 5× slower
    # over a million deals than scanning and sorting); PostgreSQL hashes either way.
    key = (column + literal_column("0")).label("group_key")
    return stmt.with_only_columns(key, *columns).group_by(key, *group)


def roll_up(by: GroupBy | None, values: dict[Key, T], tree: TerritoryTree, add: Callable[[T, T], T]) -> dict[Key, T]:
    """By territory, a territory's value includes its descendants'; other groupings are flat."""
    if by is not GroupBy.TERRITORY:
        return values
    rolled: dict[Key, T] = {}
    for key, value in values.items():
        targets: list[Key] = [None] if key is None else list(tree.ancestors_and_self(key))
        for target in targets:
            rolled[target] = add(rolled[target], value) if target in rolled else value
    return rolled


def labels(uow: UnitOfWork, by: GroupBy | None, keys: Iterable[Key], tree: TerritoryTree) -> dict[Key, str]:
    wanted = sorted(k for k in set(keys) if k is not None)
    found: dict[Key, str] = {}
    if by is GroupBy.OWNER and wanted:
        found.update({k: v for k, v in uow.session.execute(select(User.id, User.full_name).where(User.id.in_(wanted)))})
    elif by is GroupBy.TEAM and wanted:
        found.update({k: v for k, v in uow.session.execute(select(Team.id, Team.name).where(Team.id.in_(wanted)))})
    elif by is GroupBy.TERRITORY:
        found.update({k: tree.name.get(k, f"territory {k}") for k in wanted})
    none_label = {None: "All", GroupBy.OWNER: "No owner", GroupBy.TEAM: "No team", GroupBy.TERRITORY: "No territory"}
    found[None] = none_label[by]
    return found
