"""The grader's reference engine, inside its worker (labgrade.runtime.vllm.ReferenceEngine):
greedy answers together with what the engine itself counted, so graders can check the
counts a student reports (usage) against the engine, not only their range."""

from __future__ import annotations


def greedy_completions(llm, prompts: list[str], max_tokens: int,
                       stop: list[str] | None = None) -> list[dict]:
    """Per prompt: the text, the number of generated token ids and the finish reason."""
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, stop=stop)
    return [{"text": c.text, "completion_tokens": len(c.token_ids),
             "finish_reason": c.finish_reason}
            for c in (o.outputs[0] for o in llm.generate(prompts, params, use_tqdm=False))]
