"""Lab triton_2_3: a decoupled model that streams tokens from a vLLM OpenAI server to
Triton's streaming clients (reference).

Each request is served in its own thread: a streaming /v1/completions call upstream
(greedy), one Triton response per text chunk, then the final flag. When the client cancels,
the upstream connection is closed, which makes vLLM abort the request.
"""

import http.client
import json
import threading
from urllib.parse import urlsplit

import numpy as np
import triton_python_backend_utils as pb_utils

FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        self.url = urlsplit(params["upstream_url"]["string_value"])
        self.upstream_model = params["upstream_model"]["string_value"]
        self.threads = []

    def execute(self, requests):
        for request in requests:
            prompt = pb_utils.get_input_tensor_by_name(request, "text_input").as_numpy()
            prompt = prompt.reshape(-1)[0]
            prompt = prompt.decode() if isinstance(prompt, bytes) else str(prompt)
            limit = pb_utils.get_input_tensor_by_name(request, "max_tokens")
            max_tokens = int(limit.as_numpy().reshape(-1)[0]) if limit is not None else 64
            thread = threading.Thread(target=self.stream, daemon=True,
                                      args=(request.get_response_sender(), prompt, max_tokens))
            thread.start()
            self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        return None

    def stream(self, sender, prompt, max_tokens):
        conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=300)
        try:
            body = json.dumps({"model": self.upstream_model, "prompt": prompt,
                               "max_tokens": max_tokens, "temperature": 0.0, "stream": True})
            conn.request("POST", "/v1/completions", body=body,
                         headers={"Content-Type": "application/json"})
            upstream = conn.getresponse()
            if upstream.status != 200:
                raise RuntimeError(f"upstream answered {upstream.status}: "
                                   f"{upstream.read()[:500]!r}")
            for line in upstream:
                if sender.is_cancelled():
                    conn.close()  # vLLM sees the disconnect and aborts the request
                    sender.send(flags=FINAL)
                    return
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                text = json.loads(data)["choices"][0].get("text", "")
                if text:
                    out = pb_utils.Tensor("text_output", np.array([text.encode()], dtype=object))
                    sender.send(pb_utils.InferenceResponse(output_tensors=[out]))
            sender.send(flags=FINAL)
        except Exception as exc:  # noqa: BLE001 - the client gets the reason
            sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))),
                        flags=FINAL)
        finally:
            conn.close()

    def finalize(self):
        for thread in self.threads:
            thread.join(timeout=5)
