"""Tiny random-weight GGUF models of the Gemma architectures that the real llama-server loads in milliseconds.

Written with the `gguf` package (llama.cpp's own writer). Shapes follow llama.cpp's LLM_ARCH_GEMMA3 tensors
(src/llama-model.cpp): numpy shapes are ggml's ne reversed, so token_embd is (n_vocab, n_embd). The output
projection is tied to token_embd, as in Gemma's own files. Printable pieces share one embedding direction and the
control and byte tokens the opposite one, so a reply is always printable text, never an early end of turn.
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
    layers: int = 6  # llama.cpp makes every sixth gemma3 layer global (set_swa_pattern(6)): one of each kind
    embedding: int = 64
    heads: int = 2
    kv_heads: int = 1
    head_dim: int = 32
    feed_forward: int = 128
    context: int = 131072
    sliding_window: int = 512


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


def write_gemma3(path: Path, shape: Shape = Shape(), seed: int = 0) -> Path:
    """Write a random-weight `gemma3` GGUF (f32) with an embedded SPM tokenizer and chat template; return path."""
    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocab()
    writer = gguf.GGUFWriter(str(path), "gemma3")
    writer.add_name("tiny-gemma3")
    writer.add_context_length(shape.context)
    writer.add_embedding_length(shape.embedding)
    writer.add_block_count(shape.layers)
    writer.add_feed_forward_length(shape.feed_forward)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.kv_heads)
    writer.add_key_length(shape.head_dim)
    writer.add_value_length(shape.head_dim)
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

    def weights(*dims: int, scale: float = 0.02) -> np.ndarray:
        return (rng.standard_normal(dims) * scale).astype(np.float32)

    direction = rng.standard_normal(shape.embedding).astype(np.float32)
    direction /= np.linalg.norm(direction)
    printable = np.array([t == NORMAL for t in types])
    embeddings = np.where(printable[:, None], direction, -direction) + weights(len(tokens), shape.embedding)
    writer.add_tensor("token_embd.weight", embeddings.astype(np.float32))
    writer.add_tensor("output_norm.weight", np.ones(shape.embedding, dtype=np.float32))
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    for layer in range(shape.layers):
        blk = f"blk.{layer}."
        for norm in ("attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"):
            writer.add_tensor(blk + norm + ".weight", np.ones(shape.embedding, dtype=np.float32))
        for norm in ("attn_q_norm", "attn_k_norm"):
            writer.add_tensor(blk + norm + ".weight", np.ones(shape.head_dim, dtype=np.float32))
        writer.add_tensor(blk + "attn_q.weight", weights(q, shape.embedding))
        writer.add_tensor(blk + "attn_k.weight", weights(kv, shape.embedding))
        writer.add_tensor(blk + "attn_v.weight", weights(kv, shape.embedding))
        writer.add_tensor(blk + "attn_output.weight", weights(shape.embedding, q))
        writer.add_tensor(blk + "ffn_gate.weight", weights(shape.feed_forward, shape.embedding))
        writer.add_tensor(blk + "ffn_up.weight", weights(shape.feed_forward, shape.embedding))
        writer.add_tensor(blk + "ffn_down.weight", weights(shape.embedding, shape.feed_forward))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


NORMAL = int(gguf.TokenType.NORMAL)
