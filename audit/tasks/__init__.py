"""Tasks: preprocessing per model spec, decoding of model outputs per convention, task metrics."""
