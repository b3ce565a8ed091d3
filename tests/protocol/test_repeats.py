"""Repeats: every request trained under several seeds, pooled into the cell's rows."""

from __future__ import annotations

import json

import pytest

from pulse.protocol.config import parse_config
from pulse.protocol.results import PATH_SUMMARIES, RESULTS_FILE, read_results
from pulse.protocol.runner import run_protocol
from pulse.report import headline_table, write_report


def repeated(mini_config, **scenarios):
    config = {**mini_config, "repeats": 2, "methods": [{"method": "ga"}]}
    config["scenarios"] = {
        name: {"enabled": False}
        for name in ("finetuned", "pretrained", "sequential", "scope", "pebench")
    } | scenarios
    return config


def by_repeat(rows, cell):
    """The cell's results by repeat (not its path along the request, nor the comparison at
    matched forgetting, which pools every seed's path into one row)."""
    out: dict = {}
    for r in rows:
        if r.cell == cell and r.step is None and r.metric not in PATH_SUMMARIES:
            out.setdefault(r.repeat, {})[(r.split, r.modality, r.metric)] = r
    return out


@pytest.mark.slow  # the heaviest of its kind (2-core suite time): pytest -m slow
def test_repeats_pool_the_seeds_and_the_first_seed_is_the_plain_run(mini_config, tmp_path):
    config = repeated(
        mini_config,
        finetuned={"people": 6},
        sequential={"requests": 2},
    )
    store = run_protocol(parse_config(config), tmp_path / "run", progress=False)
    rows = read_results(store.root / RESULTS_FILE)
    ft = by_repeat(rows, ("finetuned", "ga", "", 1))
    assert set(ft) == {None, 0, 1}
    for key in (("forget", "all", "accuracy"), ("retain", "text", "accuracy")):
        pooled, seeds = ft[None][key], [ft[0][key], ft[1][key]]
        assert pooled.seeds == 2 and all(s.seeds == 1 for s in seeds)
        assert pooled.value == pytest.approx((seeds[0].value + seeds[1].value) / 2)
        assert pooled.low <= pooled.value <= pooled.high
        assert pooled.change_low is not None
    # General capability pools over seeds and questions, vanilla as well as circular.
    for metric in ("circular", "vanilla"):
        pooled = ft[None][("general", "all", metric)]
        assert pooled.low <= pooled.value <= pooled.high, metric
    general = ft[None][("general", "all", "circular")]
    assert general.value == pytest.approx(
        sum(ft[r][("general", "all", "circular")].value for r in (0, 1)) / 2
    )
    # The before row never repeats: nothing trains.
    assert set(by_repeat(rows, ("finetuned", "before", "", 0))) == {None}

    # Each seed has its own request (seed and seed + 1), evaluated on the same people.
    manifest = json.loads((store.root / "manifest.json").read_text())
    stages = manifest["stages"]
    assert {"finetuned/ga/repeat-0", "finetuned/ga/repeat-1", "finetuned/ga"} <= set(stages)
    trained = [stages[f"finetuned/ga/repeat-{r}"]["request"] for r in (0, 1)]
    seeds = [
        json.loads((store.root / "requests" / t / "result.json").read_text())["seed"]
        for t in trained
    ]
    assert seeds == [0, 1]

    # Sequential: a chain per seed, every request pooled, the gap pooled over the seeds'
    # own gaps (each seed's request K against the same seed's one batch).
    last = by_repeat(rows, ("sequential", "ga", "sequential", 2))
    gap = ("forget", "all", "gap")
    assert last[None][gap].value == pytest.approx((last[0][gap].value + last[1][gap].value) / 2)
    assert last[None][("forgotten", "all", "accuracy")].seeds == 2

    # The report shows the pooled values and says what they are.
    files = write_report(store.root)
    assert "mean over 2 training seeds" in files.markdown.read_text()
    assert "means over 2 training seeds" in str(headline_table(store.root).title)
    csv = (store.root / "tables" / "finetuned.csv").read_text().splitlines()
    header, ga = csv[0].split(","), next(line for line in csv if line.startswith("ga,"))
    values = dict(zip(header, ga.split(","), strict=True))
    forget = sorted(ft[r][("forget", "multimodal", "accuracy")].value for r in (0, 1))
    assert values["forget_multimodal_seeds"] == "2"
    assert float(values["forget_multimodal_seed_low"]) == pytest.approx(forget[0] * 100, abs=0.005)
    assert float(values["forget_multimodal_seed_high"]) == pytest.approx(forget[1] * 100, abs=0.005)

    # The first seed's rows are those of a run without repeats.
    plain = run_protocol(parse_config({**config, "repeats": 1}), tmp_path / "plain", progress=False)
    alone = by_repeat(read_results(plain.root / RESULTS_FILE), ("finetuned", "ga", "", 1))
    assert set(alone) == {None}
    assert {k: r.value for k, r in alone[None].items()} == {k: r.value for k, r in ft[0].items()}


def test_a_seed_that_fails_leaves_the_others_pooled(mini_config, tmp_path, monkeypatch):
    import pulse.methods.request as request_module

    real = request_module.run_request

    def second_seed_fails(*args, **kwargs):
        if kwargs.get("seed") == 1 and args[3] == "npo":
            raise RuntimeError("out of memory (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(request_module, "run_request", second_seed_fails)
    config = repeated(mini_config, finetuned={"people": 4})
    config["methods"] = [{"method": "ga"}, {"method": "npo"}]
    store = run_protocol(parse_config(config), tmp_path / "run", progress=False)
    rows = read_results(store.root / RESULTS_FILE)
    npo = by_repeat(rows, ("finetuned", "npo", "", 1))
    assert npo[1][("", "all", "status")].status == "failed"
    assert npo[None][("forget", "all", "accuracy")].seeds == 1
    assert (
        npo[None][("forget", "all", "accuracy")].value
        == npo[0][("forget", "all", "accuracy")].value
    )
    assert (
        by_repeat(rows, ("finetuned", "ga", "", 1))[None][("forget", "all", "accuracy")].seeds == 2
    )
    text = write_report(store.root).markdown.read_text()
    assert "fewer than 2 training seeds finished for npo (1)" in text


@pytest.mark.slow  # the heaviest of its kind (2-core suite time): pytest -m slow
def test_an_interrupted_run_with_repeats_resumes_to_the_same_rows(mini_config, tmp_path):
    from pulse.protocol.runner import Interrupt

    config = parse_config(repeated(mini_config, sequential={"requests": 2, "batch": False}))
    whole = run_protocol(config, tmp_path / "whole", progress=False)
    # Stopped inside the first request's seeds: repeat-0 done, repeat-1 and the pooling not.
    with pytest.raises(Interrupt):
        run_protocol(config, tmp_path / "stopped", progress=False, stop_after=2)
    stages = json.loads((tmp_path / "stopped" / "manifest.json").read_text())["stages"]
    assert set(stages) == {"sequential/before", "sequential/sequential/ga/1/repeat-0"}
    resumed = run_protocol(config, tmp_path / "stopped", progress=False)

    def measured(store):
        return {
            r.key: (r.value, r.low, r.high, r.change_low, r.change_high, r.seeds)
            for r in read_results(store.root / RESULTS_FILE)
        }

    assert measured(resumed) == measured(whole)
    assert any(r.repeat == 1 for r in read_results(whole.root / RESULTS_FILE))
