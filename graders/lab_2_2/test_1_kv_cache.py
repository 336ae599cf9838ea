"""Items: KV-cache arithmetic, exact on hidden model configs and against vLLM's own count."""

import json
import math
from pathlib import Path

import pytest

from labgrade import Fail
from labgrade.kit import call_student

from . import workloads


def _int(value, func: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            raise Fail(f"{func}() returned the float {value!r}: return an int (use // for "
                       "whole blocks and sequences)")
        raise Fail(f"{func}() must return an int, got {value!r}")
    return value


def _call(submission, func: str, *args):
    return _int(call_student(submission, "kv_math", func, *args, timeout=30), func)


def _show(config: dict) -> str:
    return json.dumps({k: v for k, v in config.items() if k != "model_type"})


@pytest.mark.points(10)
def test_kv_bytes_per_token(submission, score):
    """Exact bytes of K and V per token over all layers, on hidden configs: GQA
    (num_key_value_heads), MHA without that key, head_dim absent, null, or different from
    hidden_size // num_attention_heads; dtypes float32 / 16-bit / fp8."""
    submission.require("kv_math.py")
    right = 0
    for name, dtype in workloads.BYTES_CASES:
        config = workloads.CONFIGS[name]
        expected = workloads.kv_bytes_per_token(config, dtype)
        got = _call(submission, "kv_bytes_per_token", dict(config), dtype)
        if got != expected:
            score.measure(cases_right=right, cases=len(workloads.BYTES_CASES))
            ratio = f" ({got / expected:g}x the right value)" if expected and got else ""
            raise Fail(f"kv_bytes_per_token({_show(config)}, {dtype!r}) returned {got:,}; "
                       f"expected {expected:,}{ratio}. Count K and V, every layer, the KV "
                       "heads (num_key_value_heads; equal to num_attention_heads when "
                       "absent) and head_dim (hidden_size // num_attention_heads when "
                       "absent or null).")
        right += 1
    score.measure(cases_right=right, cases=len(workloads.BYTES_CASES))


@pytest.mark.points(5)
def test_kv_blocks(submission, score):
    """PagedAttention blocks that fit a memory budget: whole blocks only."""
    submission.require("kv_math.py")
    for name, dtype, memory, block in workloads.BLOCK_CASES:
        config = workloads.CONFIGS[name]
        expected = workloads.num_kv_blocks(config, dtype, memory, block)
        got = _call(submission, "num_kv_blocks", dict(config), dtype, memory, block)
        if got != expected:
            per_block = block * workloads.kv_bytes_per_token(config, dtype)
            raise Fail(f"num_kv_blocks({_show(config)}, {dtype!r}, memory_bytes={memory:,}, "
                       f"block_size={block}) returned {got:,}; expected {expected:,} "
                       f"(a block holds block_size tokens of every layer: {per_block:,} "
                       "bytes here; only whole blocks fit)")


@pytest.mark.points(5)
def test_max_concurrency(submission, score):
    """How many sequences of a given length fit at once: each takes whole blocks."""
    submission.require("kv_math.py")
    for name, dtype, memory, block, seq_len in workloads.CONCURRENCY_CASES:
        config = workloads.CONFIGS[name]
        expected = workloads.max_concurrent_sequences(config, dtype, memory, block, seq_len)
        got = _call(submission, "max_concurrent_sequences", dict(config), dtype, memory, block,
                    seq_len)
        if got != expected:
            raise Fail(f"max_concurrent_sequences({_show(config)}, {dtype!r}, "
                       f"memory_bytes={memory:,}, block_size={block}, seq_len={seq_len}) "
                       f"returned {got:,}; expected {expected:,}: a sequence of {seq_len} "
                       f"tokens occupies ceil({seq_len}/{block}) = {-(-seq_len // block)} "
                       "blocks, never a fraction of one")


def _model_config(model: str, host) -> dict:
    path = Path(model) / "config.json"
    if path.is_file():
        return json.loads(path.read_text())
    host.get("base").require()  # a hub id: ask the engine
    return host.call("hf_config", "base")


@pytest.mark.points(5)
def test_kv_math_matches_engine(submission, host, model, score):
    """Cross-check with the real engine: for the lab's model, the grader's
    kv_cache_memory_bytes and the engine's block size, the student's block count equals
    the number of KV blocks vLLM allocated, and the concurrency equals vLLM's own
    (floor of kv_cache_max_concurrency at max_model_len)."""
    submission.require("kv_math.py")
    config = _model_config(model, host)
    _call(submission, "kv_bytes_per_token", config, "float32")  # before starting an engine
    facts = host.get("base").require().facts
    dtype = facts["dtype"]
    memory, block = facts["kv_cache_memory_bytes"], facts["block_size"]
    blocks = _call(submission, "num_kv_blocks", config, dtype, memory, block)
    score.measure(vllm_num_blocks=facts["num_blocks"], your_num_blocks=blocks,
                  block_size=block, kv_cache_memory_bytes=memory)
    if blocks != facts["num_blocks"]:
        raise Fail(f"for the lab's model ({config.get('num_hidden_layers')} layers, "
                   f"{config.get('num_attention_heads')} heads, "
                   f"{config.get('num_key_value_heads')} KV heads, {dtype}) with "
                   f"kv_cache_memory_bytes={memory:,} and block_size={block}, vLLM allocated "
                   f"{facts['num_blocks']:,} KV blocks; your num_kv_blocks() says {blocks:,}")
    seqs = _call(submission, "max_concurrent_sequences", config, dtype, memory, block,
                 facts["max_model_len"])
    expected = math.floor(facts["kv_cache_max_concurrency"] + 1e-9)
    if seqs != expected:
        raise Fail(f"vLLM reports room for {facts['kv_cache_max_concurrency']:g} sequences of "
                   f"max_model_len={facts['max_model_len']} tokens, i.e. {expected} whole "
                   f"ones; your max_concurrent_sequences() says {seqs}")
