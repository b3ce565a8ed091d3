"""Unlearning methods: one contract (a pure loss over forget / retain / idk sub-batches and a
reference context), a registry of methods, and one training loop for all of them.

Importing this package registers every method; see :func:`list_methods`.
"""

from pulse.methods import (  # noqa: F401  (each module registers its method)
    ga,
    ga_kl,
    gd,
    idk,
    idk_dpo,
    kl_min,
    manu,
    mmunlearner,
    npo,
    rmu,
    simnpo,
    siu,
    viker,
)
from pulse.methods.base import MethodContext, UnlearnBatch, answer_tokens
from pulse.methods.batches import REFUSALS, UnlearnCollator, UnlearnData, refusal_for
from pulse.methods.registry import (
    Method,
    MethodInfo,
    ParamInfo,
    format_methods,
    get_method,
    list_methods,
    method_names,
    register,
)
from pulse.methods.request import RequestResult, load_unlearned, run_unlearning
from pulse.methods.trainer import Diverged, LoopConfig, LoopResult, UnlearnTrainer, train_method

__all__ = [
    "REFUSALS",
    "Diverged",
    "LoopConfig",
    "LoopResult",
    "Method",
    "MethodContext",
    "MethodInfo",
    "ParamInfo",
    "RequestResult",
    "UnlearnBatch",
    "UnlearnCollator",
    "UnlearnData",
    "UnlearnTrainer",
    "answer_tokens",
    "format_methods",
    "get_method",
    "list_methods",
    "load_unlearned",
    "method_names",
    "refusal_for",
    "register",
    "run_unlearning",
    "train_method",
]
