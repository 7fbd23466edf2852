"""The operator benchmark (`make bench`): throughput, latency, API writes, steady-state cost and memory."""
