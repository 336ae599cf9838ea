"""Public sanity checks for lab 2.2 — fast, no engine. `pytest labs/lab_2_2` runs them;
`pytest labs/lab_2_2 --grade` runs the real (hidden) graders instead."""

import numpy as np

import kv_math
import quantize
import serving

# Llama-3-8B's shape (README example); the graders use other, hidden configs
LLAMA3_8B = {"hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
             "num_hidden_layers": 32}
CPU = {"name": "cpu", "device": "cpu", "dtype": "float32", "max_model_len": 1024}


def test_kv_bytes_per_token_for_llama3_8b():
    assert kv_math.kv_bytes_per_token(LLAMA3_8B, "bfloat16") == 131072


def test_kv_blocks_and_concurrency_are_whole_numbers():
    blocks = kv_math.num_kv_blocks(LLAMA3_8B, "bfloat16", 2 * 2**30, 16)
    assert blocks == 1024 and isinstance(blocks, int)
    # 1,000 tokens need 63 blocks of 16: 1024 // 63 sequences
    assert kv_math.max_concurrent_sequences(LLAMA3_8B, "bfloat16", 2 * 2**30, 16, 1000) == 16


def test_int8_round_trip_within_half_a_step():
    w = np.random.default_rng(0).normal(size=(8, 64)).astype(np.float32)
    q, scale = quantize.quantize_int8(w)
    assert q.dtype == np.int8 and scale.shape == (8,)
    err = np.abs(w - quantize.dequantize_int8(q, scale)).max(axis=1)
    assert np.all(err <= np.abs(w).max(axis=1) / 254 * 1.001)


def test_int4_packs_two_values_per_byte():
    w = np.random.default_rng(1).normal(size=(4, 64)).astype(np.float32)
    packed, scales = quantize.quantize_int4(w, 32)
    assert packed.dtype == np.uint8 and packed.shape == (4, 32) and scales.shape == (4, 2)
    w_hat = quantize.dequantize_int4(packed, scales, 32)
    assert w_hat.shape == w.shape and np.all(np.isfinite(w_hat))


def test_serving_functions_return_plain_engine_overrides():
    assert isinstance(serving.prefix_caching_kwargs(CPU), dict)
    spec = serving.ngram_speculation(CPU)["speculative_config"]
    assert spec["method"] == "ngram"
    assert serving.draft_speculation("/models/draft", CPU)["speculative_config"]["model"] \
        == "/models/draft"


def test_every_prompt_carries_all_its_parts():
    requests = [{"id": "req-1", "question": "Why?"}, {"id": "req-2", "question": "How?"}]
    prompts = serving.build_prompts("SYSTEM", "DOC", requests)
    assert len(prompts) == 2
    for prompt, request in zip(prompts, requests):
        assert all(part in prompt for part in ("SYSTEM", "DOC", request["id"],
                                               request["question"]))
