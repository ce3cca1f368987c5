"""Training: MODNet losses, TOML configs, the supervised trainer (single CPU to torchrun DDP) and SOC."""
