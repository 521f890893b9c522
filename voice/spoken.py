"""Assistant replies rewritten as sentences a voice can read: amounts, dates, phones and lists said as people say them.

Chat replies are written for eyes ("$48,000", "Fri 4 Dec, 10:00", "1. …", buttons); espeak-ng reads symbols and
digits literally, so the voice channel passes every reply through `for_speech` before synthesis. Pure and
deterministic: the same replies and `today` always give the same sentence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal

from num2words import num2words  # type: ignore[import-untyped]

from assistant.messages import Button, Reply

LIST_LIMIT = 3  # a listener keeps about three items in mind; the rest become "and N more"
CHOICE_LIMIT = 5  # a choice between records is read in full (the chat offers at most five)

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# ISO code → (one, many, one hundredth, many hundredths); "" = no minor unit worth saying.
CURRENCIES: dict[str, tuple[str, str, str, str]] = {
    "USD": ("dollar", "dollars", "cent", "cents"),
    "EUR": ("euro", "euros", "cent", "cents"),
    "GBP": ("pound", "pounds", "penny", "pence"),
    "JPY": ("yen", "yen", "", ""),
    "CHF": ("Swiss franc", "Swiss francs", "centime", "centimes"),
    "CAD": ("Canadian dollar", "Canadian dollars", "cent", "cents"),
    "AUD": ("Australian dollar", "Australian dollars", "cent", "cents"),
    "NZD": ("New Zealand dollar", "New Zealand dollars", "cent", "cents"),
    "SGD": ("Singapore dollar", "Singapore dollars", "cent", "cents"),
    "HKD": ("Hong Kong dollar", "Hong Kong dollars", "cent", "cents"),
    "SEK": ("Swedish krona", "Swedish kronor", "ore", "ore"),
    "NOK": ("Norwegian krone", "Norwegian kroner", "ore", "ore"),
    "DKK": ("Danish krone", "Danish kroner", "ore", "ore"),
    "PLN": ("zloty", "zlotys", "grosz", "groszy"),
    "INR": ("rupee", "rupees", "paisa", "paise"),
    "CNY": ("yuan", "yuan", "fen", "fen"),
    "MXN": ("Mexican peso", "Mexican pesos", "centavo", "centavos"),
    "BRL": ("Brazilian real", "Brazilian reais", "centavo", "centavos"),
    "ZAR": ("rand", "rand", "cent", "cents"),
}
SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
SCALES = {"k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000, "bn": 1_000_000_000}

_WEEKDAY_KEYS = {name[:3].lower(): n for n, name in enumerate(WEEKDAY_NAMES)}
_MONTH_KEYS = {name[:3].lower(): n for n, name in enumerate(MONTH_NAMES, start=1)}

# --- patterns ----------------------------------------------------------------------------------------------
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_WD = r"(?P<wd>Mon(?:day)?|Tue(?:s|sday)?|Wed(?:nesday)?|Thu(?:r|rs|rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)"
_MON = (
    r"(?P<mon>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t|tember)?"
    r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_CLOCK = r"(?P<{h}>[01]?\d|2[0-3]):(?P<{m}>[0-5]\d)"
_TIME_TAIL = (
    r"(?:(?:T|,?\s+(?:at\s+)?)" + _CLOCK.format(h="h1", m="m1") + r"(?::\d{2})?"
    r"(?:\s*[–-]\s*" + _CLOCK.format(h="h2", m="m2") + r")?(?!\d))?"
)
ISO_DATE = re.compile(r"\b(?P<year>\d{4})-(?P<mon>\d{2})-(?P<day>\d{2})(?!\d)" + _TIME_TAIL)
DAY_FIRST = re.compile(
    rf"\b(?:{_WD}\.?,?\s+)?(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+{_MON}\.?(?:,?\s+(?P<year>\d{{4}})(?!\d))?\b"
    + _TIME_TAIL
)
MONTH_FIRST = re.compile(
    rf"\b(?:{_WD}\.?,?\s+)?{_MON}\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<year>\d{{4}})(?!\d))?"
    + _TIME_TAIL
)
RELATIVE_THEN_DATE = re.compile(r"\b(?P<word>today|tomorrow|yesterday)\s*\((?P<date>[^()]*)\)", re.IGNORECASE)
ON_RELATIVE = re.compile(r"\bon (today|tomorrow|yesterday)\b")
CLOCK = re.compile(
    r"(?<![\d:])" + _CLOCK.format(h="h1", m="m1") + r"(?:\s*[–-]\s*" + _CLOCK.format(h="h2", m="m2") + r")?(?![\d:])"
)
_CODES = "|".join(CURRENCIES)
SYMBOL_MONEY = re.compile(
    rf"(?:(?<![\w.])(?P<sign>[+\-−]))?(?P<sym>[$€£¥])\s?(?P<num>{_NUM})(?P<scale>bn|[kKmM])?(?![\w])"
)
CODE_MONEY = re.compile(
    rf"(?:(?<![\w.])(?P<sign>[+\-−]))?\b(?P<code>{_CODES})\s?(?P<num>{_NUM})(?P<scale>bn|[kKmM])?(?![\w])"
)
MONEY_CODE = re.compile(rf"(?<![\w.,])(?P<num>{_NUM})(?P<scale>bn|[kKmM])?\s?(?P<code>{_CODES})\b")
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,5}(?:[\s.-]\d{2,5}){1,4}(?![\w]|[.,]\d)"
)
PERCENT = re.compile(rf"(?:(?<![\w.])(?P<sign>[+\-−±]))?(?P<num>{_NUM})\s?%")
QUARTER = re.compile(r"\bQ([1-4])\b")
MINUTES = re.compile(r"\b(\d+)\s?mins?\b")
HOURS = re.compile(r"\b(\d+)\s?(?:h|hrs?)\b")
OUT_OF = re.compile(r"\b(\d+)\s?/\s?(\d+)\b")
ORDINAL = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b")
HASH_NUMBER = re.compile(r"#\s?(\d+)")
NUMBER_RANGE = re.compile(rf"(?<=\d)\s?[-–]\s?(?={_NUM})")
SIGNED = re.compile(rf"(?<![\w.])(?P<sign>[+\-−±])(?P<num>{_NUM})\b")
YEAR = re.compile(r"(?<![\d,.])\b(?P<year>1[2-9]\d\d|20\d\d)\b(?![,.]\d)")
NUMBER = re.compile(rf"(?<![\w.,]){_NUM}(?![\w])")
URL = re.compile(r"\bhttps?://[^\s)>\]]+")
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
MD_LINK = re.compile(r"\[([^\]]+)\]\((?:https?://)?[^)]*\)")
MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`|~~)(?=\S)(.+?)(?<=\S)\1")
WORD_SLASH = re.compile(r"(?<=[A-Za-z])\s?/\s?(?=[A-Za-z])")
PARENTHESIS = re.compile(r"\s*\(([^()]*)\)")

NUMBERED_ITEM = re.compile(r"^\s*(?P<n>\d{1,2})[.)]\s+(?P<text>\S.*)$")
BULLET_ITEM = re.compile(r"^\s*[-*•·‣◦]\s+(?P<text>\S.*)$")
MORE_LINE = re.compile(r"^\s*(?:…|\.\.\.)?\s*and\s+(?P<n>\d+)\s+more\b(?P<tail>.*)$", re.IGNORECASE)

ABBREVIATIONS = (
    (re.compile(r"\be\.g\.", re.IGNORECASE), "for example"),
    (re.compile(r"\bi\.e\.", re.IGNORECASE), "that is"),
    (re.compile(r"\betc\.", re.IGNORECASE), "et cetera"),
    (re.compile(r"\bvs\.?(?=\s)", re.IGNORECASE), "versus"),
    (re.compile(r"\bapprox\.", re.IGNORECASE), "about"),
    (re.compile(r"\bN/A\b"), "not available"),
    (re.compile(r"\bw/(?=\s)"), "with"),
)
SYMBOL_WORDS = (
    ("→", " to "),
    ("->", " to "),
    ("=>", " to "),
    ("–", " to "),  # en dash between things left after dates and amounts: a range
    ("—", ", "),
    (" - ", ", "),
    ("·", ", "),
    ("•", ", "),
    ("&", " and "),
    ("+", " plus "),
    ("%", " percent"),
    ("@", " at "),
    ("…", " "),
    ("...", " "),
)
QUOTES = re.compile(r"[“”„\"«»]|(?<![A-Za-z])[‘’']|[‘’'](?![A-Za-z])")
STRAY = re.compile(r"[*_`~|<>^={}\\#]")


# --- numbers ---------------------------------------------------------------------------------------------
def cardinal(n: int) -> str:
    """'one hundred twelve thousand': US English, without num2words' British "and" and its commas."""
    words = str(num2words(abs(n))).replace(",", "").replace(" and ", " ")
    return f"minus {words}" if n < 0 else words


