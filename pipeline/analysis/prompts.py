"""Prompts live in versioned YAML files (``pipeline/data/prompts``); records store the version used."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    system: str
    user: str
    repair: str = "Your previous answer could not be used: {error}\nAnswer again with only the JSON object."
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, prompts_dir: Path, name: str) -> Prompt:
        path = Path(prompts_dir) / f"{name}.yaml"
        if not path.exists():
            raise FileNotFoundError(f"prompt {name!r} not found: {path}")
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key in ("version", "system", "user"):
            if key not in data:
                raise ValueError(f"{path}: missing '{key}'")
        known = {"version", "system", "user", "repair"}  # anything else (business, need) is a snippet
        return cls(
            name=name,
            version=str(data["version"]),
            system=str(data["system"]),
            user=str(data["user"]),
            repair=str(data.get("repair") or cls.repair),
            extra={k: str(v).strip() for k, v in data.items() if k not in known},
        )

    @staticmethod
    def fill(template: str, **values: str) -> str:
        # Plain replacement, not str.format: transcripts and definitions contain braces.
        for key, value in values.items():
            template = template.replace("{" + key + "}", value)
        return template.strip()
