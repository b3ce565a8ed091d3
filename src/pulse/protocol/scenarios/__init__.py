"""The built-in scenarios, one module each; importing this package registers them in the order
they run and their tables appear: fine-tuned knowledge, pre-trained knowledge, sequential
requests, update scope, PEBench person / event targets, then robustness (attacks on the states the
others left)."""

from pulse.protocol.scenarios import finetuned, pretrained, sequential, scope, pebench  # noqa: F401, I001
from pulse.protocol.scenarios import robustness  # noqa: F401  (last: it attacks the others' states)