def ordinal(n: int) -> str:
    """'fourth', 'twenty-first'."""
    return str(num2words(n, to="ordinal")).replace(",", "").replace(" and ", " ")


def year_words(n: int) -> str:
    """'twenty twenty-six', 'two thousand nine'."""
    return str(num2words(n, to="year")).replace(",", "").replace(" and ", " ")


def number_words(text: str) -> str:
    """'48,000' → 'forty-eight thousand'; '12.5' → 'twelve point five' (the decimals digit by digit)."""
    whole, _, fraction = text.replace(",", "").partition(".")
    words = cardinal(int(whole))
    return f"{words} point {' '.join(DIGITS[int(d)] for d in fraction)}" if fraction else words


def digits_words(text: str) -> str:
    return " ".join(DIGITS[int(d)] for d in text if d.isdigit())


def _sign_word(sign: str | None) -> str:
    return {"+": "plus ", "-": "minus ", "−": "minus ", "±": "plus or minus "}.get(sign or "", "")


# --- amounts -----------------------------------------------------------------------------------------------
def money_words(number: str, code: str, scale: str | None = None) -> str:
    """'18,500.50' EUR → 'eighteen thousand five hundred euros and fifty cents'."""
    one, many, hundredth, hundredths = CURRENCIES[code]
    amount = Decimal(number.replace(",", "")) * SCALES.get(scale or "", 1)
    if amount != amount.to_integral_value() and not hundredth:
        return f"{number_words(format(amount.normalize(), 'f'))} {many}"  # "1.5 yen" is rare; say it plainly
    whole = int(amount)
    cents = int(((amount - whole) * 100).to_integral_value())
    if amount != amount.quantize(Decimal("0.01")):  # more than two decimals: not a price, say the number
        return f"{number_words(format(amount.normalize(), 'f'))} {many}"
    major = f"{cardinal(whole)} {one if whole == 1 else many}"
    if not cents:
        return major
    minor = f"{cardinal(cents)} {hundredth if cents == 1 else hundredths}"
    return minor if whole == 0 else f"{major} and {minor}"


