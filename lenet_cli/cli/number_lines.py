"""What `lenet train --numbers` says of the numbers it learns from: at the start of a run, and in
`lenet summary` of the checkpoint it made."""

from __future__ import annotations

from typing import Any

from rich.markup import escape


def numbers_start_line(numbers: dict[str, Any]) -> str:
    """What `--numbers` learns from, and the numbers it cannot (counted and named, never dropped silently)."""
    line = (
        f"\nYour numbers: {numbers['count']:,} from {escape(', '.join(numbers['folders']))} "
        f"({numbers['pieces']:,} candidate pieces), {numbers['per_batch']} pieces in every batch, augmented; "
        "each label spelled through its cuts by the model at every epoch's start"
    )
    if numbers["unspellable"]:
        examples = escape("; ".join(numbers["unspellable_examples"]))
        more = ", …" if numbers["unspellable"] > len(numbers["unspellable_examples"]) else ""
        line += (
            f"\n{numbers['unspellable']:,} numbers cannot be spelled through the reader's cuts and are left "
            f"out: {examples}{more}"
        )
    return line


def numbers_summary(numbers: dict[str, Any]) -> str:
    """The checkpoint's record of its numbers, for `lenet summary`'s table."""
    return escape(
        f"{numbers['count']:,} from {', '.join(numbers['folders'])} ({numbers['unspellable']:,} unspellable "
        f"left out), sha256 {numbers['sha256'][:12]}…"
    )
