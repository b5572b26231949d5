"""The words a tip is likely to hold, as a hint to the speech model.

Built once from our own data files, never from anything a caller sends: the English
labels of the categories a caller chooses from (config/prompts/en.json) and the areas a
handler tags a tip with (config/console.json). Whisper takes it as text it has "already
heard" (faster-whisper's `hotwords`), which nudges the spelling of names it would
otherwise guess at ("Croydon", "Walthamstow"). Whether it helps, and that it makes the
model invent none of these words, is measured by bench/transcription.py.
"""

from __future__ import annotations

import functools
import json

from config.settings import PROJECT_ROOT

CATEGORY_LABELS_FILE = PROJECT_ROOT / "config" / "prompts" / "en.json"
AREAS_FILE = PROJECT_ROOT / "config" / "console.json"
# Areas that are not places: saying them would teach the model nothing.
NOT_PLACES = frozenset({"outside-london", "unknown"})


@functools.cache
def vocabulary_hint() -> str:
    """The category labels and area names, as one comma-separated line of English."""
    categories = json.loads(CATEGORY_LABELS_FILE.read_text(encoding="utf-8"))["categories"]
    areas = json.loads(AREAS_FILE.read_text(encoding="utf-8"))["areas"]
    labels = [label for category, label in categories.items() if category != "other"]
    places = [label for area, label in areas if area not in NOT_PLACES]
    return ", ".join([*labels, *places]) + "."
