"""Lab triton_2_5 — check a Triton model repository before it ships.

    python check_repository.py MODEL_REPOSITORY

Exit 0 when every model looks loadable; otherwise print one line per problem, naming the
model, and exit 1. README.md ("4. CI") lists what it must catch.
"""

from __future__ import annotations

import sys
from pathlib import Path


def check(repository: Path) -> list[str]:
    """One line per problem, each naming its model; [] when the repository looks loadable."""
    raise NotImplementedError("TODO: check() — parse each config.pbtxt and check it")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python check_repository.py MODEL_REPOSITORY", file=sys.stderr)
        return 2
    problems = check(Path(argv[1]))
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
