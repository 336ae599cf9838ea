"""Hidden inputs for lab_2_2: model configs, the shared-prefix workload, prompts for
speculation, and weight matrices for quantization (the public README shows other ones)."""

from __future__ import annotations

from labgrade.runtime.tinymodels import corpus

# --------------------------------------------------------------------- KV-cache arithmetic
# Shaped like real Hugging Face config.json files (values from the public configs of the
# models named), each exercising one rule: GQA, MHA without num_key_value_heads, head_dim
# absent / null / different from hidden_size // num_attention_heads.
CONFIGS = {
    "llama-3.1-8b": {"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32,
                     "num_key_value_heads": 8, "num_hidden_layers": 32,
                     "intermediate_size": 14336, "torch_dtype": "bfloat16"},
    "qwen2.5-0.5b": {"model_type": "qwen2", "hidden_size": 896, "num_attention_heads": 14,
                     "num_key_value_heads": 2, "num_hidden_layers": 24,
                     "intermediate_size": 4864, "torch_dtype": "bfloat16"},
    "gemma-2b": {"model_type": "gemma", "hidden_size": 2048, "num_attention_heads": 8,
                 "num_key_value_heads": 1, "head_dim": 256, "num_hidden_layers": 18,
                 "intermediate_size": 16384, "torch_dtype": "bfloat16"},
    "opt-125m-like": {"model_type": "opt", "hidden_size": 768, "num_attention_heads": 12,
                      "num_hidden_layers": 12, "ffn_dim": 3072, "torch_dtype": "float16"},
    "mistral-nemo-12b": {"model_type": "mistral", "hidden_size": 5120,
                         "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
                         "num_hidden_layers": 40, "intermediate_size": 14336,
                         "torch_dtype": "bfloat16"},
    "qwen3-1.7b": {"model_type": "qwen3", "hidden_size": 2048, "num_attention_heads": 16,
                   "num_key_value_heads": 8, "head_dim": 128, "num_hidden_layers": 28,
                   "intermediate_size": 6144, "torch_dtype": "bfloat16"},
    "llama-2-7b": {"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32,
                   "num_key_value_heads": 32, "num_hidden_layers": 32, "head_dim": None,
                   "intermediate_size": 11008, "torch_dtype": "float16"},
    "phi-3-mini": {"model_type": "phi3", "hidden_size": 3072, "num_attention_heads": 32,
                   "num_key_value_heads": 32, "num_hidden_layers": 32,
                   "intermediate_size": 8192, "torch_dtype": "bfloat16"},
}

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "fp8": 1, "fp8_e4m3": 1,
               "fp8_e5m2": 1}

# (config, dtype) pairs for bytes per token
BYTES_CASES = [("llama-3.1-8b", "bfloat16"), ("qwen2.5-0.5b", "bfloat16"),
               ("gemma-2b", "float16"), ("opt-125m-like", "float16"),
               ("mistral-nemo-12b", "bfloat16"), ("qwen3-1.7b", "fp8"),
               ("llama-2-7b", "float32"), ("phi-3-mini", "fp8_e5m2"),
               ("gemma-2b", "fp8_e4m3")]  # every dtype name the README lists
# (config, dtype, memory bytes, block size): memory is never a whole number of blocks
BLOCK_CASES = [("llama-3.1-8b", "bfloat16", 8 * 2**30 + 12345, 16),
               ("qwen2.5-0.5b", "bfloat16", 3_000_000_000, 32),
               ("gemma-2b", "fp8", 1_500_000_000, 128),
               ("opt-125m-like", "float16", 700_000_000, 16),
               ("mistral-nemo-12b", "bfloat16", 20 * 2**30 - 1, 16),
               ("llama-2-7b", "float16", 13_000_000_000, 64)]
# (config, dtype, memory bytes, block size, sequence length): lengths not multiples of the block
CONCURRENCY_CASES = [("llama-3.1-8b", "bfloat16", 16 * 2**30, 16, 8192),
                     ("llama-3.1-8b", "bfloat16", 16 * 2**30, 16, 8200),
                     ("qwen2.5-0.5b", "bfloat16", 2 * 2**30, 16, 4000),
                     ("gemma-2b", "float16", 4 * 2**30, 128, 1000),
                     ("mistral-nemo-12b", "fp8", 10 * 2**30, 32, 32768),
                     ("llama-2-7b", "float16", 40 * 2**30, 16, 4097),
                     ("phi-3-mini", "bfloat16", 3 * 2**30 + 7, 64, 130)]


def kv_bytes_per_token(config: dict, dtype: str) -> int:
    """The grader's own answer."""
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    return 2 * config["num_hidden_layers"] * kv_heads * head_dim * DTYPE_BYTES[dtype]


def num_kv_blocks(config: dict, dtype: str, memory_bytes: int, block_size: int) -> int:
    return memory_bytes // (block_size * kv_bytes_per_token(config, dtype))


def max_concurrent_sequences(config: dict, dtype: str, memory_bytes: int, block_size: int,
                             seq_len: int) -> int:
    blocks_per_seq = -(-seq_len // block_size)
    return num_kv_blocks(config, dtype, memory_bytes, block_size) // blocks_per_seq


# ------------------------------------------------------------------------- prefix caching
_LINES = corpus(400, seed=2202)
SYSTEM = ("You are the serving course's assistant. Answer from the document below, cite the "
          "line you used, and keep answers short. " + " ".join(_LINES[:12]))
DOCUMENT = "\n".join(_LINES[12:50])
_QUESTIONS = _LINES[100:400]


def prefix_requests(n: int, start: int = 0) -> list[dict]:
    """n distinct requests: each has its own id and question (the part that varies)."""
    return [{"id": f"req-{7301 + 37 * i:05d}",
             "question": f"{_QUESTIONS[i % len(_QUESTIONS)]} What does the engine do?"}
            for i in range(start, start + n)]


# ------------------------------------------------------------------ speculative decoding
# Greedy outputs of these are checked token for token against the non-speculative engine.
SPEC_CHECK = ["The model keeps the cache", "A small batch of", "Every request waits for",
              "Serving latency is", "The queue", "Prefill and decode",
              " ".join(_LINES[60:64])]
# Single-stream latency prompts: the tiny model's greedy continuations repeat phrases, the
# case n-gram lookup is built for (about 0.9 of n-gram drafts accepted on these).
SPEC_LATENCY = ["The model keeps the cache", "The grader measures", "Every request waits for",
                "The student reads the prompt"]


# -------------------------------------------------------------------------- quantization
def weight_matrices(seed: int = 2202):
    """Hidden weights as float32 numpy arrays, built to punish the usual shortcuts:
    rows (output channels) spanning four orders of magnitude, so one scale per tensor
    breaks the per-channel error bound; groups of columns with their own magnitudes, so
    one scale per row breaks the per-group bound; an all-zero row and an all-zero group."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def matrix(rows: int, cols: int) -> "np.ndarray":
        row_scale = np.exp(rng.uniform(np.log(1e-3), np.log(10.0), size=(rows, 1)))
        w = rng.standard_t(df=5, size=(rows, cols)) * row_scale
        return w.astype(np.float32)

    int8 = matrix(96, 256)
    int8[7] = 0.0
    int8[:, 11] *= 40.0  # an outlier input feature
    int4 = {}
    for group in (32, 64, 128):
        w = matrix(64, 512)
        col_scale = np.exp(rng.uniform(np.log(0.05), np.log(5.0), size=(1, 512 // group)))
        w *= np.repeat(col_scale, group, axis=1).astype(np.float32)
        w[3, :group] = 0.0
        int4[group] = w.astype(np.float32)
    return int8, int4
