"""Scores for leads, deals, contacts and accounts: weighted rules, a model trained on the CRM's own
history, and the blend of both — always with the reasons (see docs/engines/scoring.md)."""
