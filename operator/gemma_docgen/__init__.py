"""gemma_docgen: writes the repository's generated files (CRD copies, docs pages, plots, the kustomize base).

A development tool, not part of the wheel: it may import gemma_operator, and gemma_operator never imports it.
"""
