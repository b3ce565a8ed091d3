"""Moved: supervised training is :mod:`pulse.methods.supervised`, beside the loop it runs on.

Transitional, and the model layer's one import of the methods: only
``pulse.protocol.scenarios.pebench`` still imports this name. Once it imports
``pulse.methods.supervised``, delete this module.
"""

from pulse.methods.supervised import TrainConfig, TrainStats, train_supervised

__all__ = ["TrainConfig", "TrainStats", "train_supervised"]
