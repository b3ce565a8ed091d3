"""`train_supervised`'s settings: one clear error for a length or batch that cannot train.
(Training itself: the fixtures' taught model, the world's stages, and tests/models/
test_parallel_train.py for several processes.)"""

from __future__ import annotations

import pytest

from pulse.errors import ConfigError
from pulse.methods.supervised import TrainConfig


def test_a_training_length_or_batch_that_cannot_train_is_one_clear_error():
    with pytest.raises(ConfigError, match="'epochs': expected a finite number above 0, got -1"):
        TrainConfig(epochs=-1)
    for lr in (0, -1, float("inf"), float("nan")):  # -1 would train by gradient ascent
        with pytest.raises(ConfigError, match=r"^train 'learning_rate': expected a finite number"):
            TrainConfig(learning_rate=lr)
    with pytest.raises(ConfigError, match=r"'max_steps': expected -1 .* or at least 1, got 0"):
        TrainConfig(max_steps=0)
    with pytest.raises(ConfigError, match="'grad_accum': expected at least 1, got 0"):
        TrainConfig(grad_accum=0)
    with pytest.raises(ConfigError, match="'batch_size'"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="'pack_tokens': expected 0 or more, got -5"):
        TrainConfig(pack_tokens=-5)
    with pytest.raises(ConfigError, match="'encoding_cache_bytes': expected 0 or more, got -1"):
        TrainConfig(encoding_cache_bytes=-1)
    assert TrainConfig(epochs=0, max_steps=5).max_steps == 5  # max_steps decides then
