"""The operator's census: GemmaDeployments counted by what their status says, and each one's replicas."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from gemma_operator.reconcile.metrics import Census, Standing


def samples(census: Census) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(census)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def test_the_census_counts_deployments_and_reports_each_ones_replicas_until_forgotten() -> None:
    census = Census()
    census.record(("ml", "chat"), Standing("31b", "vllm", "gpu", "False", replicas=3, ready_replicas=1))
    census.record(("ml", "edge"), Standing("e2b", "llamacpp", "edge", "True", replicas=2, ready_replicas=2))
    census.record(("ml", "chat"), Standing("31b", "vllm", "gpu", "True", replicas=3, ready_replicas=3))
    found = samples(census)
    chat = (("name", "chat"), ("namespace", "ml"))
    assert found[("gemma_operator_gemmadeployment_replicas", chat)] == 3
    assert found[("gemma_operator_gemmadeployment_ready_replicas", chat)] == 3
    ready = (("ready", "True"), ("runtime", "vllm"), ("target", "gpu"), ("variant", "31b"))
    assert found[("gemma_operator_gemmadeployments", ready)] == 1
    assert sum(v for (name, _), v in found.items() if name == "gemma_operator_gemmadeployments") == 2

    census.forget(("ml", "chat"))
    assert not [key for key in samples(census) if key[1] == chat]
    assert samples(census)[("gemma_operator_gemmadeployment_replicas", (("name", "edge"), ("namespace", "ml")))] == 2
