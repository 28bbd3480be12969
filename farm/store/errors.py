"""The store's one error: a database, record or run that the store refuses."""

from __future__ import annotations


class ResultsError(ValueError):
    """A record or run that the store refuses (unknown run, bad status or kind), or a
    database it cannot open (not a URL, no driver, cannot connect)."""
