"""The agent console and the widget together, in headless Chromium with two browser contexts: a prospect in
the website widget asks for a human; the agent (demo user sam, signed in with a one-time link) sees the
ticket in the live queue, takes it and replies; the prospect sees the reply and the bot says nothing;
the agent hands back and the bot answers the prospect again. Plus the console's sign-in and CSRF rules."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from assistant.console import CSRF_HEADER, ConsoleAuth
from assistant.settings import open_store
from crm_backend.services import users
from tests.e2e.conftest import Running
from tests.e2e.test_web_widget import CHROMIUM, ROOT, TURN_MS, answer_count, answers_after, demo_url

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def prospect(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context()
    yield ctx
    await ctx.close()


@pytest.fixture
async def agent(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context()
    yield ctx
    await ctx.close()


def sign_in_link(running: Running, username: str) -> str:
    store = open_store(running.settings)
    try:
        with store.unit_of_work(read_only=True) as uow:
            user_id = users.get_user_by_username(uow, username).id
    finally:
        store.dispose()
    return f"{running.settings.gateway_url}/console/login?code={ConsoleAuth(running.settings).login_link_code(user_id)}"


async def widget_say(page: Page, text: str) -> str:
    before = await answer_count(page)
    box = page.get_by_label("Your message")
    await box.fill(text)
    await box.press("Enter")
    return "\n".join(await answers_after(page, before))


async def test_prospect_asks_for_a_human_agent_takes_replies_and_hands_back(
    running: Running, prospect: BrowserContext, agent: BrowserContext
) -> None:
    visitor = await prospect.new_page()
    await visitor.goto(demo_url(running))
    await visitor.get_by_role("button", name=re.compile("Open chat")).click()
    escalated = await widget_say(visitor, "can I talk to a human please")
    assert "ticket #" in escalated, escalated
    ticket = re.search(r"ticket #(\d+)", escalated)
    assert ticket is not None

    console = await agent.new_page()
    await console.goto(sign_in_link(running, "sam"))
    await expect(console.get_by_text("Signed in as sam")).to_be_visible(timeout=TURN_MS)
    entry = console.locator(f'[data-ticket="{ticket.group(1)}"]')
    await expect(entry).to_be_visible(timeout=TURN_MS)
    await entry.click()
    await expect(console.get_by_role("log", name="Messages")).to_contain_text("talk to a human", timeout=TURN_MS)
    await console.get_by_role("button", name="Take", exact=True).click()
    await expect(visitor.get_by_role("log")).to_contain_text("joined the conversation", timeout=TURN_MS)

    await console.get_by_label("Reply to the customer").fill("Hi, I'm Sam from Northwind. What do you need?")
    await console.get_by_role("button", name="Send").click()
    await expect(visitor.get_by_role("log")).to_contain_text("I'm Sam from Northwind", timeout=TURN_MS)

    # The prospect answers the agent: the agent sees it live, the bot stays silent.
    bot_answers = await visitor.evaluate(f"() => {ROOT}.querySelectorAll('.crmw-bot').length")
    box = visitor.get_by_label("Your message")
    await box.fill("what does the pro plan cost?")
    await box.press("Enter")
    await expect(console.get_by_role("log", name="Messages")).to_contain_text("pro plan cost", timeout=TURN_MS)
    await visitor.wait_for_timeout(2500)
    assert await visitor.evaluate(f"() => {ROOT}.querySelectorAll('.crmw-bot').length") == bot_answers

    await console.get_by_label("Hand-back note").fill("Sent the pricing sheet")
    await console.get_by_role("button", name="Hand back to the bot").click()
    await expect(visitor.get_by_role("log")).to_contain_text("back with the assistant", timeout=TURN_MS)
    answer = await widget_say(visitor, "hi")
    assert answer and "ticket" not in answer  # the bot answers again


async def test_the_console_needs_a_session_a_working_role_and_the_csrf_token(
    running: Running, agent: BrowserContext
) -> None:
    base = running.settings.gateway_url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/console/api/handoffs") as resp:
            assert resp.status == 401
        async with http.get(f"{base}/console") as resp:  # the sign-in form, not the console
            assert resp.status == 200 and "Your CRM API token" in await resp.text()
        async with http.get(f"{base}/console/login?code=forged") as resp:
            assert resp.status == 401
    # A rep's valid one-time link is refused: the console is for the service desk.
    page = await agent.new_page()
    response = await page.goto(sign_in_link(running, "alice"))
    assert response is not None and response.status == 403
    # A used link does not work twice.
    link = sign_in_link(running, "sam")
    first = await page.goto(link)
    assert first is not None and first.status == 200
    again = await (await agent.browser.new_context()).new_page()  # type: ignore[union-attr]
    second = await again.goto(link)
    assert second is not None and second.status == 401
    # Signed in, a state-changing call without the page's CSRF token is refused.
    status = await page.evaluate(
        """() => fetch('/console/api/handoffs/1/take', {method: 'POST', credentials: 'same-origin'})
                 .then(r => r.status)"""
    )
    assert status == 403
    token = await page.locator("#console").get_attribute("data-csrf")
    status = await page.evaluate(
        """([header, token]) => fetch('/console/api/handoffs/999999/take',
                 {method: 'POST', credentials: 'same-origin', headers: {[header]: token}}).then(r => r.status)""",
        [CSRF_HEADER, token],
    )
    assert status == 404  # the token passes; the ticket does not exist
