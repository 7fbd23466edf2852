"""gemma-operator: run Google's Gemma models on Kubernetes."""
