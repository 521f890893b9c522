"""Replies read aloud: each case is a reply the assistant really writes and the sentence the voice must say."""

from __future__ import annotations

import re
from datetime import date

import pytest

from assistant.messages import Button, Reply
from voice.spoken import for_speech

TODAY = date(2026, 11, 26)  # a Thursday
YES_NO = (Button("Yes", "k-yes", "/affirm"), Button("No", "k-no", "/deny"))


def choices(*titles: str) -> tuple[Button, ...]:
    return tuple(Button(title, f"k{n}") for n, title in enumerate(titles))


DEAL_LIST = (
    "You have 12 open deals ($1,250,000):\n"
    "1. Nimbus Pilot (Nimbus Labs): Negotiation, $48,000, 50%, closes 4 Dec 2026\n"
    "2. Globex Renewal (Globex): Proposal, $120,000, 60%, closes 7 Dec 2026\n"
    "3. Initech Seats (Initech): Qualification, $5,000.50, 10%, closes 27 Nov 2026\n"
    "4. Acme Expansion (Acme): Prospecting, $1, 5%, closes 2 Jan 2027\n"
    "…and 8 more, closing later."
)

CASES: list[tuple[str, list[Reply], str]] = [
    # --- money
    (
        "dollars",
        [Reply("The Nimbus Pilot deal is worth $48,000.")],
        "The Nimbus Pilot deal is worth forty-eight thousand dollars.",
    ),
    ("euros and cents", [Reply("Budget: €18,500.50")], "Budget: eighteen thousand five hundred euros and fifty cents."),
    ("currency code", [Reply("CHF 1,200 is still open.")], "One thousand two hundred Swiss francs is still open."),
    ("pounds and pence", [Reply("Expenses: £12.50")], "Expenses: twelve pounds and fifty pence."),
    ("yen", [Reply("Licence: ¥1,200")], "Licence: one thousand two hundred yen."),
    ("one dollar", [Reply("Won for $1.")], "Won for one dollar."),
    ("cents only", [Reply("Fee: $0.99")], "Fee: ninety-nine cents."),
    ("millions", [Reply("Pipeline: $1,250,000")], "Pipeline: one million two hundred fifty thousand dollars."),
    ("k suffix", [Reply("Make it $60k?", YES_NO)], "Make it sixty thousand dollars? Say yes or no."),
    ("amount then code", [Reply("Amount 48000 USD")], "Amount forty-eight thousand dollars."),
    (
        "signed change",
        [Reply("Change: −$5,000 (−3.2%)")],
        "Change: minus five thousand dollars, minus three point two percent.",
    ),
    (
        "money range",
        [Reply("Weighted pipeline: $96,100 (80% range $11,187–$181,013, 2 deals).")],
        "Weighted pipeline: ninety-six thousand one hundred dollars, eighty percent range eleven thousand one hundred "
        "eighty-seven dollars to one hundred eighty-one thousand thirteen dollars, two deals.",
    ),
    (
        "amount change arrow",
        [Reply("Move “Nimbus Pilot” from Proposal to Negotiation, amount $40,000 → $48,000?", YES_NO)],
        "Move Nimbus Pilot from Proposal to Negotiation, amount forty thousand dollars to forty-eight thousand "
        "dollars? "
        "Say yes or no.",
    ),
    # --- dates and times
    ("iso date this year", [Reply("Closes 2026-12-04.")], "Closes Friday, December fourth."),
    ("iso date next year", [Reply("Closes 2027-01-15.")], "Closes Friday, January fifteenth, twenty twenty-seven."),
    ("day month year", [Reply("Close date: 7 Dec 2026")], "Close date: Monday, December seventh."),
    ("weekday day month", [Reply("Due Fri 4 Dec")], "Due Friday, December fourth."),
    ("month day", [Reply("Call back on Dec 4")], "Call back on December fourth."),
    ("date with time", [Reply("Due Fri 4 Dec, 10:00")], "Due Friday, December fourth, at ten a.m."),
    (
        "meeting slot",
        [Reply("Book “Demo” on Tue 1 Dec, 15:00–15:30?", YES_NO)],
        "Book Demo on Tuesday, December first, from three to three thirty p.m.? Say yes or no.",
    ),
    ("today", [Reply("Book it on Thu 26 Nov 15:00")], "Book it today at three p.m."),
    (
        "tomorrow",
        [Reply("Add the task “Send proposal” on Nimbus Labs, due Fri 27 Nov, 10:00, and remind you then?", YES_NO)],
        "Add the task Send proposal on Nimbus Labs, due tomorrow at ten a.m., and remind you then? Say yes or no.",
    ),
    ("yesterday", [Reply("Last touched 2026-11-25.")], "Last touched yesterday."),
    (
        "times of day",
        [Reply("Free at 00:00, 12:00, 09:05 and 23:59.")],
        "Free at midnight, noon, nine oh five a.m. and eleven fifty-nine p.m.",
    ),
    (
        "week range",
        [Reply("Your agenda for Mon 30 Nov – Sun 6 Dec:")],
        "Your agenda for Monday, November thirtieth to Sunday, December sixth.",
    ),
    (
        "quarter",
        [Reply("Team forecast for Q3 2026, $96,100.")],
        "Team forecast for Q three twenty twenty-six, ninety-six thousand one hundred dollars.",
    ),
    (
        "month and year",
        [Reply("Actually won in March 2026: $12,000.")],
        "Actually won in March twenty twenty-six: twelve thousand dollars.",
    ),
    ("not a date", [Reply("Closes 30 Feb 2026.")], "Closes thirty Feb twenty twenty-six."),
    # --- percentages, counts, units
    (
        "percent with space",
        [Reply("Win probability 50 %, up from 35%.")],
        "Win probability fifty percent, up from thirty-five percent.",
    ),
    (
        "decimal percent",
        [Reply("MAPE 12.3% over 3.5 quarters.")],
        "MAPE twelve point three percent over three point five quarters.",
    ),
    (
        "score out of",
        [Reply("Health 35/100, high churn risk (82%).")],
        "Health thirty-five out of one hundred, high churn risk, eighty-two percent.",
    ),
    (
        "minutes ago",
        [Reply("New lead from web form: “need 50 seats” — 5 min ago")],
        "New lead from web form: need fifty seats, five minutes ago.",
    ),
    ("ordinal and hash", [Reply("Deal #42 is 3rd in the list.")], "Deal number forty-two is third in the list."),
    ("big count", [Reply("1,234 leads imported.")], "One thousand two hundred thirty-four leads imported."),
    # --- phones, emails, links
    (
        "contact card",
        [Reply("Dana Smith, VP Operations (Decision Maker) · dana.smith@nimbus.io · +1 555 0100")],
        "Dana Smith, VP Operations, Decision Maker, dana dot smith at nimbus dot io, plus one, five five five, "
        "zero one zero zero.",
    ),
    (
        "two phones",
        [Reply("Dana's phone: +1 (555) 010-0100 / 555-0199.")],
        "Dana's phone: plus one, five five five, zero one zero, zero one zero zero or five five five, zero one nine "
        "nine.",
    ),
    (
        "link",
        [Reply("See https://crm.example.com/deals/12 for details, e.g. the history.")],
        "See a link for details, for example the history.",
    ),
    # --- markdown and punctuation
    (
        "markdown bullets",
        [Reply("- **Budget** approved\n- Next step: _send_ the `proposal`\n- Call back on Dec 4")],
        "Budget approved. Next step: send the proposal. Call back on December fourth.",
    ),
    ("heading", [Reply("## Summary\nAll caught up.")], "Summary. All caught up."),
    (
        "quotes and dash",
        [Reply("Create deal “Acme - New deal” with Acme & Co?", YES_NO)],
        "Create deal Acme, New deal with Acme and Co? Say yes or no.",
    ),
    (
        "parentheses and brackets",
        [Reply("Signals (4, newest first):\n1. Funding round [Globex] (growth, 80% sure, 20 Nov 2026)")],
        "Signals, four, newest first. One: Funding round, Globex, growth, eighty percent sure, Friday, November "
        "twentieth.",
    ),
    (
        "versus",
        [Reply("Forecast vs last quarter: +12.5%")],
        "Forecast versus last quarter: plus twelve point five percent.",
    ),
    # --- lists
    (
        "deal list cut to three",
        [Reply(DEAL_LIST)],
        "You have twelve open deals, one million two hundred fifty thousand dollars. "
        "One: Nimbus Pilot, Nimbus Labs: Negotiation, forty-eight thousand dollars, fifty percent, closes Friday, "
        "December fourth. "
        "Two: Globex Renewal, Globex: Proposal, one hundred twenty thousand dollars, sixty percent, closes Monday, "
        "December seventh. "
        "Three: Initech Seats, Initech: Qualification, five thousand dollars and fifty cents, ten percent, closes "
        "tomorrow. "
        "And nine more, closing later.",
    ),
    (
        "bullets cut to three",
        [Reply("Reminders:\n- Call Dana\n- Send deck\n- Ping Raj\n- Update the forecast\n- Book travel")],
        "Reminders. Call Dana. Send deck. Ping Raj. And two more.",
    ),
    (
        "agenda",
        [
            Reply(
                "Your agenda today (Thu 26 Nov):\n1. 10:00–10:30 Call: Call Dana (Nimbus Labs)\n2. 14:00 Meeting: "
                "Demo — high priority"
            )
        ],
        "Your agenda today, Thursday, November twenty-sixth. One: from ten to ten thirty a.m. Call: Call Dana, "
        "Nimbus Labs. "
        "Two: two p.m. Meeting: Demo, high priority.",
    ),
    (
        "table rows",
        [
            Reply(
                "Your deals:",
                rows=(
                    ("Nimbus Pilot", "Negotiation", "$48,000"),
                    ("Globex", "", "$120,000"),
                    ("Initech", "Won", "$1"),
                    ("Acme", "Lost", "$2"),
                ),
            )
        ],
        "Your deals. Nimbus Pilot, Negotiation, forty-eight thousand dollars. Globex, one hundred twenty thousand "
        "dollars. "
        "Initech, Won, one dollar. And one more.",
    ),
    # --- buttons
    (
        "log call read-back",
        [Reply("Log a call on Nimbus Labs with Dana Smith: “she wants a proposal by Friday”?", YES_NO)],
        "Log a call on Nimbus Labs with Dana Smith: she wants a proposal by Friday? Say yes or no.",
    ),
    ("buttons only", [Reply("", YES_NO)], "Say yes or no."),
    (
        "yes no and more",
        [Reply("Merge them?", (*YES_NO, Button("Create anyway", "k3")))],
        "Merge them? Say yes, no or Create anyway.",
    ),
    (
        "record choice",
        [
            Reply(
                "I found 3 contacts matching “Dana”. Which one do you mean?\n"
                "1. Dana Smith (Nimbus Labs)\n2. Dana Lee (Globex)\n3. Dana Wu (Initech)",
                choices("Dana Smith (Nimbus Labs)", "Dana Lee (Globex)", "Dana Wu (Initech)"),
            )
        ],
        "I found three contacts matching Dana. Which one do you mean? One: Dana Smith, Nimbus Labs. Two: Dana Lee, "
        "Globex. "
        "Three: Dana Wu, Initech. Say one, two or three.",
    ),
    (
        "choice of five is read in full",
        [Reply("Which one?\n1. A\n2. B\n3. C\n4. D\n5. E", choices("A", "B", "C", "D", "E"))],
        "Which one? One: A. Two: B. Three: C. Four: D. Five: E. Say one, two, three, four or five.",
    ),
    (
        "fallback suggestions",
        [
            Reply(
                "Sorry, I'm not sure I got that. Did you mean one of these?",
                choices("Show my open deals", "My day", "Something else"),
            )
        ],
        "Sorry, I'm not sure I got that. Did you mean one of these? Say Show my open deals, My day or Something else.",
    ),
    (
        "create offer",
        [
            Reply(
                "I can't find a contact called “Dana Wu” that you can see. Shall I create it?",
                choices("Create contact “Dana Wu”"),
            )
        ],
        "I can't find a contact called Dana Wu that you can see. Shall I create it? Say Create contact Dana Wu.",
    ),
    # --- several replies
    ("two replies", [Reply("Logged."), Reply("Anything else?")], "Logged. Anything else?"),
    ("no replies", [], ""),
]


