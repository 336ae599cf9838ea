"""Item (gpu profile): serving the model with weight quantization in vLLM."""

import pytest

from labgrade import Fail

from . import workloads

TOKENS = 32


@pytest.mark.points(10)
@pytest.mark.profiles("gpu")
@pytest.mark.budget(600)
def test_quantized_serving(host, quant_engine, settings, score):
    """The grader's base arguments plus the student's quantized_serving() overrides (e.g.
    quantization="fp8") build an engine whose model runs quantized (vLLM reports a
    quantization method), and its greedy outputs stay close to the unquantized engine's:
    on average at least settings quant_min_agreement of the first 32 tokens' characters
    agree (quantization may change some tokens, unlike speculation)."""
    engine = quant_engine.require()
    method = engine.facts.get("quantization")
    score.measure(quantization=method)
    if not method:
        raise Fail("the engine runs unquantized: set vLLM's `quantization` (for example "
                   "'fp8' for on-the-fly FP8 weights)")
    host.get("base").require()
    reference = host.call("greedy", "base", workloads.SPEC_CHECK, TOKENS)
    got = host.call("greedy", "quant", workloads.SPEC_CHECK, TOKENS)

    def agreement(a: str, b: str) -> float:
        same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        return same / max(len(b), 1)

    shares = [agreement(g, r) for g, r in zip(got, reference)]
    mean = sum(shares) / len(shares)
    score.measure(quant_prefix_agreement=round(mean, 3))
    if mean < settings["quant_min_agreement"]:
        raise Fail(f"the quantized engine's greedy outputs agree with the unquantized ones on "
                   f"only {mean:.2f} of their length on average (at least "
                   f"{settings['quant_min_agreement']} expected): the quantization is too "
                   "lossy for this model")
