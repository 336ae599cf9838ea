"""Tiny deterministic Llama-style models, built locally and cached.

No model hub is reachable from the grading machines, so labgrade builds its own models:
a byte-level BPE tokenizer trained with `tokenizers` on a generated corpus, and small Llama
configs trained for a few hundred steps on the same corpus. Training (rather than random
weights) makes greedy decoding peaky, so it does not flip on floating-point noise between
batch compositions, and gives text with repeated phrases (useful for n-gram speculation).

Every model of one build shares the tokenizer, so the smaller one can serve as a draft for
the larger. Builds are keyed by a digest of their recipe and cached under
`$LABGRADE_CACHE` (default `~/.cache/labgrade`); a build is written to a temporary folder
and renamed into place, so concurrent builders never see half a model.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

RECIPE_VERSION = 3

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|> ' + message['content'] + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|> ' }}{% endif %}"
)

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of one tiny model. Head size must be 32, 64 or 128 for vLLM's CPU backend."""

    name: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int = 1024
    train_steps: int = 300

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


TARGET = TinyModelSpec("tiny-llama", hidden_size=128, intermediate_size=256,
                       num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1)
DRAFT = TinyModelSpec("tiny-llama-draft", hidden_size=64, intermediate_size=128,
                      num_hidden_layers=1, num_attention_heads=1, num_key_value_heads=1)
SPECS = {spec.name: spec for spec in (TARGET, DRAFT)}

# Derived (untrained) models: name -> (source model, layers added). "tiny-llama-deep" is
# tiny-llama followed by layers whose output projections are zero: each adds nothing to the
# residual stream, so its greedy outputs are exactly tiny-llama's, but every added layer
# costs its full share of attention and MLP kernels. On a GPU a 2-layer model is all fixed
# overhead and a 1-layer draft saves nothing; a deep target is what makes draft-model
# speculation pay off there, as it does for real model pairs.
DERIVED = {"tiny-llama-deep": (TARGET.name, 30)}

VOCAB_SIZE = 512

_WORDS = (
    "the a model token cache batch server request engine GPU memory latency throughput "
    "serving inference vLLM Triton kernel attention block page prefix decode prefill "
    "student grader score metric queue stream response prompt output input quick fast "
    "slow small large first next last every each runs sends reads writes keeps frees "
    "waits answers measures schedules loads splits joins".split()
)


def cache_root() -> Path:
    return Path(os.environ.get("LABGRADE_CACHE", Path.home() / ".cache" / "labgrade"))


def corpus(n_sentences: int = 4000, seed: int = 0) -> list[str]:
    """Deterministic pseudo-English with recurring phrases."""
    rng = random.Random(seed)
    phrases = [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 6))) for _ in range(60)]
    lines = []
    for _ in range(n_sentences):
        parts = [rng.choice(phrases) for _ in range(rng.randint(1, 3))]
        lines.append((", ".join(parts)).capitalize() + ".")
    return lines


def _digest(specs: tuple[TinyModelSpec, ...]) -> str:
    recipe = {"version": RECIPE_VERSION, "vocab": VOCAB_SIZE, "specs": [asdict(s) for s in specs]}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def model_path(name: str = TARGET.name) -> Path:
    """Path of a tiny model, building (and caching) the whole family on first use."""
    if name in DERIVED:
        return _ensure_derived(ensure_built(), name)
    if name not in SPECS:
        known = ", ".join([*SPECS, *DERIVED])
        raise KeyError(f"unknown tiny model {name!r}; known: {known}")
    root = ensure_built()
    return root / name


def _ensure_derived(root: Path, name: str) -> Path:
    source, extra = DERIVED[name]
    return _build_once(root / name, lambda tmp: _pad_with_zero_layers(root / source, tmp, extra))


