"""The engines' `crm-assistant` subcommands (see `assistant.cli.ENGINE_COMMANDS`) and what they share."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from assistant.settings import Settings

if TYPE_CHECKING:
    from crm_backend.store import Actor, Store

Handler = Callable[[Settings, argparse.Namespace], int]


def say(message: str) -> None:
    """One line of progress or result on standard output, shown at once."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def actor_for(store: Store, username: str) -> Actor:
    """The CRM user a command acts as (`--as USER`); an unknown name raises NotFound."""
    from crm_backend.services import auth, users

    with store.unit_of_work(channel="cli") as uow:
        return auth.load_actor(uow, users.get_user_by_username(uow, username).id)
