"""Model configuration text: config.pbtxt (protobuf text format) read as data, and the JSON
form Triton's load API takes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def model_config_json(config: str | Mapping[str, Any]) -> str:
    """A model configuration as the JSON string Triton's load API takes.

    Accepts a dict, a JSON string, or config.pbtxt text (protobuf text format, parsed with
    tritonclient's `model_config_pb2`). A pbtxt syntax error raises ValueError with the
    line and column.
    """
    if isinstance(config, Mapping):
        return json.dumps(config)
    text = config.strip()
    if text.startswith("{"):
        json.loads(text)  # validate early; the server's message for bad JSON is vaguer
        return text
    return json.dumps(parse_model_config(text))


def parse_model_config(text: str) -> dict[str, Any]:
    """config.pbtxt text -> dict (protobuf field names). Read student configs as data."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    try:
        message = text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise ValueError(f"config.pbtxt does not parse: {exc}") from exc
    return json_format.MessageToDict(message, preserving_proto_field_name=True)
