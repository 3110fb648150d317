"""The `audit` command line: a click group with one module per command.

Commands are imported lazily, so `audit --help` and `audit run` start fast and need no torch.
"""
