"""Queries compiled once per shape: ``organizations.prepared`` (docs/design.md §10), named
here too for the modules that import it from the sync app."""

from organizations.prepared import Prepared

__all__ = ["Prepared"]
