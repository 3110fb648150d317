"""Corruptions of the noise family (filled in by the corruption engine work)."""
