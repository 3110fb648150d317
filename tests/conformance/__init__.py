"""Conformance of robustaudits decoding with the frameworks own predictions."""
