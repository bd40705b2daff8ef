"""The Textual design studio (``cnnshape tui``). Importing this package imports Textual."""

from .app import DesignApp, run

__all__ = ["DesignApp", "run"]
