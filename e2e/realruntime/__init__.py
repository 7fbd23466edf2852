"""Real serving runtimes in the e2e loop: llama-server unpacked from Debian, tiny GGUF models to load in it."""
