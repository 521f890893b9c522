"""`crm-assistant`: one console script for running, training, seeding and measuring the service."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.commands import Handler, actor_for
from assistant.settings import Settings, open_store

if TYPE_CHECKING:
    from crm_backend.store import Store

log = logging.getLogger("crm-assistant")


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


# --- database ------------------------------------------------------------------------------------
def migrate(settings: Settings) -> None:
    from crm_backend.migrate import upgrade

    store = open_store(settings)
    try:
        upgrade(store.engine)
    finally:
        store.dispose()


def write_demo_tokens(settings: Settings, tokens: dict[str, str]) -> None:
    """Keep the demo users' tokens in var/demo-tokens.json (mode 0600) so `run` can print them."""
    path = settings.demo_tokens_file
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(tokens, fh, indent=2)
    tmp.replace(path)


def ensure_demo_data(settings: Settings) -> dict[str, str]:
    """Migrate; seed demo data into an empty database; return working tokens for the demo users."""
    from crm_backend.demo import DEMO_USERS, seed_demo
    from crm_backend.errors import CrmError
    from crm_backend.services import auth, users

    migrate(settings)
    store = open_store(settings)
    try:
        with store.unit_of_work(channel="cli") as uow:
            empty = users.count_users(uow) == 0
        if empty:
            tokens = seed_demo(store, extras=True)
            write_demo_tokens(settings, tokens)
            train_demo_scoring(settings, store)
            return tokens
        saved: dict[str, str] = {}
        if settings.demo_tokens_file.exists():
            saved = json.loads(settings.demo_tokens_file.read_text())
        tokens = {}
        with store.unit_of_work(channel="cli") as uow:
            for username, *_ in DEMO_USERS:
                try:
                    user = users.get_user_by_username(uow, username)
                except CrmError:
                    continue  # not a demo database, or the user was removed
                token = saved.get(username)
                try:
                    if token is None:
                        raise CrmError("no saved token")
                    auth.authenticate_token(uow, token)
                except CrmError:
                    token = auth.issue_token(uow, user.id, "demo")
                tokens[username] = token
        if tokens:
            write_demo_tokens(settings, tokens)
        return tokens
    finally:
        store.dispose()


def train_demo_scoring(settings: Settings, store: Store) -> None:
    """Train the lead and deal scoring models on the demo's generated history (unless models exist),
    then re-score, so the first `run` shows blended scores and model-based AI forecasts."""
    from crm_backend.scoring import engine, model

    for etype in model.TRAINABLE:
        if model.current(settings.scoring_models_dir, etype) is not None:
            continue
        try:
            with store.unit_of_work(channel="cli", read_only=True) as uow:
                result = model.train_from_database(uow, etype, settings.scoring_models_dir)
        except model.NotEnoughHistory as exc:
            log.info("%s scoring model not trained: %s", etype.value, exc)
            continue
        log.info("%s scoring model trained on the demo history: ROC-AUC %s", etype.value, result.metrics["roc_auc"])
        for _ in engine.score_all(store, etype):
            pass


# --- commands ------------------------------------------------------------------------------------
def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from assistant.training import ensure_model

    path, trained = ensure_model(settings, force=args.force)
    print(f"model: {path} ({'trained now' if trained else 'up to date, not retrained'})")
    if settings.sentiment_enabled and settings.sentiment_model_path is None:
        from assistant import mood

        head, head_trained = mood.prepare(settings)
        print(f"sentiment head: {head} ({'trained now' if head_trained else 'up to date, not retrained'})")
    return 0


def cmd_validate(settings: Settings, _args: argparse.Namespace) -> int:
    from assistant.training import validate_data

    result = validate_data(settings)
    sys.stdout.write(result.stdout[-4000:])
    sys.stderr.write(result.stderr[-4000:])
    return result.returncode


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    migrate(settings)
    print("database is at the latest schema")
    return 0


