"""Lab 2.2 — KV-cache arithmetic (reference solution)."""

from __future__ import annotations

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "fp8": 1, "fp8_e4m3": 1,
               "fp8_e5m2": 1}


def kv_bytes_per_token(config: dict, dtype: str) -> int:
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads      # absent: MHA
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    return 2 * config["num_hidden_layers"] * kv_heads * head_dim * DTYPE_BYTES[dtype]


def num_kv_blocks(config: dict, dtype: str, memory_bytes: int, block_size: int) -> int:
    return memory_bytes // (block_size * kv_bytes_per_token(config, dtype))


def max_concurrent_sequences(config: dict, dtype: str, memory_bytes: int, block_size: int,
                             seq_len: int) -> int:
    blocks_per_sequence = -(-seq_len // block_size)  # ceil: a partial block is a whole block
    return num_kv_blocks(config, dtype, memory_bytes, block_size) // blocks_per_sequence
