"""Custom actions: translate dialogue into crm_backend service calls and results into replies.

Loaded by the action server (`crm-assistant actions`), which installs the runtime
(`actions.runtime`) before serving. One module per skill area.
"""
