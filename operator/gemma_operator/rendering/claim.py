"""The weight cache: the claim the serving pods mount, and the PersistentVolumeClaim the operator creates."""

from __future__ import annotations

from gemma_operator.api import CacheSpec, GemmaDeployment
from gemma_operator.rendering.identity import Identity, Manifest
from gemma_operator.rendering.names import child_name


def cache_claim_name(gd: GemmaDeployment) -> str:
    """The name of the weight-cache claim the operator creates when spec.serving.cache has a size."""
    return child_name(gd.metadata.name, "cache")


def claim_to_create(gd: GemmaDeployment) -> CacheSpec | None:
    """spec.serving.cache when it asks for a claim the operator creates (it has a size)."""
    cache = gd.spec.serving.cache
    return cache if cache is not None and cache.size else None


def mounted_claim(gd: GemmaDeployment) -> str:
    """The claim the serving pods mount, the user's or the created one; empty: none (an emptyDir)."""
    cache = gd.spec.serving.cache
    if cache is None:
        return ""
    return cache.claim_name or cache_claim_name(gd)


def persistent_volume_claim(identity: Identity, gd: GemmaDeployment, cache: CacheSpec) -> Manifest:
    spec: Manifest = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": cache.size}}}
    # Without a class, the cluster's default one.
    if cache.storage_class_name:
        spec["storageClassName"] = cache.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": identity.metadata(cache_claim_name(gd)),
        "spec": spec,
    }
