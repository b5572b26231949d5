"""What a tipster chose: the facts every channel collects, declared once.

The voice call state, the SMS session, a recording's sealed job handle and a tip part
joining a tip all carry the same facts (language, category, reference). Each holds one
`Choices` instead of its own copy of the fields, so a new fact is added here, once, and
reaches every store through the two mappings below.

The mappings keep the formats already at rest: JSON (call-state tokens, sealed job
handles) holds every fact, null when not chosen; a Redis hash (SMS sessions, tips) holds
"" instead, as a hash cannot hold a null. Reading accepts either, and bytes, so a token,
session or job written before this module existed still opens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from ivr.core.redis_values import HashFields


@dataclass(frozen=True)
class Choices:
    """The tipster's language, topic and the reference minted for their report (None: not yet)."""

    language: str | None = None
    category: str | None = None
    reference: str | None = None

    def but(self, **changes: str | None) -> Choices:
        """These choices with some facts changed (a frozen value: a new one)."""
        return replace(self, **changes)

    def to_mapping(self) -> dict[str, str | None]:
        """Every fact by name, None where not chosen (the JSON form)."""
        return {name: getattr(self, name) for name in FACTS}

    def to_record(self) -> HashFields:
        """Every fact by name, "" where not chosen (the Redis hash form)."""
        return {name: getattr(self, name) or "" for name in FACTS}

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object]) -> Choices:
        """The facts in a JSON object or a Redis hash (str or bytes); other keys are ignored.

        A fact that is missing, null or "" was not chosen.
        """
        return cls(**{name: _text(mapping.get(name)) for name in FACTS})


FACTS: tuple[str, ...] = tuple(f.name for f in fields(Choices))


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode()
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"a choice must be text, not {type(value).__name__}")
    return value
