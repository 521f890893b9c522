"""`crm-assistant voice`: talk to the running assistant with a WAV file (or a microphone), and fetch an
English Vosk model.

`voice --wav question.wav [--as alice]` sends the recording to the gateway's voice endpoint as that user
(a new API token is issued for the run), prints the transcript and the replies, and writes the spoken
reply next to the input (`question.reply.wav`, or `--out`). `voice --mic` records from a microphone
where the machine has one. `voice fetch-model en` downloads the standard small English Vosk model into
var/models/vosk where the internet can be reached, and says clearly where it cannot.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from assistant.commands import Handler, say
from assistant.settings import Settings, open_store

VOSK_MODELS = {"en": "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip"}
TIMEOUT = 120


def _token(settings: Settings, username: str) -> str:
    from crm_backend.services import auth, users

    store = open_store(settings)
    try:
        with store.unit_of_work(channel="cli") as uow:
            return auth.issue_token(uow, users.get_user_by_username(uow, username).id, "voice-cli")
    finally:
        store.dispose()


def _post(settings: Settings, token: str, audio: bytes, content_type: str, conversation: str | None) -> dict[str, Any]:
    url = f"{settings.gateway_url}/api/v1/assistant/voice"
    if conversation:
        url += f"?conversation_id={conversation}"
    request = urllib.request.Request(  # noqa: S310 - the local gateway
        url, data=audio, method="POST", headers={"Authorization": f"Bearer {token}", "Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:  # noqa: S310
            body: dict[str, Any] = json.loads(resp.read())
            return body
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {exc.code}"
        raise SystemExit(f"voice: {message}") from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise SystemExit(
            f"voice: the assistant is not reachable at {settings.gateway_url} ({exc}). Start it with `make run`."
        ) from None


def _show(body: dict[str, Any], out: Path) -> None:
    transcript = body.get("transcript") or {}
    say(f"heard ({transcript.get('engine')}, confidence {transcript.get('confidence')}): {transcript.get('text')!r}")
    for reply in body.get("replies") or []:
        say(f"assistant: {reply['text']}")
        if reply.get("buttons"):
            say("  (say: " + " / ".join(b["title"] for b in reply["buttons"]) + ")")
    audio = (body.get("audio") or {}).get("base64")
    if audio:
        out.write_bytes(base64.b64decode(audio))
        say(f"spoken reply written to {out}")
    say(f"conversation: {body.get('conversation_id')} (pass --conversation to go on)")


def _record(seconds: float) -> bytes:
    """A WAV from the default microphone, or SystemExit with a clear reason."""
    if shutil.which("arecord") is None:
        raise SystemExit("voice: no microphone tool (arecord, Debian package alsa-utils) on this machine; use --wav.")
    import subprocess

    done = subprocess.run(  # noqa: S603 - a fixed program
        ["arecord", "-q", "-f", "S16_LE", "-r", "16000", "-c", "1", "-d", str(max(1, round(seconds))), "-t", "wav"],  # noqa: S607
        capture_output=True,
        timeout=seconds + 10,
        check=False,
    )
    if done.returncode != 0 or len(done.stdout) <= 44:
        reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no audio device"]
        raise SystemExit(f"voice: cannot record from a microphone here ({reason[0]}); use --wav.")
    return done.stdout


def cmd_voice(settings: Settings, args: argparse.Namespace) -> int:
    if args.voice_command == "fetch-model":
        return fetch_model(settings, args.language)
    if args.wav is None and not args.mic:
        say("voice: give --wav FILE or --mic")
        return 2
    if args.wav is not None:
        if not args.wav.is_file():
            say(f"voice: no such file {args.wav}")
            return 2
        audio = args.wav.read_bytes()
        out = args.out or args.wav.with_suffix(".reply.wav")
    else:
        audio = _record(args.seconds)
        out = args.out or Path("reply.wav")
    token = _token(settings, args.as_user)
    _show(_post(settings, token, audio, "audio/wav", args.conversation), out)
    return 0


def fetch_model(settings: Settings, language: str) -> int:
    """Download and unpack the small Vosk model for `language` into var/models/vosk/."""
    url = VOSK_MODELS.get(language)
    if url is None:
        say(f"voice: no model known for {language!r}; known: {', '.join(VOSK_MODELS)}")
        return 2
    target = settings.var_dir / "models" / "vosk"
    target.mkdir(parents=True, exist_ok=True)
    say(f"downloading {url} ...")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:  # noqa: S310 - a fixed https URL
            data = resp.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        say(
            f"voice: cannot download the model here ({exc}). On a machine with internet access, download\n"
            f"  {url}\nunpack it and set VOSK_MODEL_PATH to the unpacked folder. Until then the bundled\n"
            "faster-whisper tiny.en model recognises English offline."
        )
        return 1
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(target)
        top = archive.namelist()[0].split("/")[0]
    say(f"model in {target / top}; set VOSK_MODEL_PATH={target / top} (and VOICE_ENGINE=vosk or auto)")
    return 0


def add_commands(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("voice", help="talk to the running assistant with a WAV file or a microphone")
    p.add_argument("--wav", type=Path, help="a recording to send (WAV, OGG, WebM, MP3, FLAC)")
    p.add_argument("--mic", action="store_true", help="record from the microphone instead")
    p.add_argument("--seconds", type=float, default=5.0, help="how long --mic records (default 5)")
    p.add_argument("--as", dest="as_user", default="alice", help="the CRM user to speak as (default alice)")
    p.add_argument("--conversation", help="go on with this conversation id")
    p.add_argument("--out", type=Path, help="where to write the spoken reply (default: next to the input)")
    models = p.add_subparsers(dest="voice_command")
    f = models.add_parser("fetch-model", help="download an English Vosk model (needs the internet)")
    f.add_argument("language", choices=sorted(VOSK_MODELS))
    return {"voice": cmd_voice}


def add_bench(benches: Any) -> dict[str, Handler]:
    return {}


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run it as `crm-assistant voice`")
