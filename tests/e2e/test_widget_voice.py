"""Push-to-talk in the website widget, end to end: Debian's Chromium with a fake microphone that plays a
WAV of a spoken question (espeak-ng), a signed-in rep holding the mic button, the audio streamed as PCM
over the widget's websocket to the real gateway, recognised by the bundled engine, answered by the real
Rasa and action server, shown as text and played back as speech. A visitor gets no mic."""

from __future__ import annotations

import io
import re
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright, expect

from tests.e2e.conftest import Running
from tests.e2e.test_voice import speak, voice_ready
from tests.e2e.test_web_widget import ALICE_OPEN, CHROMIUM, OTHERS_DEALS, ROOT, TURN_MS, demo_url, log_text

pytestmark = pytest.mark.e2e

QUESTION = "show my open deals"
LEAD_IN_SECONDS = 0.4
HOLD_AFTER_SECONDS = 1.2  # the mic is released this long after the speech ends
# Quiet after that, much longer than the hold: Chromium's fake microphone loops the file, and on a busy
# machine a late release must still end in silence, never in the next loop's words.
TAIL_SECONDS = 8.0


def padded_wav(text: str) -> tuple[bytes, float]:
    """`text` spoken, with quiet before and after (the fake microphone loops the file); and how long to hold
    the mic for it."""
    with wave.open(io.BytesIO(speak(text)), "rb") as spoken:
        rate, frames = spoken.getframerate(), spoken.readframes(spoken.getnframes())
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(rate * LEAD_IN_SECONDS) + frames + b"\0\0" * int(rate * TAIL_SECONDS))
    seconds = LEAD_IN_SECONDS + len(frames) / 2 / rate + HOLD_AFTER_SECONDS
    return out.getvalue(), seconds


@pytest.fixture(scope="module")
def question(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    wav, seconds = padded_wav(QUESTION)
    path = tmp_path_factory.mktemp("mic") / "question.wav"
    path.write_bytes(wav)
    return path, seconds


@pytest.fixture(scope="module")
async def browser(question: tuple[Path, float]) -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={question[0]}",
                "--autoplay-policy=no-user-gesture-required",
                # The intranet page below is served by Playwright's router, which Chromium's Local Network
                # Access checks treat as a public page calling 127.0.0.1: its websocket would be blocked.
                "--disable-features=LocalNetworkAccessChecks",
            ],
        )
        yield launched
        await launched.close()


@pytest.fixture
async def context(browser: Browser, running: Running) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(permissions=["microphone"])
    yield ctx
    await ctx.close()


async def test_a_rep_holds_the_mic_asks_and_sees_and_hears_the_answer(
    running: Running, context: BrowserContext, question: tuple[Path, float]
) -> None:
    await voice_ready(running)
    gateway = running.settings.gateway_url
    page_url = f"{gateway}/intranet-voice"
    html = (
        "<!doctype html><html lang=en><head><title>Intranet</title></head><body><h1>Intranet</h1>"
        f'<script src="/widget.js" data-token="{running.tokens["alice"]}"></script></body></html>'
    )
    await context.route(page_url, lambda route: route.fulfill(body=html, content_type="text/html"))
    page = await context.new_page()
    await page.goto(page_url)
    await page.get_by_role("button", name=re.compile("Open chat")).click()
    mic = page.get_by_role("button", name="Hold to talk")
    await expect(mic).to_be_visible(timeout=TURN_MS)

    box = await mic.bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.down()
    await expect(mic).to_have_attribute("aria-pressed", "true")
    await page.wait_for_timeout(int((question[1] - 0.3) * 1000))
    await page.mouse.up()
    await expect(mic).to_have_attribute("aria-pressed", "false")

    spoken = page.locator(".crmw-spoken")
    await expect(spoken).to_have_count(1, timeout=TURN_MS)
    heard = (await spoken.inner_text()).lower()
    assert "deal" in heard, heard
    await page.wait_for_function(
        f"() => {ROOT}.querySelector('.crmw-typing').hidden && {ROOT}.querySelectorAll('.crmw-bot').length > 0",
        timeout=TURN_MS,
    )
    shown = await log_text(page)
    assert not [name for name in OTHERS_DEALS if name in shown], shown
    if "show my open deals" in heard:  # heard cleanly: the answer is alice's own deal list
        assert any(name in shown for name in ALICE_OPEN), shown
    # The answer is spoken as well: the widget got a WAV and started playing it.
    await page.wait_for_function(
        "() => Number(document.querySelector('[data-crm-widget]').getAttribute('data-speech-bytes')) > 16000",
        timeout=TURN_MS,
    )


async def test_a_visitor_gets_no_mic_and_the_socket_refuses_voice(running: Running, context: BrowserContext) -> None:
    page = await context.new_page()
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    await page.goto(demo_url(running))
    await page.get_by_role("button", name=re.compile("Open chat")).click()
    await expect(page.get_by_role("dialog")).to_be_visible()
    await page.wait_for_function("() => window.__crmWidgetLoaded === true")
    await page.wait_for_timeout(1000)
    assert (
        await page.get_by_role("button", name="Hold to talk").count() == 0
        or not await page.get_by_role("button", name="Hold to talk").is_visible()
    )
    # Even a hand-made voice_start from a visitor is refused with a sentence.
    refused = await page.evaluate(
        """() => new Promise(resolve => {
            const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/widget/ws');
            ws.onopen = () => ws.send(JSON.stringify({type: 'voice_start'}));
            ws.onmessage = e => { const f = JSON.parse(e.data); if (f.type === 'error') { resolve(f); ws.close(); } };
            setTimeout(() => resolve(null), 10000);
        })"""
    )
    assert refused and refused["code"] == "voice_signed_in_only", refused
