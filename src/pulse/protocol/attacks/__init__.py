"""Attacks on model states (one module each): does a state's forgetting survive them?

- :mod:`~pulse.protocol.attacks.quantize`: the state, its adapter merged, quantized to 8 or 4
  bits (torchao on CPU, bitsandbytes on CUDA) and evaluated as it is;
- :mod:`~pulse.protocol.attacks.relearn`: a few LoRA fine-tuning steps on the training pairs
  of a seeded half of the forget people, then both halves asked again.

The robustness scenario (:mod:`pulse.protocol.scenarios.robustness`) runs them on the last
state of every method's request or chain, and on ``before`` and the oracle alike.
"""
