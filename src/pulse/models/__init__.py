"""Models: load any local HF image-text-to-text checkpoint, build the tiny LLaVA, format chats
with answer-only labels, and choose which parameters move (update scope, LoRA adapters)."""
