"""allocators: one pure module per runtime that mirrors how that runtime, at a given version, sizes its KV cache.

Each module (vllm, tgi, llamacpp) turns a model's attention shape, the knobs the plan sets on the
runtime's command line, and the memory left for the cache into the figures the runtime itself computes
and logs. The version's rules come from catalog.versions, each fact with the upstream file it was read from.
"""

from gemma_operator.planning.allocators.base import Knobs, KvAccounting

__all__ = ["Knobs", "KvAccounting"]
