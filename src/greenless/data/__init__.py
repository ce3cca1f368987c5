"""Training data: folder datasets in common matting layouts, background composition, targets, augmentation."""
