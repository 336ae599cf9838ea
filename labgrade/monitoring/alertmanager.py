"""An Alertmanager configuration prepared for a grading run.

The student's file names its own webhook URLs and production timings (group_wait 30 s and
more). For a live run the grader points every webhook at its sink, one path per receiver
(`<sink>/<receiver name>`, so a delivery says which receiver got it), and shortens the
route timings so notifications come within seconds. Routing, grouping and inhibition stay
the student's.
"""

from __future__ import annotations

from typing import Any

import yaml

FAST_TIMINGS = {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"}


class ConfigError(ValueError):
    """The file is not a YAML mapping (amtool's message is the better one to show)."""


def for_grading(config_text: str, sink_url: str,
                timings: dict[str, str] | None = None) -> str:
    """The config with every webhook_configs url -> `<sink_url>/<receiver>` and every
    route's group_wait/group_interval/repeat_interval replaced by `timings`."""
    config = yaml.safe_load(config_text)
    if not isinstance(config, dict):
        raise ConfigError("the Alertmanager config is not a YAML mapping")
    timings = FAST_TIMINGS if timings is None else timings
    for receiver in config.get("receivers") or []:
        for hook in receiver.get("webhook_configs") or []:
            hook["url"] = f"{sink_url.rstrip('/')}/{receiver.get('name', '')}"
            hook.pop("url_file", None)
    _retime(config.get("route") or {}, timings)
    return yaml.safe_dump(config, sort_keys=False)


def _retime(route: dict[str, Any], timings: dict[str, str], root: bool = True) -> None:
    """The root route gets every timing; a child route only those it sets itself (the
    rest it inherits from its parent)."""
    for key, value in timings.items():
        if root or key in route:
            route[key] = value
    for child in route.get("routes") or []:
        if isinstance(child, dict):
            _retime(child, timings, root=False)
