"""Local stand-ins for third-party platforms (Slack Web API, Telegram Bot API) on 127.0.0.1."""