def _money(match: re.Match[str]) -> str:
    groups = match.groupdict()
    code = SYMBOLS[groups["sym"]] if groups.get("sym") else groups["code"]
    return _sign_word(groups.get("sign")) + money_words(groups["num"], code, groups.get("scale"))


# --- dates and times ---------------------------------------------------------------------------------------
def time_words(hour: int, minute: int) -> tuple[str, str]:
    """(words, 'a.m.'/'p.m.'/''): 15:30 → ('three thirty', 'p.m.'); 12:00 → ('noon', '')."""
    if minute == 0 and hour in (0, 12):
        return ("midnight" if hour == 0 else "noon"), ""
    words = cardinal(hour % 12 or 12)
    if minute:
        words += f" oh {cardinal(minute)}" if minute < 10 else f" {cardinal(minute)}"
    return words, "a.m." if hour < 12 else "p.m."


def _clock(match: re.Match[str], lead: str = "") -> str:
    """'ten a.m.' or 'from three to three thirty p.m.' ('at'/'from' only when `lead` asks for them)."""
    start, start_half = time_words(int(match["h1"]), int(match["m1"]))
    if match["h2"] is None:
        return f"{lead}{'at ' if lead else ''}{start} {start_half}".rstrip()
    end, end_half = time_words(int(match["h2"]), int(match["m2"]))
    if start_half == end_half and start_half:
        return f"{lead}from {start} to {end} {end_half}"
    return f"{lead}from {f'{start} {start_half}'.strip()} to {f'{end} {end_half}'.strip()}"


