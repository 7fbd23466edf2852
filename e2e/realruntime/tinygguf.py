"""Tiny random-weight GGUF models of the Gemma architectures that the real llama-server loads in milliseconds.

Written with the `gguf` package (llama.cpp's own writer). Shapes follow llama.cpp's tensors for LLM_ARCH_GEMMA3
and LLM_ARCH_GEMMA4 (src/models/gemma3.cpp, gemma4.cpp: load_arch_tensors): numpy shapes are ggml's ne reversed,
so token_embd is (n_vocab, n_embd). The output projection is tied to token_embd, as in Gemma's own files. Printable
pieces share one embedding direction and the control and byte tokens the opposite one, so a reply is always
printable text, never an early end of turn.

A Shape can carry a real Gemma model's attention (layer pattern, KV heads and head dims per layer kind, window,
shared-KV layers, K=V global layers) at a few layers and a small hidden size, so that the KV cache llama-server
allocates for it is the one it would allocate for that model's layers.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

# A Gemma-style chat template (the turn markers llama.cpp's template detection keys on).
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\\n'"
    " + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
CONTROL = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
PAD, EOS, BOS, UNK = range(4)


@dataclass(frozen=True)
class Shape:
    """A model's shape. kv_heads and head_dim are the sliding layers' (every layer's, in gemma3); the global_*
    fields, global_every, last_layer_global, kv_shared_layers and global_k_equals_v are written for gemma4 only:
    gemma3 files carry no layer pattern, llama.cpp fixes it (every sixth layer global)."""

    layers: int = 6  # llama.cpp makes every sixth gemma3 layer global (set_swa_pattern(6)): one of each kind
    embedding: int = 64
    heads: int = 2
    kv_heads: int = 1
    head_dim: int = 32
    feed_forward: int = 128
    context: int = 131072
    sliding_window: int = 512
    global_kv_heads: int = 1
    global_head_dim: int = 64
    global_every: int = 6
    last_layer_global: bool = True
    kv_shared_layers: int = 0
    global_k_equals_v: bool = False

    def is_global(self, layer: int) -> bool:
        """gemma4's layer kinds (0-based layer index), as the converter writes them from layer_types."""
        return (layer + 1) % self.global_every == 0 or (self.last_layer_global and layer == self.layers - 1)


def _vocab() -> tuple[list[str], list[float], list[int]]:
    tokens, scores, types = list(CONTROL), [0.0] * len(CONTROL), [gguf.TokenType.CONTROL] * len(CONTROL)
    types[UNK] = gguf.TokenType.UNKNOWN
    for byte in range(256):
        tokens.append(f"<0x{byte:02X}>")
        scores.append(0.0)
        types.append(gguf.TokenType.BYTE)
    # Every printable ASCII character is a piece of its own, so an ASCII prompt never falls back to bytes.
    for piece in ["\u2581", "\n", *(c for c in string.printable if c.isprintable() and c != " ")]:
        tokens.append(piece)
        scores.append(-float(len(tokens)))
        types.append(gguf.TokenType.NORMAL)
    return tokens, scores, [int(t) for t in types]


class _Writer:
    """The metadata, tokenizer and tensors the Gemma architectures share."""

    def __init__(self, path: Path, arch: str, shape: Shape, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.shape = shape
        tokens, scores, types = _vocab()
        self.gguf = writer = gguf.GGUFWriter(str(path), arch)
        writer.add_name(f"tiny-{arch}")
        writer.add_context_length(shape.context)
        writer.add_embedding_length(shape.embedding)
        writer.add_block_count(shape.layers)
        writer.add_feed_forward_length(shape.feed_forward)
        writer.add_head_count(shape.heads)
        writer.add_layer_norm_rms_eps(1e-6)
        writer.add_sliding_window(shape.sliding_window)
        writer.add_rope_freq_base(1_000_000.0)
        writer.add_file_type(gguf.LlamaFileType.ALL_F32)
        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_bos_token_id(BOS)
        writer.add_eos_token_id(EOS)
        writer.add_unk_token_id(UNK)
        writer.add_pad_token_id(PAD)
        writer.add_add_bos_token(True)
        writer.add_chat_template(CHAT_TEMPLATE)

        direction = self.rng.standard_normal(shape.embedding).astype(np.float32)
        direction /= np.linalg.norm(direction)
        printable = np.array([t == NORMAL for t in types])
        embeddings = np.where(printable[:, None], direction, -direction) + self.weights(len(tokens), shape.embedding)
        writer.add_tensor("token_embd.weight", embeddings.astype(np.float32))
        self.ones("output_norm.weight", shape.embedding)

    def weights(self, *dims: int, scale: float = 0.02) -> np.ndarray:
        return (self.rng.standard_normal(dims) * scale).astype(np.float32)

    def ones(self, name: str, size: int) -> None:
        self.gguf.add_tensor(name, np.ones(size, dtype=np.float32))

    def block(self, layer: int, head_dim: int, kv_heads: int, *, keys: bool, values: bool) -> None:
        """One transformer block: its attention (K and V projections only where asked) and its FFN."""
        shape, blk = self.shape, f"blk.{layer}."
        for norm in ("attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"):
            self.ones(blk + norm + ".weight", shape.embedding)
        self.ones(blk + "attn_q_norm.weight", head_dim)
        self.gguf.add_tensor(blk + "attn_q.weight", self.weights(shape.heads * head_dim, shape.embedding))
        if keys:
            self.ones(blk + "attn_k_norm.weight", head_dim)
            self.gguf.add_tensor(blk + "attn_k.weight", self.weights(kv_heads * head_dim, shape.embedding))
        if values:
            self.gguf.add_tensor(blk + "attn_v.weight", self.weights(kv_heads * head_dim, shape.embedding))
        self.gguf.add_tensor(blk + "attn_output.weight", self.weights(shape.embedding, shape.heads * head_dim))
        self.gguf.add_tensor(blk + "ffn_gate.weight", self.weights(shape.feed_forward, shape.embedding))
        self.gguf.add_tensor(blk + "ffn_up.weight", self.weights(shape.feed_forward, shape.embedding))
        self.gguf.add_tensor(blk + "ffn_down.weight", self.weights(shape.embedding, shape.feed_forward))

    def close(self) -> None:
        self.gguf.write_header_to_file()
        self.gguf.write_kv_data_to_file()
        self.gguf.write_tensors_to_file()
        self.gguf.close()


def write_gemma3(path: Path, shape: Shape = Shape(), seed: int = 0) -> Path:
    """Write a random-weight `gemma3` GGUF (f32) with an embedded SPM tokenizer and chat template; return path."""
    out = _Writer(path, "gemma3", shape, seed)
    out.gguf.add_head_count_kv(shape.kv_heads)
    out.gguf.add_key_length(shape.head_dim)
    out.gguf.add_value_length(shape.head_dim)
    for layer in range(shape.layers):
        out.block(layer, shape.head_dim, shape.kv_heads, keys=True, values=True)
    out.close()
    return path


def write_gemma4(path: Path, shape: Shape, seed: int = 0) -> Path:
    """Write a random-weight `gemma4` GGUF (f32), with the metadata convert_hf_to_gguf writes for Gemma 4
    (conversion/gemma.py, Gemma4Model.set_gguf_parameters): the layer pattern as an array, KV heads per layer,
    the global and sliding head dims, and the shared-KV layer count; the last kv_shared_layers blocks have no K or
    V projection of their own, and global blocks of a K=V model no V projection. No per-layer embeddings."""
    out = _Writer(path, "gemma4", shape, seed)
    pattern = [not shape.is_global(layer) for layer in range(shape.layers)]
    out.gguf.add_sliding_window_pattern(pattern)
    out.gguf.add_head_count_kv([shape.kv_heads if sliding else shape.global_kv_heads for sliding in pattern])
    out.gguf.add_key_length(shape.global_head_dim)
    out.gguf.add_value_length(shape.global_head_dim)
    out.gguf.add_key_length_swa(shape.head_dim)
    out.gguf.add_value_length_swa(shape.head_dim)
    out.gguf.add_rope_dimension_count(shape.global_head_dim)
    out.gguf.add_rope_dimension_count_swa(shape.head_dim)
    out.gguf.add_rope_freq_base_swa(10_000.0)
    out.gguf.add_shared_kv_layers(shape.kv_shared_layers)
    out.gguf.add_embedding_length_per_layer_input(0)
    # Proportional RoPE on the global layers: one tensor of frequency factors, shared by them all.
    out.ones("rope_freqs.weight", shape.global_head_dim // 2)
    owners = shape.layers - shape.kv_shared_layers
    for layer, sliding in enumerate(pattern):
        head_dim = shape.head_dim if sliding else shape.global_head_dim
        kv_heads = shape.kv_heads if sliding else shape.global_kv_heads
        owns_cache = layer < owners
        out.block(
            layer,
            head_dim,
            kv_heads,
            keys=owns_cache,
            values=owns_cache and (sliding or not shape.global_k_equals_v),
        )
    out.close()
    return path


NORMAL = int(gguf.TokenType.NORMAL)
