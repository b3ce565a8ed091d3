"""The evaluator: prompts, answer extraction, verdicts, metrics and their aggregation.

The modules here are pure functions over responses, logits and per-item records; the code that
drives a model (batched forwards, generation) builds on them.
"""
