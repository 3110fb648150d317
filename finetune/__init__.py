"""Fine-tuning of ImageNet backbones per downstream task (classification, detection, segmentation)."""
