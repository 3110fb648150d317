"""The model spec and its sources: metadata, --model-config, flags, timm and Ultralytics metadata, resolved by precedence."""
