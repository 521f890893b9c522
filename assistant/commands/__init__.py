"""The engines' `crm-assistant` subcommands; see `assistant.cli.ENGINE_COMMANDS`."""
