"""Lab 2.2 — KV-cache arithmetic. Complete the three functions below (see README.md).

`config` is a model's Hugging Face config as a dict (what config.json holds), e.g.
{"hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
 "num_hidden_layers": 32, ...}. `dtype` names the KV cache's element type: "float32",
"float16", "bfloat16", "fp8", "fp8_e4m3" or "fp8_e5m2". Every function returns an int.
"""

from __future__ import annotations


def kv_bytes_per_token(config: dict, dtype: str) -> int:
    """Bytes of KV cache one token takes, over all layers.

    TODO: K and V, for every layer, for every KV head, head_dim values each. With grouped-
    query attention (GQA) there are fewer KV heads (num_key_value_heads) than query heads;
    a config without num_key_value_heads has one KV head per query head. A config without
    head_dim (or with head_dim null) has head_dim = hidden_size // num_attention_heads.
    """
    raise NotImplementedError("kv_bytes_per_token: TODO")


def num_kv_blocks(config: dict, dtype: str, memory_bytes: int, block_size: int) -> int:
    """How many PagedAttention blocks of `block_size` tokens fit in `memory_bytes`.

    TODO: a block holds block_size tokens of every layer; only whole blocks count.
    """
    raise NotImplementedError("num_kv_blocks: TODO")


def max_concurrent_sequences(config: dict, dtype: str, memory_bytes: int, block_size: int,
                             seq_len: int) -> int:
    """How many sequences of `seq_len` tokens fit in the KV cache at the same time.

    TODO: a sequence occupies whole blocks (a partly filled block is still a block).
    """
    raise NotImplementedError("max_concurrent_sequences: TODO")
