"""`pulse eval`: evaluate one model (optionally with an adapter) on one data split.

Tasks:

- ``mcq`` — multiple choice on the split's profiles (MLLMU-Bench ``Classification_Task``), with
  the scorer named by ``scorer`` (``option_text`` default, ``letter``, ``generate``, ``mllmu``;
  see :mod:`pulse.eval.scorers`);
- ``cloze`` — fill in the blank (``Mask_Task``), substring verdict;
- ``gen`` — open generation (``Generation_Task``), ROUGE-1 / 2 / L F1 (records score ROUGE-L);
- ``mmbench`` — general capability on an MMBench TSV with CircularEval.

The split is an MLLMU-Bench config (``Full_Set``, ``forget_10``, ``Retain_Set`` ...) read from
``DATA/mllmu`` (a world directory) or ``DATA`` itself; ``mmbench`` reads ``DATA/mmbench/dev.tsv``,
or ``DATA`` when it is a TSV file. Every input is checked before the model is loaded.

The result is an :class:`EvalResult` whose ``to_dict`` is the JSON ``--out`` writes:
``{tasks: {name: {...summary..., records}}, meta: {...}}``; accuracy
summaries hold a tally (``n``, ``total``, ``mean``) overall, per modality, per entity and per
(entity, modality); ``intervals`` gives the 95 % interval ``[low, high]`` (or ``null``) of the
overall and per-modality means (a bootstrap over entities; MMBench: Wilson over questions, see
:mod:`pulse.eval.intervals`). The ``mllmu`` scorer's few-shot examples come from one fixed pool,
the ``Retain_Set`` / ``Full_Set`` profiles outside every ``forget_*`` config (``fewshot_pool``
overrides), never from the item's own entity: an item's prompt is the same in every split.

Re-exported here for one import: :func:`probe` (knowledge probing) and :func:`pebench_eval`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.table import Table
from rich.text import Text

from pulse.data.mllmu import list_configs, mllmu_root, profile_items, read_mllmu
from pulse.data.mmbench import MMBenchRow, mmbench_file, read_mmbench
from pulse.data.schema import ItemKind, QAItem
from pulse.errors import ConfigError, DataError, SettingError
from pulse.eval.generation import GenConfig, score_cloze, score_generation
from pulse.eval.intervals import Interval, person_bootstrap, wilson
from pulse.eval.mcq import MCQConfig, score_mcq
from pulse.eval.mmbench import GeneralResult, evaluate_mmbench
from pulse.eval.pebench import pebench_eval
from pulse.eval.probing import probe
from pulse.eval.records import ItemRecord, Summary, Tally, records_to_dicts, summarise
from pulse.eval.scorers import DEFAULT_SCORER, check_scorer
from pulse.eval.text_metrics import ROUGE_KEYS
from pulse.files import write_json
from pulse.versions import installed

__all__ = [
    "TASKS",
    "EvalResult",
    "TaskResult",
    "evaluate",
    "parse_tasks",
    "pebench_eval",
    "probe",
    "render_table",
]

TASKS = ("mcq", "cloze", "gen", "mmbench")
_KIND = {"mcq": ItemKind.MCQ, "cloze": ItemKind.CLOZE, "gen": ItemKind.GENERATION}
METRICS = ("circular", "vanilla")  # MMBench
Bounds = list[float] | None  # a 95 % interval as [low, high], or none


@dataclass(frozen=True)
class TaskResult:
    """One task of an evaluation: its per-item records and what they sum up to. ``summary``
    for the MLLMU-Bench tasks, ``general`` for MMBench; ``intervals`` by what they cover
    (``overall`` and each modality, or each MMBench metric)."""

    records: list[ItemRecord]
    intervals: dict[str, Bounds]
    summary: Summary | None = None
    scorer: str | None = None  # mcq and mmbench
    rouge: dict[str, Any] | None = None  # gen: mean ROUGE F1s overall and by modality
    general: GeneralResult | None = None  # mmbench
    file: str | None = None  # mmbench: the TSV read

    def to_dict(self) -> dict[str, Any]:
        if self.general is not None:
            return {"file": self.file, **self.general.to_dict(), "intervals": self.intervals}
        data: dict[str, Any] = {"scorer": self.scorer} if self.scorer is not None else {}
        if self.rouge is not None:
            data["rouge"] = self.rouge
        assert self.summary is not None
        return data | {
            "summary": self.summary.to_dict(),
            "intervals": self.intervals,
            "records": records_to_dicts(self.records),
        }

    def tally(self, modality: str | None = None) -> Tally | None:
        """Accuracy overall or in one modality (MLLMU-Bench tasks)."""
        if self.summary is None:
            return None
        return self.summary.overall if modality is None else self.summary.by_modality.get(modality)


@dataclass(frozen=True)
class EvalResult:
    """What ``pulse eval`` measured, task by task, and how (``meta``: model, data, settings,
    versions, seconds)."""

    tasks: dict[str, TaskResult]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": {k: t.to_dict() for k, t in self.tasks.items()}, "meta": self.meta}


def parse_tasks(tasks: str | Sequence[str]) -> list[str]:
    """``"mcq,cloze"`` or ``["mcq", "cloze"]`` -> the task names in the canonical order."""
    names = tasks.split(",") if isinstance(tasks, str) else list(tasks)
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise ConfigError(f"unknown task {unknown[0]!r}: expected some of {', '.join(TASKS)}")
    if not names:
        raise ConfigError(f"no task given: expected some of {', '.join(TASKS)}")
    return [t for t in TASKS if t in names]


def split_items(data_dir: str | Path, split: str | None) -> tuple[Path, list[QAItem]]:
    """The items of one MLLMU-Bench config; an unknown name lists the configs found."""
    root = mllmu_root(data_dir)
    configs = list_configs(root)
    if not split or split not in configs:
        found = ", ".join(configs) or "none"
        what = f"unknown split {split!r}" if split else "no split given"
        raise ConfigError(f"{what}: configs found under {root}: {found}")
    return root, [i for p in read_mllmu(root, split) for i in profile_items(p)]


def default_fewshot_pool(root: Path, exclude: Iterable[str] = ()) -> list[QAItem]:
    """MCQ items of ``Retain_Set`` / ``Full_Set`` profiles outside ``exclude`` and outside every
    ``forget_*`` config: the few-shot examples never show a forget answer. The pool does not
    depend on the split evaluated, so an item gets the same prompt in every split (an item's
    own entity is left out of its candidates: :func:`pulse.eval.generation.mllmu_prompts`)."""
    configs = list_configs(root)
    banned = set(exclude)
    for config in configs:
        if config.startswith("forget_"):
            banned |= {p.id for p in read_mllmu(root, config)}
    pool: dict[str, QAItem] = {}
    for config in ("Retain_Set", "Full_Set"):
        if config in configs:
            for p in read_mllmu(root, config):
                if p.id not in banned:
                    pool.update({i.id: i for i in profile_items(p) if i.kind is ItemKind.MCQ})
    return [pool[k] for k in sorted(pool)]


def check_sizes(batch_size: int, max_new_tokens: int = 50) -> None:
    """Both at least 1: a :class:`SettingError` naming the one that is not, and its value."""
    for name, value in (("batch_size", batch_size), ("max_new_tokens", max_new_tokens)):
        if value < 1:
            raise SettingError("evaluate", name, f"expected at least 1, got {value!r}")


def evaluate(
    model_dir: str | Path,
    data_dir: str | Path,
    split: str | None,
    tasks: str | Sequence[str],
    *,
    adapter: str | Path | None = None,
    scorer: str = DEFAULT_SCORER,
    batch_size: int = 32,
    out: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    max_new_tokens: int = 50,
    dtype: str = "auto",
    device: str | None = None,
    fewshot_pool: Sequence[QAItem] | None = None,
) -> EvalResult:
    """Run ``tasks`` and return the result; write its JSON atomically to ``out`` if given.

    ``device`` defaults to ``cuda`` when available. ``seed`` fixes the ``mllmu`` few-shot draw
    (every other scorer is deterministic by construction).
    """
    started = time.perf_counter()
    names = parse_tasks(tasks)
    check_scorer(scorer)
    check_sizes(batch_size, max_new_tokens)

    # Read and check every input before the (slow) model load.
    items: dict[str, list[QAItem]] = {}
    root = None
    if any(t in _KIND for t in names):
        root, everything = split_items(data_dir, split)
        for task in (t for t in names if t in _KIND):
            items[task] = [i for i in everything if i.kind is _KIND[task]]
            if not items[task]:
                raise DataError(root / str(split), f"this config has no items for task '{task}'")
    rows: list[MMBenchRow] = []
    mmbench_path = None
    if "mmbench" in names:
        mmbench_path = mmbench_file(data_dir)
        rows = read_mmbench(mmbench_path)
    pool = None
    if "mcq" in names and scorer == "mllmu":
        pool = list(fewshot_pool) if fewshot_pool is not None else None
        if pool is None and root is not None:
            pool = default_fewshot_pool(root)
        if not pool:
            raise ConfigError(
                "the mllmu scorer needs few-shot examples of entities outside the forget sets: "
                "none found (pass fewshot_pool)"
            )

    from pulse.models.loading import load_model_and_processor

    device = device or ("cuda" if torch.cuda.is_available() else None)
    model, processor = load_model_and_processor(
        model_dir, adapter=adapter, dtype=dtype, device=device
    )
    torch.manual_seed(seed)
    mcq_cfg = MCQConfig(batch_size, progress, scorer, max_new_tokens, seed)
    gen_cfg = GenConfig(batch_size, max_new_tokens, progress)
    runners: dict[str, Callable[[], TaskResult]] = {
        "mcq": lambda: _summarised(
            score_mcq(model, processor, items["mcq"], mcq_cfg, pool=pool), scorer=scorer
        ),
        "cloze": lambda: _summarised(score_cloze(model, processor, items["cloze"], gen_cfg)),
        "gen": lambda: _with_rouge(score_generation(model, processor, items["gen"], gen_cfg)),
        "mmbench": lambda: _with_wilson(
            evaluate_mmbench(model, processor, rows, mcq_cfg), str(mmbench_path)
        ),
    }
    results: dict[str, TaskResult] = {}
    seconds: dict[str, float] = {}
    for task in names:
        t0 = time.perf_counter()
        results[task] = runners[task]()
        seconds[task] = round(time.perf_counter() - t0, 3)

    result = EvalResult(
        results,
        {
            "model": str(model_dir),
            "adapter": None if adapter is None else str(adapter),
            "data": str(data_dir),
            "split": split,
            "tasks": names,
            "scorer": scorer,
            "seed": seed,
            "batch_size": batch_size,
            "max_new_tokens": max_new_tokens,
            "device": str(next(model.parameters()).device),
            "versions": installed(("pulse-unlearn", "torch", "transformers", "peft")),
            "task_seconds": seconds,
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
    if out is not None:
        write_json(out, result.to_dict())
    return result


def _summarised(records: list[ItemRecord], **extra: Any) -> TaskResult:
    by_modality = {
        m: _bounds(person_bootstrap(r for r in records if r.modality.value == m))
        for m in sorted({r.modality.value for r in records})
    }
    intervals = {"overall": _bounds(person_bootstrap(records)), **by_modality}
    return TaskResult(records, intervals, summarise(records), **extra)


def _with_wilson(general: GeneralResult, file: str) -> TaskResult:
    """MMBench's circular and vanilla accuracy with their Wilson intervals over questions."""
    tallies = {m: getattr(general, m) for m in METRICS}
    intervals = {m: _bounds(wilson(t.total, t.n)) for m, t in tallies.items()}
    return TaskResult(general.records, intervals, scorer=general.scorer, general=general, file=file)


