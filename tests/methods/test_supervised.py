"""`train_supervised`'s settings: one clear error for a length or batch that cannot train.
(Training itself: the fixtures' taught model, the world's stages, and tests/models/
test_parallel_train.py for several processes.)"""

from __future__ import annotations

import pytest

from pulse.errors import ConfigError
from pulse.methods.supervised import TrainConfig


def test_a_training_length_or_batch_that_cannot_train_is_one_clear_error():
    with pytest.raises(ConfigError, match="'epochs': expected a positive number, got -1"):
        TrainConfig(epochs=-1)
    with pytest.raises(ConfigError, match="'batch_size'"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="'pack_tokens': expected 0 or more, got -5"):
        TrainConfig(pack_tokens=-5)
    with pytest.raises(ConfigError, match="'encoding_cache_bytes': expected 0 or more, got -1"):
        TrainConfig(encoding_cache_bytes=-1)
    assert TrainConfig(epochs=0, max_steps=5).max_steps == 5  # max_steps decides then
