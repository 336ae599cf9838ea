"""Lab triton_2_3: a decoupled model streaming tokens from a vLLM OpenAI server to Triton's
streaming clients (starter)."""

import triton_python_backend_utils as pb_utils  # noqa: F401


class TritonPythonModel:
    def initialize(self, args):
        # TODO: read the parameters upstream_url and upstream_model from args["model_config"]
        raise NotImplementedError("TODO: llm_stream initialize()")

    def execute(self, requests):
        # TODO: stream /v1/completions (greedy) upstream and send one response per chunk
        # through request.get_response_sender(); stop when the client cancels (close the
        # upstream connection); end with the final flag
        raise NotImplementedError("TODO: llm_stream execute()")
