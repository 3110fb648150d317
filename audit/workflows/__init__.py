"""Workflows above the core: the built-in demo, studies, the finetune -> export -> audit pipeline, pre-rendering."""