def _bounds(interval: Interval | None) -> list[float] | None:
    return None if interval is None else [interval.low, interval.high]


def _with_rouge(records: list[ItemRecord]) -> TaskResult:
    """Generation: the ROUGE-L summary plus the mean of every ROUGE F1, overall and per
    modality: ``mean_k = (1/n) sum_i F1_k(i)``."""

    def means(group: list[ItemRecord]) -> dict[str, float | None]:
        n = len(group)
        return {k: (sum(r.extras[k] for r in group) / n if n else None) for k in ROUGE_KEYS}

    modalities = sorted({r.modality.value for r in records})
    rouge = {
        "overall": means(records),
        "by_modality": {
            m: means([r for r in records if r.modality.value == m]) for m in modalities
        },
    }
    return _summarised(records, rouge=rouge)


# --- terminal table ---------------------------------------------------------------------------


def render_table(result: EvalResult) -> Table:
    """One row per metric: overall, multimodal and text-only values, and the item count."""
    meta = result.meta
    # Text, not markup: a model path may hold square brackets.
    table = Table(title=Text(f"{meta.get('model', 'model')} on {meta.get('split') or 'MMBench'}"))
    for column in ("task", "metric", "overall", "multimodal", "text-only", "n"):
        table.add_column(column, justify="left" if column in ("task", "metric") else "right")
    tasks = result.tasks
    for name in ("mcq", "cloze"):
        if name in tasks:
            label = f"accuracy ({tasks[name].scorer})" if name == "mcq" else "accuracy"
            table.add_row(name, label, *_summary_cells(tasks[name]))
    if "gen" in tasks and tasks["gen"].rouge is not None:
        gen = tasks["gen"]
        rouge, by = gen.rouge, gen.rouge["by_modality"]
        n = str(gen.tally().n)  # type: ignore[union-attr]
        for key in ROUGE_KEYS:
            table.add_row(
                "gen",
                f"{key} F1",
                _pct(rouge["overall"][key]),
                _pct(by.get("multimodal", {}).get(key)),
                _pct(by.get("text", {}).get(key)),
                n,
            )
    if "mmbench" in tasks and tasks["mmbench"].general is not None:
        mm = tasks["mmbench"]
        for metric in METRICS:
            tally = getattr(mm.general, metric)
            table.add_row(
                "mmbench",
                f"{metric} ({mm.scorer})",
                _pct(tally.mean, mm.intervals.get(metric)),
                "-",
                "-",
                str(tally.n),
            )
    return table


def _summary_cells(task: TaskResult) -> list[str]:
    def mean(modality: str | None = None) -> float | None:
        tally = task.tally(modality)
        return tally.mean if tally else None

    overall = task.tally()
    return [
        _pct(mean(), task.intervals.get("overall")),
        _pct(mean("multimodal"), task.intervals.get("multimodal")),
        _pct(mean("text"), task.intervals.get("text")),
        str(overall.n if overall else 0),
    ]


def _pct(value: float | None, bounds: Bounds = None) -> str:
    """``93.5%``, with ``±`` half the 95 % interval when there is one."""
    if value is None:
        return "-"
    if not bounds:
        return f"{100 * value:.1f}%"
    return f"{100 * value:.1f}% ±{100 * Interval(*bounds).half_width:.1f}"
