"""Fine-tuning of ImageNet backbones per downstream task (classification, detection, segmentation).

Public API (torch, torchvision, timm: the `train` extra; never imports the CLI):

- `finetune.config.FinetuneConfig`: one run's settings; `None` fields take the paper's defaults.
- `finetune.train.run_finetune(config) -> Path`: train, evaluate, write OUT/checkpoint.pt.
- `finetune.models.build_model(model_cfg) -> nn.Module`: rebuild checkpoint["model"] (no download).
- `finetune.checkpoint.load_checkpoint(path) -> dict`: read a checkpoint, CheckpointError otherwise.
- `finetune.weights.load_backbone_weights(body, path) -> dict`: published robust backbone weights.
- `finetune.augment.prime`, `finetune.augment.augmix`: augmentations on [0,1] batches.
"""