@dataclass(frozen=True, slots=True)
class _Day:
    """A date as written: the day and month always, the weekday and year when the text had them."""

    day: int
    month: int
    year: int | None = None
    weekday: int | None = None

    def resolved(self, today: date) -> date | None:
        """The calendar date meant: the written year, else the nearest year (matching a written weekday)."""
        years = [self.year] if self.year is not None else [today.year - 1, today.year, today.year + 1]
        candidates = []
        for year in years:
            try:
                candidates.append(date(year, self.month, self.day))
            except ValueError:
                continue
        if self.weekday is not None and self.year is None:
            candidates = [d for d in candidates if d.weekday() == self.weekday] or candidates
        return min(candidates, key=lambda d: abs((d - today).days)) if candidates else None

    def words(self, today: date, relative: bool) -> str | None:
        """'Friday, December fourth' (+ ', twenty twenty-seven' in another year), or 'today'/'tomorrow'."""
        actual = self.resolved(today)
        if actual is None:
            return None  # "30 Feb": not a date, leave the text alone
        if relative:
            near = {0: "today", 1: "tomorrow", -1: "yesterday"}.get((actual - today).days)
            if near:
                return near
        weekday = self.weekday
        if weekday is None and self.year is not None:
            weekday = actual.weekday()
        text = f"{MONTH_NAMES[self.month - 1]} {ordinal(self.day)}"
        if weekday is not None:
            text = f"{WEEKDAY_NAMES[weekday]}, {text}"
        if self.year is not None and self.year != today.year:
            text += f", {year_words(self.year)}"
        return text


def _date_substitution(today: date, relative: bool, iso: bool = False) -> Callable[[re.Match[str]], str]:
    def substitute(match: re.Match[str]) -> str:
        groups = match.groupdict()
        month = int(groups["mon"]) if iso else _MONTH_KEYS[groups["mon"][:3].lower()]
        if not 1 <= month <= 12:
            return match[0]
        weekday = _WEEKDAY_KEYS[groups["wd"][:3].lower()] if groups.get("wd") else None
        year = int(groups["year"]) if groups.get("year") else None
        said = _Day(int(groups["day"]), month, year, weekday).words(today, relative)
        if said is None:
            return match[0]
        if groups.get("h1") is None:
            return said
        return said + _clock(match, lead=" " if said in ("today", "tomorrow", "yesterday") else ", ")

    return substitute


def _dates(text: str, today: date, relative: bool = True) -> str:
    text = ISO_DATE.sub(_date_substitution(today, relative, iso=True), text)
    text = DAY_FIRST.sub(_date_substitution(today, relative), text)
    return MONTH_FIRST.sub(_date_substitution(today, relative), text)


def _relative_then_date(today: date) -> Callable[[re.Match[str]], str]:
    """'today (Thu 26 Nov)' → 'today, Thursday, November twenty-sixth' (not 'today, today')."""

    def substitute(match: re.Match[str]) -> str:
        return f"{match['word']}, {_dates(match['date'], today, relative=False)}"

    return substitute


# --- the rest of a line ------------------------------------------------------------------------------------
def _phone(match: re.Match[str]) -> str:
    raw = match[0]
    digit_count = sum(c.isdigit() for c in raw)
    if digit_count < 7 and not (raw.startswith("+") and digit_count >= 5):
        return raw
    groups = [g for g in re.split(r"[\s.()-]+", raw.lstrip("+")) if g]
    said = ", ".join(digits_words(g) for g in groups)
    return f"plus {said}" if raw.startswith("+") else said


