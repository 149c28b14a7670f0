"""Training: data and augmentation (:mod:`.data`), resumable state files (:mod:`.state`), the training loop with
DDP (:mod:`.loop`), v1 → v2 distillation (:mod:`.distill`) and the add-style loop (:mod:`.add_style`)."""
