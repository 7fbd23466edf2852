"""Every default has one source, the models and dataclasses, and the command line takes its defaults from them."""

from __future__ import annotations

import json
from dataclasses import fields

from gemma_docgen.autoscaling_page import tuning_table
from gemma_operator.api import AutoscalingSpec
from gemma_operator.autoscaling.benchmark import default_policy
from gemma_operator.autoscaling.simulation import SimulationConfig
from gemma_operator.cli import parser
from gemma_operator.cli.commands import run_options
from gemma_operator.reconcile.run import Options

# simulate-autoscaling's options (argument dest) as the SimulationConfig fields they set.
SIMULATION_OPTIONS = {
    "variant": "variant",
    "precision": "precision",
    "accelerator": "accelerator",
    "max_context_tokens": "max_context_tokens",
    "max_concurrent_sequences": "max_concurrent_sequences",
    "startup_seconds": "startup_seconds",
    "slo_ttft_seconds": "slo_ttft_seconds",
    "slo_tpot_seconds": "slo_tpot_seconds",
    "min_replicas": "min_replicas",
    "max_replicas": "max_replicas",
    "scrape_seconds": "scrape_seconds",
}


def test_run_without_options_starts_the_operator_with_the_options_defaults() -> None:
    assert run_options(parser().parse_args(["run"])) == Options()


def test_run_options_given_replace_the_defaults() -> None:
    args = ["run", "-n", "ml", "-n", "research", "--liveness", "", "--metrics-port", "0", "--log-format", "json"]
    args += ["--autoscaling-interval", "5", "--leader-election-lease", "gemma", "-v"]
    args += ["--leader-election-namespace", "gemma-system"]
    assert run_options(parser().parse_args(args)) == Options(
        namespaces=("ml", "research"),
        leader_election_lease="gemma",
        leader_election_namespace="gemma-system",
        liveness=None,
        metrics_port=None,
        autoscaling_interval=5.0,
        json_logs=True,
        verbose=True,
    )
    assert run_options(parser().parse_args(["run", "-n", "ml", "--all-namespaces"])).namespaces == ()


def test_simulate_autoscaling_defaults_are_the_simulation_defaults() -> None:
    args = vars(parser().parse_args(["simulate-autoscaling", "--trace", "step"]))
    defaults = SimulationConfig()
    assert set(SIMULATION_OPTIONS.values()) == {field.name for field in fields(SimulationConfig)}
    assert {field: args[dest] for dest, field in SIMULATION_OPTIONS.items()} == {
        field: getattr(defaults, field) for field in SIMULATION_OPTIONS.values()
    }


def test_the_simulated_autoscaler_runs_with_the_spec_defaults() -> None:
    config = SimulationConfig()
    assert config.min_replicas == AutoscalingSpec().min_replicas
    policy = default_policy(config)
    bounds = {"enabled", "min_replicas", "max_replicas"}
    assert policy.spec.model_dump(exclude=bounds) == AutoscalingSpec().model_dump(exclude=bounds)
    assert policy.target_in_flight_per_replica == config.target_in_flight_per_replica


def test_the_tuning_table_shows_every_knob_with_the_spec_default() -> None:
    rows = [line.split(" | ")[:2] for line in tuning_table().splitlines()[2:]]
    shown = {
        name: value
        for names, values in rows
        for name, value in zip(names.strip("| ").split(", "), values.split(", "), strict=True)
    }
    defaults = AutoscalingSpec().model_dump(by_alias=True, exclude={"enabled"})
    assert set(shown) == set(defaults)
    assert {name: value for name, value in shown.items() if defaults[name] is not None} == {
        name: json.dumps(default) for name, default in defaults.items() if default is not None
    }
