"""One markdown table of scores for the evaluation benches: a row per metric, a column per run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Row = tuple[str, str, str]  # (result key, row title, format string)


def metrics_table(results: dict[str, dict[str, Any]], rows: Sequence[Row]) -> list[str]:
    names = list(results)
    lines = ["| field | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, title, fmt in rows:
        cells = []
        for name in names:
            value = results[name].get(key)
            cells.append("-" if value is None else fmt.format(value))
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return lines
