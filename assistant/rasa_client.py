"""HTTP clients for the two processes the gateway depends on: the Rasa server and the action server.

Every call has a timeout; every failure becomes `UpstreamUnavailable` naming the component, so the
gateway can answer 503 with a plain sentence instead of hanging or leaking a stack trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp


class UpstreamUnavailable(Exception):
    def __init__(self, component: str, reason: str) -> None:
        super().__init__(f"{component}: {reason}")
        self.component = component
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class TurnFacts:
    intent: str
    confidence: float
    slots: dict[str, Any]
    active_loop: str | None = None  # the form still asking after this turn, if any


class RasaClient:
    """Talks to `rasa run --enable-api` (REST channel, /status, /model/parse)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        auth_token: str,
        timeout_seconds: float,
        health_timeout_seconds: float,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._token = auth_token
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._health_timeout = aiohttp.ClientTimeout(total=health_timeout_seconds)

    async def send_message(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """One user turn through Rasa's REST channel; returns Rasa's bot messages."""
        body = {"sender": sender, "message": text, "metadata": metadata}
        data = await self._request("POST", "/webhooks/rest/webhook", json=body, timeout=self._timeout)
        if not isinstance(data, list):
            raise UpstreamUnavailable("rasa", "unexpected reply from the dialogue engine")
        return [m for m in data if isinstance(m, dict)]

    async def set_slot(self, sender: str, name: str, value: Any) -> None:
        """Set a slot on a conversation's tracker (Rasa's tracker events API)."""
        event = {"event": "slot", "name": name, "value": value}
        await self._request(
            "POST",
            f"/conversations/{sender}/tracker/events",
            json=event,
            timeout=self._timeout,
            auth=True,
            params_extra={"include_events": "NONE"},
        )

    async def latest_turn(self, sender: str, text: str) -> TurnFacts | None:
        """What Rasa made of the user message `text` just sent (its intent, for analytics) and the slots the
        conversation holds now (a prospect's answers so far, for a handoff ticket); None when it won't say.

        While a form runs, the tracker endpoint's `latest_message` can still be the message that started
        the form (Rasa 3.6): then the text is parsed again, so the intent is always this turn's."""
        data = await self._request(
            "GET",
            f"/conversations/{sender}/tracker",
            timeout=self._health_timeout,
            auth=True,
            params_extra={"include_events": "NONE"},
        )
        if not isinstance(data, dict):
            return None
        latest = data.get("latest_message") or {}
        slots: dict[str, Any] = data["slots"] if isinstance(data.get("slots"), dict) else {}
        if latest.get("text") != text:
            latest = await self.parse(text)
        intent = latest.get("intent")
        if not isinstance(intent, dict) or not isinstance(intent.get("name"), str):
            return None
        loop: dict[str, Any] = data["active_loop"] if isinstance(data.get("active_loop"), dict) else {}
        name = loop.get("name") if isinstance(loop.get("name"), str) else None
        return TurnFacts(str(intent["name"]), float(intent.get("confidence") or 0.0), slots, name)

    async def parse(self, text: str) -> dict[str, Any]:
        data = await self._request("POST", "/model/parse", json={"text": text}, timeout=self._timeout, auth=True)
        if not isinstance(data, dict):
            raise UpstreamUnavailable("rasa", "unexpected reply from /model/parse")
        return data

    async def health(self) -> ComponentHealth:
        try:
            data = await self._request("GET", "/status", timeout=self._health_timeout, auth=True)
        except UpstreamUnavailable as exc:
            return ComponentHealth("rasa", False, exc.reason)
        model = data.get("model_file") if isinstance(data, dict) else None
        if not model:
            return ComponentHealth("rasa", False, "no model loaded")
        return ComponentHealth("rasa", True, f"model {model}")

    async def _request(
        self,
        method: str,
        path: str,
        *,
        timeout: aiohttp.ClientTimeout,
        auth: bool = False,
        params_extra: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        params = {**({"token": self._token} if auth else {}), **(params_extra or {})} or None
        try:
            async with self._session.request(
                method, self._base + path, params=params, timeout=timeout, **kwargs
            ) as resp:
                if resp.status >= 400:
                    raise UpstreamUnavailable("rasa", f"the dialogue engine answered HTTP {resp.status}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, ValueError) as exc:
            raise UpstreamUnavailable("rasa", f"the dialogue engine is not reachable ({type(exc).__name__})") from exc
        except TimeoutError as exc:
            raise UpstreamUnavailable("rasa", "the dialogue engine did not answer in time") from exc


class ActionServerClient:
    """Only health: Rasa itself calls the action server's webhook."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, timeout_seconds: float) -> None:
        self._session = session
        self._url = base_url.rstrip("/") + "/health"
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def health(self) -> ComponentHealth:
        try:
            async with self._session.get(self._url, timeout=self._timeout) as resp:
                if resp.status == 200:
                    return ComponentHealth("action_server", True, "ok")
                return ComponentHealth("action_server", False, f"HTTP {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return ComponentHealth("action_server", False, f"not reachable ({type(exc).__name__})")
