"""Channel adapters over the assistant gateway: Slack (`slack`), Telegram (`telegram`) and the
website chat widget (`web`).

Each module turns its platform's events into `assistant.messages.Inbound`, hands them to
`assistant.dialogue.Dialogue.handle`, renders the replies the platform's way, and delivers
notifications through a `Deliverer`. `mount(app, settings)` adds a channel to the gateway app.
"""


class ChannelMisconfigured(Exception):
    """A channel is switched on without what it needs to run safely (a signing secret, a webhook secret)."""
