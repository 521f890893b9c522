"""Segmentation: k-means finds constructed clusters, names them by their centres, and refuses to
segment too few accounts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from crm_backend.models.accounts import Account
from crm_backend.models.base import utcnow
from crm_backend.signals import segments
from tests.unit.engines.signals.conftest import World


def _rows() -> list[dict[str, Any]]:
    """Three planted groups: big busy healthy customers, small quiet at-risk ones, mid-size prospects."""
    big = [
        {"annual_revenue": 5e8 * (1 + i / 10), "employees": 5000 + 100 * i, "won_amount": 4e5 + i * 1e4,
         "open_pipeline": 2e5, "activity_count": 80 + i, "health_score": 85 + i}
        for i in range(6)
    ]  # fmt: skip
    small = [
        {"annual_revenue": 2e5 * (1 + i / 10), "employees": 5 + i, "won_amount": 1e3 + i * 100,
         "open_pipeline": 0, "activity_count": 1, "health_score": 15 + i}
        for i in range(6)
    ]  # fmt: skip
    middle = [
        {"annual_revenue": 2e7 * (1 + i / 10), "employees": 200 + 10 * i, "won_amount": 0,
         "open_pipeline": 5e4 + i * 1e3, "activity_count": 20 + i, "health_score": 55 + i}
        for i in range(6)
    ]  # fmt: skip
    return big + small + middle


def test_kmeans_finds_the_planted_clusters_and_names_them() -> None:
    result, labels = segments.cluster(_rows())
    assert result.segmented and result.k == 3
    assert len(set(labels[0:6])) == len(set(labels[6:12])) == len(set(labels[12:18])) == 1
    assert len({labels[0], labels[6], labels[12]}) == 3
    assert labels[0] == "large, high won value, healthy"
    assert "small" in labels[6] or "at-risk" in labels[6] or "quiet" in labels[6]
    assert [s.size for s in result.segments] == [6, 6, 6]
    big = next(s for s in result.segments if s.name == labels[0])
    assert big.centroid_z["employees"] > 0.5 and big.centroid_z["health_score"] > 0.5
    again, labels_again = segments.cluster(_rows())
    assert labels_again == labels and again == result  # deterministic


def test_a_given_k_is_used_and_too_few_accounts_are_not_segmented() -> None:
    result, labels = segments.cluster(_rows(), k=2)
    assert result.segmented and result.k == 2 and len(set(labels)) == 2
    few, none = segments.cluster(_rows()[:5], k=2)
    assert not few.segmented and none == []
    assert few.reason == "5 accounts are too few for 2 segments (need at least 6)"
    tiny, _ = segments.cluster(_rows()[:4])
    assert not tiny.segmented and "too few" in (tiny.reason or "")


def _add_accounts(world: World) -> None:
    for i, row in enumerate(_rows()):
        world.create(
            "alice",
            "accounts",
            {
                "name": f"Planted {i}",
                "annual_revenue": str(Decimal(str(row["annual_revenue"])).quantize(Decimal(1))),
                "employees": row["employees"],
            },
        )


def test_segment_stores_each_accounts_segment_with_its_centre(world: World) -> None:
    _add_accounts(world)
    now = utcnow()
    with world.as_user(None) as uow:
        result = segments.segment(uow, now, k=3)
    assert result.segmented and result.accounts == 26
    with world.as_user(None) as uow:
        accounts = list(uow.session.scalars(select(Account).order_by(Account.id)))
        assert all(a.segment for a in accounts)
        planted = [a for a in accounts if a.name.startswith("Planted")]
        assert planted[0].segment == planted[5].segment != planted[6].segment
        info = planted[0].health_explanation["segment"]
        assert info["name"] == planted[0].segment and info["k"] == 3
        assert set(info["centroid_z"]) == set(segments.FEATURES)
        assert info["computed_at"] == now.isoformat()
    with world.as_user("alice") as uow:
        listed = segments.list_segments(uow)
    assert sum(s["size"] for s in listed) == 3 + 18  # alice sees her 3 demo accounts and the planted ones
    assert all(s["description"] for s in listed)


def test_too_few_accounts_changes_nothing(world: World) -> None:
    with world.as_user(None) as uow:
        result = segments.segment(uow, utcnow() + dt.timedelta(seconds=1), k=3)
    assert not result.segmented and result.reason == "8 accounts are too few for 3 segments (need at least 9)"
    with world.as_user(None) as uow:
        assert not any(a.segment for a in uow.session.scalars(select(Account)))
