"""Rendering of ``AlertEvent`` for human-facing sinks (pure: no network, no sending)."""
