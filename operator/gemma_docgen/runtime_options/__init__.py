"""runtime_options: each runtime's argument parser, read from its source at a version, as a table of its options.

`make refresh-runtime-facts` runs `python -m gemma_docgen.runtime_options`, which writes
operator/gemma_operator/catalog/versions/flags/<runtime>-<version>.yaml. No runtime is imported or run:
vLLM's wheel is read with `ast`, TGI's launcher (Rust, clap) and llama.cpp's common/arg.cpp as text.
"""
