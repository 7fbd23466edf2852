"""servingsim: a test double for the serving containers of simulated pods.

It watches Pods through the real Kubernetes API server and, for each Running pod
whose IP is in 127.0.0.0/8, answers HTTP at podIP:containerPort in the wire format
of the runtime the pod runs (TGI, vLLM or llama.cpp).  Tests set each pod's load
through a small control API.  Nothing binds to or talks to addresses outside
127.0.0.0/8.

Run it as ``python -m servingsim --kubeconfig K --control 127.0.0.1:PORT --state-dir DIR``
with ``e2e`` on PYTHONPATH.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
