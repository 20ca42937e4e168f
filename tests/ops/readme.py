"""The README's fenced code blocks, each with the HTML comment above it that says how the suite
runs it (``<!-- test: KIND [NAME] -->``) or why it does not (``<!-- not tested: REASON -->``).

The tests read the blocks from README.md at test time: the README is the only copy.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)\s*$")
MARK = re.compile(r"^\s*<!--\s*(?P<mark>.*?)\s*-->\s*$")
KINDS = ("file", "shell", "config", "pyproject", "python with redis", "output", "simulator")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    lang: str
    mark: str  # the comment right above the fence, "" if none
    text: str  # dedented to the fence's indentation

    @property
    def where(self) -> str:
        return f"README.md:{self.line} ({self.lang or 'plain'} block)"

    @property
    def kind(self) -> str:
        """``file``, ``shell``, ...; "" for a block that is not run."""
        if not self.mark.startswith("test:"):
            return ""
        rest = self.mark.removeprefix("test:").strip()
        return next((k for k in KINDS if rest == k or rest.startswith(k + " ")), rest)

    @property
    def name(self) -> str:
        """What follows the kind: a file name, an output's name."""
        return self.mark.removeprefix("test:").strip().removeprefix(self.kind).strip()


def blocks(path: Path = README) -> list[Block]:
    lines = path.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        above = MARK.match(lines[i - 1]) if i > 0 else None
        body = "\n".join(lines[i + 1 : end]) + "\n"
        found.append(Block(i + 1, opening["lang"], above["mark"] if above else "", textwrap.dedent(body)))
        i = end + 1
    return found


def marked(kind: str) -> list[Block]:
    return [b for b in blocks() if b.kind == kind]


def one(kind: str, name: str) -> Block:
    [block] = [b for b in marked(kind) if b.name == name]
    return block
