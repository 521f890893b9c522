"""The CRM words a recogniser should expect: record names the speaking user may see, turned into short phrases.

The gateway passes the names of the accounts, contacts and deals a user can see; these become
Whisper hotwords and Vosk grammar phrases, so "Nimbus" and "Globex" are heard as names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

MAX_PHRASES = 100
_SPACES = re.compile(r"\s+")
# Company suffixes nobody says when talking about an account.
_LEGAL_SUFFIXES = frozenset({"inc", "inc.", "ltd", "ltd.", "llc", "gmbh", "plc", "corp", "corp.", "co", "co."})

# Words reps use with the CRM, for Vosk grammar mode: a Vosk grammar is the whole language the
# recogniser may output, so record names alone would turn every other word into "[unk]".
_COMMAND_TEXT = """
    a an the and or but to of for with at in on by from about into up off out over this that these those
    i me my we us our you your he she it they them his her its their him who what which when where why how
    is are was were be been am do does did have has had will would can could should shall may might must
    not no yes yeah okay ok please thanks thank hi hello hey sorry cancel stop undo never mind that's it's
    what's i'm i've she's he's they're don't didn't can't won't let's there here all any some every each
    one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen
    eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million
    first second third fourth fifth sixth seventh eighth ninth tenth percent dollars euros pounds k
    monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday tonight morning
    afternoon evening noon week weeks month months quarter year next last end day days hour hours minute
    minutes o'clock am pm january february march april may june july august september october november december
    show list find get give tell open close closed won lost move update change set add create new make log
    record note call called email emailed meeting met meet book schedule remind reminder task tasks follow
    send sent wants want needs need asked said agreed signed proposal contract quote demo renewal pricing
    budget approved discount deal deals account accounts contact contacts lead leads opportunity pipeline
    forecast stage prospecting qualification negotiation won lost amount value probability close date
    agenda day calendar overdue due priority high low urgent status score hot cold convert qualify
    phone number owner team territory summary overview details latest news signals activity activities
"""
COMMAND_WORDS: tuple[str, ...] = tuple(dict.fromkeys(_COMMAND_TEXT.split()))


def spoken_name(name: str) -> str:
    """The part of a record name people say: "Acme - Fleet telematics" → "Acme", "Hooli Inc." → "Hooli"."""
    head = name.split(" - ", 1)[0].split(" — ", 1)[0].split(" | ", 1)[0]
    head = _SPACES.sub(" ", head.replace(",", " ")).strip()
    words = head.split(" ")
    while len(words) > 1 and words[-1].lower() in _LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def hotword_phrases(names: Iterable[str], limit: int = MAX_PHRASES) -> list[str]:
    """Record names as recogniser phrases: the spoken part of each, without duplicates (any case), at most `limit`.

    Earlier names win when the list is cut, so callers put the user's own and most recent records first.
    """
    phrases: list[str] = []
    seen: set[str] = set()
    for name in names:
        phrase = spoken_name(name)
        key = phrase.casefold()
        if not phrase or key in seen:
            continue
        seen.add(key)
        phrases.append(phrase)
        if len(phrases) >= limit:
            break
    return phrases


def grammar_phrases(vocabulary: Sequence[str], words: Iterable[str] = COMMAND_WORDS) -> list[str]:
    """A Vosk grammar: the CRM phrases plus the command words, lower-cased and de-duplicated, ending in "[unk]"."""
    out: list[str] = []
    seen: set[str] = set()
    for phrase in [*vocabulary, *words]:
        key = _SPACES.sub(" ", phrase).strip().lower()
        if key and key not in seen:
            seen.add(key)
            out.append(key)
    return [*out, "[unk]"]