def _email(match: re.Match[str]) -> str:
    local, _, domain = match[0].partition("@")
    names = {".": " dot ", "_": " underscore ", "-": " dash ", "+": " plus "}
    local = re.sub(r"[._+-]", lambda m: names[m[0]], local)
    return f"{local} at {domain.replace('.', ' dot ')}"


def _plural(n: int, one: str, many: str) -> str:
    return f"{cardinal(n)} {one if n == 1 else many}"


def say(text: str, today: date, *, relative: bool = True) -> str:
    """One line of a reply as words: the substitutions run from the most specific shape to the least."""
    text = URL.sub("a link", text)
    text = EMAIL.sub(_email, text)
    text = MD_LINK.sub(r"\1", text)
    text = re.sub(r"^\s*(?:#{1,6}|>)\s+", "", text)
    for _ in range(2):  # nested emphasis: **_word_**
        text = MD_EMPHASIS.sub(r"\2", text)
    for pattern, words in ABBREVIATIONS:
        text = pattern.sub(words, text)
    text = RELATIVE_THEN_DATE.sub(_relative_then_date(today), text)
    text = _dates(text, today, relative)
    text = ON_RELATIVE.sub(r"\1", text)
    text = CLOCK.sub(_clock, text)
    text = SYMBOL_MONEY.sub(_money, text)
    text = CODE_MONEY.sub(_money, text)
    text = MONEY_CODE.sub(_money, text)
    text = PHONE.sub(_phone, text)
    text = PERCENT.sub(lambda m: f"{_sign_word(m['sign'])}{number_words(m['num'])} percent", text)
    text = QUARTER.sub(lambda m: f"Q {cardinal(int(m[1]))}", text)
    text = MINUTES.sub(lambda m: _plural(int(m[1]), "minute", "minutes"), text)
    text = HOURS.sub(lambda m: _plural(int(m[1]), "hour", "hours"), text)
    text = OUT_OF.sub(lambda m: f"{cardinal(int(m[1]))} out of {cardinal(int(m[2]))}", text)
    text = ORDINAL.sub(lambda m: ordinal(int(m[1])), text)
    text = HASH_NUMBER.sub(lambda m: f"number {cardinal(int(m[1]))}", text)
    text = NUMBER_RANGE.sub(" to ", text)
    text = SIGNED.sub(lambda m: f"{_sign_word(m['sign'])}{number_words(m['num'])}", text)
    text = YEAR.sub(lambda m: year_words(int(m["year"])), text)
    text = NUMBER.sub(lambda m: number_words(m[0]), text)
    text = WORD_SLASH.sub(" or ", text)
    for symbol, words in SYMBOL_WORDS:
        text = text.replace(symbol, words)
    text = QUOTES.sub("", text)
    text = text.replace("[", "(").replace("]", ")")
    text = PARENTHESIS.sub(r", \1,", text)
    text = STRAY.sub(" ", text.replace("(", " ").replace(")", " "))
    return _tidy(text)


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.;:?!])", r"\1", text)
    text = re.sub(r"([,;:])(?:\s*[,;])+", r"\1", text)  # ", ," and ": ," after a parenthesis
    text = re.sub(r",\s*([.;:?!])", r"\1", text)
    text = re.sub(r"([.?!])\.+", r"\1", text)
    return re.sub(r"^[,;:.\s]+", "", text)


def _sentence(text: str) -> str:
    """A spoken sentence ends with a full stop (a trailing colon with nothing after it becomes one)."""
    text = text.rstrip()
    if text.endswith((":", ";", ",")):
        text = text[:-1]
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


# --- replies: lines, lists, buttons --------------------------------------------------------------------------
@dataclass(slots=True)
class _List:
    numbered: bool
    items: list[tuple[int, str]] = field(default_factory=list)
    more: int = 0  # "…and N more" written after the items
    tail: str = ""  # what followed "N more" (", closing later")


