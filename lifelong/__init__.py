"""lifelong: continual learning for language models without catastrophic forgetting."""

__version__ = "0.1.0"
