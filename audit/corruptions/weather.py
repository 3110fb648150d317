"""Corruptions of the weather family (filled in by the corruption engine work)."""
