"""docs/extending.md's worked examples, run exactly as the page writes them: a method, a metric
and a scenario, each registered from its own code block, then a protocol run that must show
all three in results.jsonl and in the report without any other file touched."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from pulse.methods import registry as method_registry
from pulse.protocol.config import parse_config
from pulse.protocol.metrics import unregister_metric
from pulse.protocol.registry import unregister_scenario
from pulse.protocol.results import RESULTS_FILE, read_results
from pulse.protocol.runner import run_protocol
from pulse.report import write_report

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "extending.md"
EXAMPLE = re.compile(r"<!-- example: (\w+) -->\n```python\n(.*?)```", re.DOTALL)


def examples() -> dict[str, str]:
    return dict(EXAMPLE.findall(GUIDE.read_text(encoding="utf-8")))


def test_the_guide_has_one_example_of_each():
    assert sorted(examples()) == ["method", "metric", "scenario"]


@pytest.fixture
def extended():
    """The three examples imported as modules; unregistered afterwards."""
    modules = {}
    for name, code in examples().items():
        module = types.ModuleType(f"pulse_example_{name}")
        sys.modules[module.__name__] = module  # dataclasses look their module up
        exec(compile(code, f"{GUIDE}:{name}", "exec"), module.__dict__)
        modules[name] = module
    yield modules
    for module in modules.values():
        sys.modules.pop(module.__name__, None)
    unregister_scenario("one_person")
    unregister_metric("people_known")
    method_registry._REGISTRY.pop("ga_bounded", None)


def test_examples_show_up_in_results_and_report(extended, mini_config, tmp_path):
    data = {
        **mini_config,
        "methods": [{"method": "ga_bounded", "params": {"ceiling": 6}}, {"method": "ga"}],
        "scenarios": {
            "finetuned": {"enabled": False, "people": 8},
            "pretrained": {"enabled": False},
            "sequential": {"enabled": False},
            "scope": {"enabled": False},
            "pebench": {"enabled": False},
            "one_person": {"enabled": True},
        },
    }
    config = parse_config(data)
    assert config.enabled() == ["one_person"]
    run_dir = tmp_path / "run"
    run_protocol(config, run_dir, progress=False)

    rows = read_results(run_dir / RESULTS_FILE)
    assert {r.scenario for r in rows} == {"one_person"}
    methods = {r.method for r in rows if r.status == "ok"}
    assert methods == {"before", "ga_bounded", "ga"}
    known = [r for r in rows if r.metric == "people_known"]
    # the example metric on the Full_Set splits and their Test_Set twins (generalisation)
    assert {r.split for r in known} == {"forget", "retain", "forget_test", "retain_test"}
    forget_before = next(
        r for r in known if r.method == "before" and r.split == "forget" and r.modality == "all"
    )
    assert forget_before.n == 1 and forget_before.value in (0.0, 1.0)
    assert all(r.low is not None and r.low <= r.value <= r.high for r in known)
    # The method contrast pairs the two methods on the same person and questions.
    assert any(r.metric == "contrast" and r.versus == "ga" for r in rows)

    files = write_report(run_dir)
    report = files.markdown.read_text(encoding="utf-8")
    assert "One person forgotten" in report
    assert "People known" in report
    assert "people known: Wilson interval over people" in report
    assert "Forgetting one person, " in report
    # Resuming reads every stage back: the same rows.
    run_protocol(config, run_dir, progress=False)
    assert read_results(run_dir / RESULTS_FILE) == rows


def test_example_method_validates_its_parameter(extended):
    from pulse.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match="ceiling"):
        parse_config({"methods": [{"method": "ga_bounded", "params": {"ceiling": -1}}]})