def _blocks(lines: Sequence[str]) -> list[str | _List]:
    """Lines grouped: a run of `1. …` or `- …` items (with its `…and N more`) is one list."""
    blocks: list[str | _List] = []
    for line in lines:
        numbered = NUMBERED_ITEM.match(line)
        item = numbered or BULLET_ITEM.match(line)
        last = blocks[-1] if blocks else None
        more = MORE_LINE.match(line)
        if more and isinstance(last, _List):
            last.more += int(more["n"])
            last.tail = more["tail"].strip()
        elif item is not None:
            is_numbered = numbered is not None
            if not (isinstance(last, _List) and last.numbered == is_numbered and not last.more):
                last = _List(is_numbered)
                blocks.append(last)
            last.items.append((int(item["n"]) if numbered else 0, item["text"]))
        else:
            blocks.append(line)
    return blocks


def _spoken_list(block: _List, limit: int, today: date) -> list[str]:
    spoken = [
        _sentence(f"{cardinal(n).capitalize()}: {say(text, today)}" if block.numbered else say(text, today))
        for n, text in block.items[:limit]
    ]
    rest = max(len(block.items) - limit, 0) + block.more
    if rest:
        tail = say(block.tail, today).rstrip(".") if block.tail else ""
        joiner = ", " if block.tail.startswith(",") else " "
        spoken.append(_sentence(f"And {cardinal(rest)} more" + (joiner + tail if tail else "")))
    return spoken


def _is_yes_no(button: Button) -> bool:
    return button.title.strip().lower() in ("yes", "no")


def _or(words: Sequence[str]) -> str:
    """'one, two or three'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _choices(buttons: Sequence[Button], numbered_choice: int, today: date) -> str:
    """Buttons as what to say: 'Say yes or no.', 'Say one, two or three.', or the titles."""
    if not buttons:
        return ""
    if numbered_choice:
        return f"Say {_or([cardinal(n) for n in range(1, numbered_choice + 1)])}."
    titles = [say(b.title, today).rstrip(".") for b in buttons[:CHOICE_LIMIT]]
    titles = [t.lower() if _is_yes_no(b) else t for t, b in zip(titles, buttons, strict=False) if t]
    return f"Say {_or(titles)}." if titles else ""


def _reply(reply: Reply, today: date) -> list[str]:
    lines = [line for line in reply.text.splitlines() if line.strip()]
    blocks = _blocks(lines)
    others = [b for b in reply.buttons if not _is_yes_no(b)]
    choice_lists = [b for b in blocks if isinstance(b, _List) and b.numbered and len(b.items) == len(others)]
    choice = choice_lists[-1] if others and choice_lists and not any(_is_yes_no(b) for b in reply.buttons) else None
    sentences: list[str] = []
    for block in blocks:
        if isinstance(block, _List):
            sentences += _spoken_list(block, CHOICE_LIMIT if block is choice else LIST_LIMIT, today)
        else:
            sentences.append(_sentence(say(block, today)))
    if reply.rows:
        table = _List(numbered=False, items=[(0, ", ".join(c for c in row if c.strip())) for row in reply.rows])
        sentences += _spoken_list(table, LIST_LIMIT, today)
    numbered_choice = min(len(choice.items), CHOICE_LIMIT) if choice else 0
    sentences.append(_choices(reply.buttons, numbered_choice, today))
    return [s for s in sentences if s]


def for_speech(replies: Sequence[Reply], *, today: date | None = None, zone: tzinfo | None = None) -> str:
    """The assistant's replies as one text for the synthesiser: no symbols, digits or markdown read aloud.

    `today` (else the current date in `zone`, UTC by default) decides "today"/"tomorrow" and whether a
    date's year is said.
    """
    day = today or datetime.now(zone or UTC).date()
    return " ".join(sentence for reply in replies for sentence in _reply(reply, day))
