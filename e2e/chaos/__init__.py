"""The chaos suite's helpers (e2e/test_chaos.py): faults injected into a plane of its own, and fleet audits."""
