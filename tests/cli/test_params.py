"""Stage parameters: one definition drives the CLI options, pipeline validation and provenance."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
import h5py
import pytest
import typer

from neurodyn.analysis.params import CompareParams
from neurodyn.params import ParamError, StageParams, plain
from neurodyn.pipeline import BUILTIN_STAGES, load_pipeline
from neurodyn.simulate import simulate_calcium

PARAMS = {name: d.params for name, d in BUILTIN_STAGES.items() if d.params is not None}
# commands built from a Params class that are not pipeline stages
PARAMS["compare-connectome"] = CompareParams


def _command(name: str) -> click.Command:
    from neurodyn.cli import app

    return typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]


def test_every_cli_default_equals_its_params_default() -> None:
    import neurodyn.cli  # noqa: F401 (builds every command)
    from neurodyn.cli.options import STAGE_COMMANDS

    assert len(STAGE_COMMANDS) >= 8
    assert {"ingest", "preprocess", "affinity", "factorize", "communities", "states",
            "bicluster", "compare-connectome"} <= set(PARAMS)
    # every command built from a Params class is checked here
    assert set(STAGE_COMMANDS) <= set(PARAMS.values()), set(STAGE_COMMANDS) - set(PARAMS.values())
    for stage, cls in PARAMS.items():
        options = {p.name: p for p in _command(stage).params}
        for spec in cls.specs():
            if not spec.cli:
                continue
            assert spec.name in options, f"{stage}: no option for {spec.name}"
            default = options[spec.name].default
            expected = plain(spec.default)
            # what the option gives when not set, read by the Params class, is the Params default
            assert plain(spec.validate(default)) == expected, (stage, spec.name, default, expected)
            if isinstance(expected, (bool, int, float)) and not isinstance(default, str):
                assert default == expected and type(default) is type(expected), (stage, spec.name)
            assert options[spec.name].opts[0] == (spec.flag or spec.option).split("/")[0]
        # each flag is the TOML key with dashes: CLI and pipeline share one vocabulary
        for spec in cls.specs():
            if spec.flag is None:
                assert spec.option == "--" + spec.name.replace("_", "-")


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    from neurodyn.io.store import write_recordings

    recs, _ = simulate_calcium(n_animals=2, n_neurons=6, n_frames=80, fs=4.0, n_groups=2,
                               missing_fraction=0.0, noise=0.1, seed=1)
    return write_recordings(tmp_path / "rec.h5", recs)


CASES = [  # stage, flag, value (TOML syntax), expected problem
    ("factorize", "--heldout", "1.5", "must be > 0 and < 1, got 1.5"),
    ("factorize", "--max-iter", "-5", "must be >= 1, got -5"),
    ("factorize", "--rank", "0", "must be >= 1 or 'auto', got 0"),
    ("affinity", "--window", "inf", "must be a finite number, got inf"),
    ("affinity", "--kernel", '"nope"', "must be one of differential, pearson, gaussian, got 'nope'"),
    ("states", "--max-iter", "-5", "must be >= 1, got -5"),
    ("states", "--test-fraction", "1.0", "must be >= 0 and < 1, got 1"),
    ("bicluster", "--iters", "0", "must be >= 1, got 0"),
    ("bicluster", "--burn-in", "2000", "must be < iters (2000), got 2000"),
    ("bicluster", "--likelihood", '"zip"', "must be one of nb, poisson, got 'zip'"),
    ("communities", "--restarts", "0", "must be >= 1, got 0"),
]
UPSTREAM = {"affinity": "", "factorize": "[stages.affinity]\n", "states": "", "bicluster": "",
            "communities": "[stages.affinity]\n[stages.factorize]\n"}


@pytest.mark.parametrize("stage,flag,value,problem", CASES)
def test_toml_set_and_flag_give_the_same_message(tmp_path: Path, recordings: Path, cli, stage: str,
                                                 flag: str, value: str, problem: str) -> None:
    key = flag[2:].replace("-", "_")
    res = cli(stage, recordings, "--out", tmp_path / "o.h5", flag, value.strip('"'))
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1] == f"error: {flag}: {problem}"
    assert not (tmp_path / "o.h5").exists()

    spec = tmp_path / "p.toml"
    after = UPSTREAM[stage]
    spec.write_text(f'[pipeline]\ninputs = ["{recordings}"]\n[stages.ingest]\n{after}'
                    f"[stages.{stage}]\n{key} = {value}\n")
    res = cli("config", "show", spec)
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1] == f"error: {spec}: [stages.{stage}] {key}: {problem}"
    spec.write_text(f'[pipeline]\ninputs = ["{recordings}"]\n[stages.ingest]\n{after}[stages.{stage}]\n')
    res = cli("config", "show", spec, "--set", f"{stage}.{key}={value}")
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1] == f"error: --set: {stage}.{key}: {problem}"


def test_former_names_are_accepted_with_a_warning(tmp_path: Path, recordings: Path, caplog) -> None:
    spec = tmp_path / "p.toml"
    spec.write_text(f'[pipeline]\ninputs = ["{recordings}"]\n[stages.ingest]\n[stages.affinity]\n'
                    '[stages.factorize]\ntolerance = 0.3\n')
    pipe = load_pipeline(spec)
    assert pipe.stages["factorize"].params["slack"] == 0.3
    assert "tolerance" not in pipe.stages["factorize"].params
    assert "former name" in caplog.text
    spec.write_text(f'[pipeline]\ninputs = ["{recordings}"]\n[stages.ingest]\n[stages.affinity]\n'
                    '[stages.factorize]\nslackk = 0.3\n')
    with pytest.raises(Exception, match="no parameter 'slackk'"):
        load_pipeline(spec)


def test_former_bin_valued_keys_warn_and_stay_in_bins(tmp_path: Path, recordings: Path,
                                                      caplog) -> None:
    spec = tmp_path / "p.toml"
    spec.write_text(f'[pipeline]\ninputs = ["{recordings}"]\n[stages.ingest]\n'
                    '[stages.states]\nlags = 4\ndecay = 0.5\n')
    params = load_pipeline(spec).stages["states"].params
    assert (params["lags"], params["history"], params["decay"]) == (4, None, 0.5)
    assert "[stages.states] lags (in bins) is deprecated" in caplog.text


def test_params_validate_on_construction_and_print_plain() -> None:
    cls = PARAMS["affinity"]
    p = cls(window=10, recordings="a, b")
    assert p.window == 10.0 and isinstance(p.window, float) and p.recordings == ("a", "b")
    assert p.to_dict()["kernel"] == "differential" and p.to_dict()["recordings"] == ["a", "b"]
    assert json.loads(json.dumps(p.to_dict())) == p.to_dict()
    for bad in (dict(window=0), dict(window=math.nan), dict(smooth=True), dict(fs="fast")):
        with pytest.raises(ParamError) as exc:
            cls(**bad)
        assert exc.value.name == next(iter(bad)) and "--" not in exc.value.problem
    with pytest.raises(ParamError, match="unknown parameter"):
        cls.build(windw=3)
    assert issubclass(cls, StageParams) and cls.build(p, step=2.0).step == 2.0


def test_provenance_is_strict_json(tmp_path: Path, recordings: Path, cli) -> None:
    from neurodyn.provenance import to_json

    assert json.loads(to_json({"x": math.inf, "y": [math.nan]})) == {"x": "inf", "y": ["nan"]}
    out = tmp_path / "ingested.h5"
    assert cli("ingest", recordings, "--out", out, "--fs", "2").exit_code == 0
    with h5py.File(out, "r") as f:
        params = json.loads(f.attrs["parameters"], parse_constant=lambda c: pytest.fail(c))
    assert params == {**PARAMS["ingest"].defaults(), "fs": 2.0}
