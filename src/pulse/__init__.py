"""pulse: run and evaluate machine unlearning on large multimodal models."""

import os

# Offline by default, for real: huggingface_hub reads these once, when it is first imported,
# so they are set here, before any pulse module imports transformers (setting them at model
# load time came too late). local_files_only stays on every load as well.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

__version__ = "0.1.0"
