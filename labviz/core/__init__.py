"""Layer 1, the core: :class:`Predictions`, argument checks, the disk cache and files."""
