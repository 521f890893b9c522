"""Composes the service: settings, CLI, process supervision and the assistant gateway."""
