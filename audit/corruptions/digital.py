"""Corruptions of the digital family (filled in by the corruption engine work)."""
