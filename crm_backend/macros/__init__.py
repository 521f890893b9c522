"""Macros: an entity type, a trigger, conditions and an ordered list of actions, run all or nothing.

`definitions` (what a macro may say, checked on save), `engine` (one run on one record),
`triggers` (runs that follow changes), `schedule` (runs on an RRULE), `api` (REST operations).
"""
