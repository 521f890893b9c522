"""Channel adapters (Slack, Telegram, the website widget) over the assistant gateway.

Each platform becomes one module here that turns platform events into gateway messages and
gateway replies into platform calls. Today the gateway's HTTP API (`POST /api/v1/assistant/messages`)
is the only channel; see README.md.
"""
