"""Corruptions of the blur family (filled in by the corruption engine work)."""