def _pad_with_zero_layers(source: Path, out: Path, extra: int) -> None:
    """Copy a model, appending `extra` decoder layers that leave the residual unchanged
    (copies of the last layer with o_proj and down_proj set to zero)."""
    from safetensors.torch import load_file, save_file

    config = json.loads((source / "config.json").read_text())
    layers = int(config["num_hidden_layers"])
    tensors = load_file(str(source / "model.safetensors"))
    last = f"model.layers.{layers - 1}."
    for index in range(layers, layers + extra):
        for key, value in list(tensors.items()):
            if key.startswith(last):
                new = value.clone()
                if key.endswith(("self_attn.o_proj.weight", "mlp.down_proj.weight")):
                    new.zero_()
                tensors[f"model.layers.{index}." + key[len(last):]] = new
    config["num_hidden_layers"] = layers + extra
    for item in source.iterdir():
        if item.is_file() and item.name not in ("config.json", "model.safetensors", "COMPLETE"):
            shutil.copy2(item, out / item.name)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})


def ensure_built() -> Path:
    specs = tuple(SPECS.values())
    return _build_once(cache_root() / "models" / _digest(specs), lambda tmp: _build(tmp, specs))


def _build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """`target`, built by `build(folder)` into a temporary folder renamed into place, so
    concurrent builders never see half a build (the first rename wins; the others' builds
    are as good and are dropped)."""
    if (target / "COMPLETE").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(tmp)
        (tmp / "COMPLETE").write_text("ok\n")
        try:
            tmp.rename(target)
        except OSError:  # another process won the race
            if not (target / "COMPLETE").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _build(root: Path, specs: tuple[TinyModelSpec, ...]) -> None:
    lines = corpus()
    tokenizer = _train_tokenizer(lines)
    for spec in specs:
        out = root / spec.name
        out.mkdir(parents=True)
        tokenizer.save_pretrained(out)
        _train_model(spec, tokenizer, lines).save_pretrained(out, safe_serialization=True)


def _train_tokenizer(lines: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = max(s.max_position_embeddings for s in SPECS.values())
    return fast


def _train_model(spec: TinyModelSpec, tokenizer, lines: list[str]):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size, num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads, num_key_value_heads=spec.num_key_value_heads,
        head_dim=spec.head_dim, max_position_embeddings=spec.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False, torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    ids = tokenizer(" ".join(lines), verbose=False)["input_ids"]  # one long training stream
    seq = 64
    data = torch.tensor(ids[: (len(ids) // seq) * seq]).view(-1, seq)
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(spec.train_steps):
        batch = data[torch.randint(0, data.shape[0], (16,), generator=gen)]
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def publish_to_hub_cache(name: str, repo_id: str, hub_cache: Path) -> Path:
    """Store tiny model `name` in a Hugging Face hub cache folder (HF_HUB_CACHE) as the hub
    model `repo_id` ("org/name"), laid out as huggingface_hub writes it: `blobs/<sha256>`,
    `refs/main` (the revision), `snapshots/<revision>/<file>` linking to its blob. With
    HF_HUB_OFFLINE=1, vLLM and transformers then load `repo_id` as from the hub. Returns
    the snapshot folder; the same bytes give the same revision."""
    source = model_path(name)
    files = sorted(p for p in source.iterdir() if p.is_file() and p.name != "COMPLETE")
    repo = Path(hub_cache) / ("models--" + repo_id.replace("/", "--"))
    digests = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    revision = hashlib.sha1(json.dumps(digests, sort_keys=True).encode()).hexdigest()
    snapshot = repo / "snapshots" / revision
    for folder in (repo / "blobs", repo / "refs", snapshot):
        folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        blob = repo / "blobs" / digests[f.name]
        if not blob.exists():
            shutil.copyfile(f, blob)
        link = snapshot / f.name
        if not link.is_symlink():
            link.symlink_to(Path("..", "..", "blobs", digests[f.name]))
    (repo / "refs" / "main").write_text(revision)
    return snapshot


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m labgrade.runtime.tinymodels",
                                     description="build the tiny models (cached)")
    parser.add_argument("--hub-cache", type=Path, help="also store one in this hub cache")
    parser.add_argument("--name", default=TARGET.name, help="with --hub-cache: which model")
    parser.add_argument("--repo-id", default="labgrade-test/tiny-llama",
                        help="with --hub-cache: its hub id")
    args = parser.parse_args(argv)
    print(ensure_built())
    for derived in DERIVED:
        print(model_path(derived))
    if args.hub_cache:
        print(publish_to_hub_cache(args.name, args.repo_id, args.hub_cache))


if __name__ == "__main__":
    main()
