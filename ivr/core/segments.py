"""How many SMS segments a reply costs: GSM-7 when every character allows it, else UCS-2.

A reply that needs a third segment may arrive split or late on an old handset, so every
reply in the catalogues must fit two: 306 GSM-7 septets (153 per concatenated segment;
characters of the extension table count twice) or 134 UCS-2 code units (67 each).
"""

from __future__ import annotations

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")
MAX_SEGMENTS = 2


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def segment_count(text: str) -> int:
    """The number of segments `text` is sent as."""
    if is_gsm7(text):
        units, single, multi = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text), 160, 153
    else:
        units, single, multi = len(text.encode("utf-16-le")) // 2, 70, 67
    if units <= single:
        return 1
    return -(-units // multi)
