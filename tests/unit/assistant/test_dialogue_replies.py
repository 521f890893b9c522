from __future__ import annotations

from assistant.dialogue import PAYLOAD_LIKE, TYPED_PAYLOAD, _as_replies
from crm_backend.services.identities import find_code


def test_rasa_messages_become_text_buttons_and_images() -> None:
    rasa = [
        {"recipient_id": "c", "text": "Pick one", "buttons": [{"title": "Help", "payload": "/help"}]},
        {"recipient_id": "c", "image": "http://127.0.0.1/chart.png"},
        {"recipient_id": "c"},
    ]
    assert _as_replies(rasa) == [
        ("Pick one", [("Help", "/help")], None),
        ("", [], "http://127.0.0.1/chart.png"),
    ]


def test_text_in_rasa_payload_syntax_is_recognised_as_typed_not_clicked() -> None:
    assert TYPED_PAYLOAD.match("/affirm")
    assert TYPED_PAYLOAD.match(' /inform{"amount": 1}')
    assert TYPED_PAYLOAD.match('/choose_record{"ordinal":"2"}')
    assert not TYPED_PAYLOAD.match("/ show my deals")
    assert not TYPED_PAYLOAD.match("show my deals")


def test_other_text_loses_leading_slashes_so_rasa_reads_it_as_words() -> None:
    assert PAYLOAD_LIKE.sub("", "/affirm") == "affirm"
    assert PAYLOAD_LIKE.sub("", ' //inform{"amount": 1}') == 'inform{"amount": 1}'
    assert PAYLOAD_LIKE.sub("", "show deals over 50k/month") == "show deals over 50k/month"


def test_link_codes_are_found_in_what_people_send() -> None:
    assert find_code("/start abcd-efgh") == "ABCD-EFGH"
    assert find_code("my code is ABCDEFGH thanks") == "ABCD-EFGH"
    assert find_code("ABCD-EFG1") is None  # 1 is not in the alphabet
    assert find_code("hello there") is None
