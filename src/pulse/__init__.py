"""pulse: run and evaluate machine unlearning on large multimodal models."""

__version__ = "0.1.0"
