"""The scheduler: one leader among the gateways (a database lease) fires due reminders, expands
recurring activities, runs scheduled macros and the signal sweep, and delivers queued notifications
to each user's preferred channel with retries."""
