"""Corruptions of the holdout family (filled in by the corruption engine work)."""
