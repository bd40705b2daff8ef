"""CLI commands that are imported lazily (they need torch)."""
