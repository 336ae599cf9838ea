"""Size caps for what exporters hand to other systems.

A message can hold anything a submission produced or read (a 200 kB exception, a dump of
the hidden inputs), and every consumer has a ceiling: GitHub's step outputs (1 MB per job)
and the command line node gets them on ("Argument list too long" past 128 KiB per
variable), Gradescope's page, a CI tool's XML parser. Every exporter caps each message
with `cap`, and the Classroom result as a whole stays under `CLASSROOM_RESULT_BYTES`.
"""

from __future__ import annotations

MESSAGE_BYTES = 4096            # one item's student-facing message, in any export
CLASSROOM_RESULT_BYTES = 64 * 1024  # the base64 `result` a Classroom step outputs


def marker(total: int) -> str:
    return f"… (truncated, {total} bytes)"


def cap(text: str, limit: int = MESSAGE_BYTES) -> str:
    """`text` if its UTF-8 form fits in `limit` bytes; else its start (cut at a character
    boundary) and a visible marker naming the full size, all within `limit` bytes."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    tail = marker(len(data))
    room = max(0, limit - len(tail.encode()))
    head = data[:room].decode("utf-8", "ignore")  # drops a character cut in half
    return head + tail if room else tail[:limit]
