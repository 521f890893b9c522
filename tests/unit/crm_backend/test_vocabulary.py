"""The speech vocabulary: names of records the speaking user may see."""

from __future__ import annotations

from crm_backend.services.vocabulary import record_names
from tests.conftest import Demo


def test_the_speech_vocabulary_holds_only_names_the_user_may_see(demo: Demo) -> None:
    with demo.store.unit_of_work(actor=demo.actor("alice"), read_only=True) as uow:
        alices = record_names(uow)
    with demo.store.unit_of_work(actor=demo.actor("carlos"), read_only=True) as uow:
        carlos = record_names(uow)
    assert "Nimbus Labs" in alices and "Nimbus Labs" not in carlos
    assert len(alices) == len({n.lower() for n in alices})
