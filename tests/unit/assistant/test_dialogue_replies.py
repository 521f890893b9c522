from __future__ import annotations

from assistant.gateway import as_replies


def test_rasa_messages_become_text_and_buttons() -> None:
    rasa = [
        {"recipient_id": "c", "text": "Pick one", "buttons": [{"title": "Help", "payload": "/help"}]},
        {"recipient_id": "c", "image": "http://127.0.0.1/chart.png"},
        {"recipient_id": "c"},
    ]
    assert as_replies(rasa) == [
        {"text": "Pick one", "buttons": [{"title": "Help", "payload": "/help"}]},
        {"text": "", "buttons": [], "image": "http://127.0.0.1/chart.png"},
    ]
