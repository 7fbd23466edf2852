"""The e2e harness: a typed handle on the local control plane (e2e/cluster) and small helpers around it.

One job per module; import from the module that does the job:

- ``config``      PlaneConfig: where the plane lives, how it is built, whether it is stopped at the end
                  (the only place that reads GEMMA_E2E_* environment variables);
- ``plane``       Plane: start (or reuse a healthy one), connect, stop;
- ``waiting``     wait_for and condition waits, with a deadline and a clear message;
- ``tools``       the plane's own kubectl, helm and gemma-plane;
- ``namespaces``  throwaway namespaces and the Events in them;
- ``http``        GETs and JSON calls that never leave 127.0.0.0/8;
- ``simulator``   the serving simulator's control API;
- ``judge``       whether a live object is what a server-side apply of a manifest would make it.
"""