@pytest.mark.parametrize(("replies", "spoken"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_reply_is_spoken_as_a_person_would_say_it(replies: list[Reply], spoken: str) -> None:
    assert for_speech(replies, today=TODAY) == spoken


@pytest.mark.parametrize("replies", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_no_digits_symbols_or_markdown_reach_the_voice(replies: list[Reply]) -> None:
    said = for_speech(replies, today=TODAY)
    assert not re.search(r"[0-9$€£¥%*#_`~|<>\[\]()“”\"→·•…@/&+]", said), said


def test_same_replies_and_day_always_give_the_same_sentence() -> None:
    replies = [Reply(DEAL_LIST), Reply("Move it?", YES_NO)]
    assert for_speech(replies, today=TODAY) == for_speech(list(replies), today=TODAY)


def test_the_year_is_said_only_outside_the_current_year() -> None:
    replies = [Reply("Closes 7 Dec 2026.")]
    assert for_speech(replies, today=date(2026, 1, 5)) == "Closes Monday, December seventh."
    assert for_speech(replies, today=date(2027, 1, 5)) == "Closes Monday, December seventh, twenty twenty-six."


def test_a_date_without_a_year_is_taken_as_the_nearest_one() -> None:
    # "Fri 1 Jan" said on 30 December 2026 is New Year's Day 2027, two days away: not "today"/"tomorrow", no year.
    assert for_speech([Reply("Due Fri 1 Jan at 09:00")], today=date(2026, 12, 30)) == (
        "Due Friday, January first, at nine a.m."
    )
    assert for_speech([Reply("Due Thu 31 Dec")], today=date(2026, 12, 30)) == "Due tomorrow."


def test_without_today_the_current_date_is_used() -> None:
    said = for_speech([Reply("Closed 1999-12-04, $48,000.")])
    assert said == "Closed Saturday, December fourth, nineteen ninety-nine, forty-eight thousand dollars."
