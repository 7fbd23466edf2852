"""probes: HTTP I/O against serving pods (metrics scrapes, smoke checks). No Kubernetes client here."""