def cmd_seed_demo(settings: Settings, args: argparse.Namespace) -> int:
    from crm_backend.demo import seed_demo

    migrate(settings)
    store = open_store(settings)
    started = time.monotonic()
    counts: dict[str, int] = {}
    try:
        tokens = seed_demo(store, extras=True)
        if args.scale == "large":
            from crm_backend.demo_large import add_large_data

            print("generating the large demo data (about a minute on SQLite)...", flush=True)
            counts = add_large_data(store)
    except RuntimeError as exc:
        print(f"seed-demo: {exc}", file=sys.stderr)
        return 1
    finally:
        store.dispose()
    write_demo_tokens(settings, tokens)
    if counts:
        added = ", ".join(f"{n:,} {name}" for name, n in counts.items())
        print(f"generated {added} in {time.monotonic() - started:.0f} s")
    print(f"seeded demo data; API tokens written to {settings.demo_tokens_file}")
    return 0


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    from crm_backend.errors import CrmError
    from crm_backend.services import auth, users

    store = open_store(settings)
    try:
        with store.unit_of_work(channel="cli") as uow:
            user = users.get_user_by_username(uow, args.username)
            token = auth.issue_token(uow, user.id, args.name)
    except CrmError as exc:
        print(f"token: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.dispose()
    print(token)
    return 0


def cmd_console_link(settings: Settings, args: argparse.Namespace) -> int:
    """A one-time link that signs the user in to the agent console (valid 15 minutes, once)."""
    from assistant.console import LOGIN_LINK_SECONDS, ConsoleAuth
    from crm_backend.errors import CrmError
    from crm_backend.services import handoff, users

    store = open_store(settings)
    try:
        with store.unit_of_work(channel="cli", read_only=True) as uow:
            user = users.get_user_by_username(uow, args.username)
            if user.role not in handoff.WORKING_ROLES or not user.is_active:
                print(f"console-link: {args.username} is not an active agent, manager or admin", file=sys.stderr)
                return 1
            user_id = user.id
    except CrmError as exc:
        print(f"console-link: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.dispose()
    code = ConsoleAuth(settings).login_link_code(user_id)
    print(f"{settings.gateway_url}/console/login?code={code}")
    print(f"Open it within {LOGIN_LINK_SECONDS // 60} minutes; it works once.", file=sys.stderr)
    return 0


def cmd_link(settings: Settings, args: argparse.Namespace) -> int:
    """A one-time code that links the user's Slack or Telegram account (or lists/unlinks them)."""
    import datetime as dt

    from crm_backend.errors import CrmError
    from crm_backend.services import identities, users
    from crm_backend.services.auth import actor_for

    store = open_store(settings)
    try:
        with store.unit_of_work(channel="cli") as uow:
            uow.actor = actor_for(users.get_user_by_username(uow, args.username))
            if args.unlink is not None:
                removed = identities.unlink(uow, args.unlink)
                print(f"unlinked {removed.channel} account {removed.external_id} from {args.username}")
                return 0
            if args.list:
                for ident in identities.my_identities(uow):
                    where = f" in {ident.workspace_id}" if ident.workspace_id else ""
                    print(
                        f"{ident.id}\t{ident.channel}\t{ident.external_id}{where}"
                        f"\tlinked {ident.linked_at:%Y-%m-%d %H:%M}"
                    )
                return 0
            issued = identities.issue_link_code(uow, dt.timedelta(minutes=settings.link_code_minutes))
    except CrmError as exc:
        print(f"link: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.dispose()
    print(issued.code)
    print(
        f"Send it to the CRM assistant within {settings.link_code_minutes} minutes: as a Slack direct message, "
        f"or /start {issued.code} to the Telegram bot. It works once.",
        file=sys.stderr,
    )
    return 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    """Stream a CSV/JSON file into the CRM as a user; all-or-nothing unless --partial."""
    from crm_backend import transfer
    from crm_backend.errors import CrmError

    mapping = dict(pair.split("=", 1) for pair in args.map or [])
    fmt = args.format or ("json" if args.file.suffix.lower() == ".json" else "csv")
    migrate(settings)
    store = open_store(settings)
    started = time.monotonic()

    def progress(done: int) -> None:
        rate = done / max(time.monotonic() - started, 1e-6)
        sys.stderr.write(f"\r{args.entity}: {done:,} rows checked ({rate:,.0f} rows/s)")
        sys.stderr.flush()

    try:
        actor = actor_for(store, args.as_user)
        with args.file.open(encoding="utf-8", newline="") as fh:
            rows = transfer.read_json(fh) if fmt == "json" else transfer.read_csv(fh, args.entity, mapping)
            report = transfer.import_rows(store, actor, args.entity, rows, partial=args.partial, progress=progress)
    except CrmError as exc:
        sys.stderr.write("\n")
        print(f"import: {exc.message} {getattr(exc, 'fields', '') or ''}".strip(), file=sys.stderr)
        return 2
    finally:
        store.dispose()
    sys.stderr.write("\n")
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        state = "written" if report.committed else "NOTHING written (all-or-nothing; use --partial to keep good rows)"
        print(
            f"{report.total:,} rows, {report.created:,} created, {len(report.rejected)} rejected, "
            f"{len(report.duplicates)} duplicates: {state}"
        )
        for row in [*report.rejected, *report.duplicates][:50]:
            print(f"  line {row.line}: {row.reason}")
    return 0 if report.committed and not report.rejected and not report.duplicates else 1


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    from crm_backend import transfer

    store = open_store(settings)
    try:
        actor = actor_for(store, args.as_user)
        if args.output:
            with args.output.open("w", encoding="utf-8", newline="") as out:
                count = transfer.export_rows(store, actor, args.entity, out, args.format)
        else:
            count = transfer.export_rows(store, actor, args.entity, sys.stdout, args.format)
    finally:
        store.dispose()
    print(f"exported {count:,} {args.entity}", file=sys.stderr)
    return 0


def cmd_api(settings: Settings, _args: argparse.Namespace) -> int:
    from assistant.gateway import serve

    migrate(settings)  # the gateway owns the schema: bring it up to date before serving
    serve(settings)
    return 0


def cmd_actions(settings: Settings, _args: argparse.Namespace) -> int:
    from assistant.action_server import serve

    serve(settings)
    return 0


def banner(settings: Settings, tokens: dict[str, str]) -> str:
    lines = [
        "",
        "crm-assistant is running:",
        f"  gateway        {settings.gateway_url}  (health: /healthz, readiness: /readyz)",
        f"  Rasa server    {settings.rasa_url}",
        f"  action server  {settings.action_server_url}",
        f"  logs           {settings.logs_dir}",
        f"  chat widget    {settings.gateway_url}/widget/demo  (website visitors' view; embed /widget.js)",
        "  Slack          "
        + (
            "on: /slack/events, /slack/interactions, /slack/commands"
            if settings.slack_enabled
            else "off (set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET)"
        ),
        "  Telegram       "
        + (f"on ({settings.telegram_mode})" if settings.telegram_enabled else "off (set TELEGRAM_BOT_TOKEN)"),
    ]
    if tokens:
        lines.append("Demo users' API tokens (also in var/demo-tokens.json):")
        lines += [f"  {name:<8} {token}" for name, token in tokens.items()]
        first = next(iter(tokens))
        lines += [
            f"Talk to the assistant as {first}:",
            f"  curl -s -X POST {settings.gateway_url}/api/v1/assistant/messages \\",
            f"    -H 'Authorization: Bearer {tokens[first]}' -H 'Content-Type: application/json' \\",
            '    -d \'{"text": "show my open deals"}\'',
        ]
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


def cmd_run(settings: Settings, _args: argparse.Namespace) -> int:
    from assistant.stack import Stack, StartupFailed
    from assistant.training import ensure_model

    print("checking the Rasa model (trains only when config.yml, domain.yml or nlu_data/ changed)...")
    model, trained = ensure_model(settings)
    print(f"model: {model.name} ({'trained now' if trained else 'up to date'})")
    if settings.sentiment_enabled and settings.sentiment_model_path is None:
        from assistant import mood

        head, head_trained = mood.prepare(settings)
        print(f"sentiment head: {head.name} ({'trained now' if head_trained else 'up to date'})")
    tokens = ensure_demo_data(settings)
    print(f"database: {settings.effective_database_url.split('@')[-1]}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = Stack(settings, model)
    print("starting the action server, Rasa and the gateway (Rasa takes about half a minute)...")
    try:
        stack.start()
    except StartupFailed as exc:
        print(f"start-up failed: {exc}", file=sys.stderr)
        return 1
    print(banner(settings, tokens), flush=True)
    code = 0
    try:
        while not stop.wait(0.5):
            dead = stack.first_exited()
            if dead:
                print(f"{dead} stopped unexpectedly; shutting down.\n{stack.log_tail(dead)}", file=sys.stderr)
                code = 1
                break
    finally:
        print("stopping...", flush=True)
        stack.stop()
        print("stopped.")
    return code


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    if args.what in BENCHES:
        return BENCHES[args.what](settings, args)
    if args.what == "crm":
        from assistant.bench_crm import run_crm_bench

        return run_crm_bench(
            args.database_url,
            queries=args.queries,
            output=args.output,
            leads=args.leads,
            accounts=args.accounts,
            activities=args.activities,
        )
    from assistant.bench import run_turn_bench

    return run_turn_bench(
        settings, sequential=args.sequential, concurrent=args.concurrent, rounds=args.rounds, output=args.output
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm-assistant", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="train if needed, migrate and seed, start everything (Ctrl-C stops)")
    p = sub.add_parser("train", help="train the Rasa model if its inputs changed")
    p.add_argument("--force", action="store_true", help="train even if the model is up to date")
    sub.add_parser("validate", help="rasa data validate over the training data")
    sub.add_parser("migrate", help="bring the database schema up to date")
    p = sub.add_parser("seed-demo", help="create demo users, accounts and deals in an empty database")
    p.add_argument(
        "--scale",
        choices=["demo", "large"],
        default="demo",
        help="large: also generate 100,000 leads, 20,000 accounts, 200,000 activities (default: demo)",
    )
    p = sub.add_parser("token", help="issue an API token for a user")
    p.add_argument("username")
    p.add_argument("--name", default="cli", help="a label for the token (default: cli)")
    p = sub.add_parser("console-link", help="a one-time sign-in link to the agent console for a user")
    p.add_argument("username")
    p = sub.add_parser("link", help="a one-time code that links a user's Slack or Telegram account")
    p.add_argument("username")
    p.add_argument("--list", action="store_true", help="list the user's linked chat accounts instead")
    p.add_argument("--unlink", type=int, metavar="ID", help="unlink the chat account with this id (see --list)")
    sub.add_parser("api", help="run the assistant gateway only")
    sub.add_parser("actions", help="run the action server only")
    p = sub.add_parser("import", help="import leads, accounts, contacts, deals or activities from CSV/JSON")
    p.add_argument("entity", choices=["leads", "accounts", "contacts", "deals", "activities"])
    p.add_argument("file", type=Path)
    p.add_argument("--as", dest="as_user", default="admin", help="the user who imports (owner of the rows)")
    p.add_argument("--partial", action="store_true", help="write the good rows even if some are rejected")
    p.add_argument("--map", action="append", metavar="HEADER=FIELD", help="map a file column to a field")
    p.add_argument("--format", choices=["csv", "json"], help="default: from the file name")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p = sub.add_parser("export", help="export what a user may see as CSV or JSON")
    p.add_argument("entity", choices=["leads", "accounts", "contacts", "deals", "activities"])
    p.add_argument("--as", dest="as_user", default="admin", help="whose view to export")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    p = sub.add_parser("bench", help="measure the service (figures go to bench/RESULTS.md)")
    benches = p.add_subparsers(dest="what", required=True)
    b = benches.add_parser("turn", help="latency and memory of one assistant turn through the gateway")
    b.add_argument("--sequential", type=int, default=50, help="sequential conversations (default 50)")
    b.add_argument("--concurrent", type=int, default=10, help="concurrent conversations (default 10)")
    b.add_argument("--rounds", type=int, default=5, help="turns per concurrent conversation (default 5)")
    b.add_argument("--output", type=Path, help="also write the figures as JSON here")
    b = benches.add_parser("crm", help="the CRM backend at 100,000 leads, SQLite and PostgreSQL side by side")
    b.add_argument(
        "--database-url",
        action="append",
        metavar="URL",
        help="a database to measure (repeatable; PostgreSQL gets a throw-away schema; SQLite must be empty). "
        "Default: a temporary SQLite file and the local PostgreSQL server when it answers",
    )
    b.add_argument("--queries", type=int, default=200, help="samples per operation and user (default 200)")
    b.add_argument("--leads", type=int, default=100_000, help="generated leads (default 100,000)")
    b.add_argument("--accounts", type=int, default=20_000, help="generated accounts (default 20,000)")
    b.add_argument("--activities", type=int, default=200_000, help="generated activities (default 200,000)")
    b.add_argument("--output", type=Path, help="also write the figures as JSON here")
    for module in engine_command_modules():
        COMMANDS.update(module.add_commands(sub))
        BENCHES.update(module.add_bench(benches))
    return parser


# The engines' commands (score, train-scoring, forecast, macro, scheduler, signals, ...): each module
# has `add_commands(subparsers) -> {name: handler}` and `add_bench(bench_subparsers) -> {name: handler}`.
ENGINE_COMMANDS = (
    "assistant.commands.scoring",
    "assistant.commands.macros",
    "assistant.commands.forecasting",
    "assistant.commands.scheduler",
    "assistant.commands.signals",
    "assistant.commands.evaluation",
    "assistant.commands.conversations",
    "assistant.commands.voice",
)


def engine_command_modules() -> list[Any]:
    import importlib

    return [importlib.import_module(name) for name in ENGINE_COMMANDS]


BENCHES: dict[str, Handler] = {}
COMMANDS: dict[str, Handler] = {
    "run": cmd_run,
    "train": cmd_train,
    "validate": cmd_validate,
    "migrate": cmd_migrate,
    "seed-demo": cmd_seed_demo,
    "token": cmd_token,
    "link": cmd_link,
    "console-link": cmd_console_link,
    "api": cmd_api,
    "actions": cmd_actions,
    "bench": cmd_bench,
    "import": cmd_import,
    "export": cmd_export,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings)
    return COMMANDS[args.command](settings, args)


if __name__ == "__main__":
    sys.exit(main())
