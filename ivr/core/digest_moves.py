"""After a SECRET_KEY rotation: finding what an older key named, and moving it to the current name.

A keyed digest (`ivr.core.vault.KeyedDigest`) names a Redis key after a value (a recording
sid, a typed reference, a MessageSid) under SECRET_KEY, so after a rotation the same value
names a different key. Digests are one-way: nothing can turn an old name into the new one
without the value. So wherever the value is at hand, the lookup itself moves the thing:
`adopt` renames what an older key's name holds to the current key's name (RENAME keeps
the TTL) and everything after that finds it there.

Each long-lived marker is looked up with its value at hand regularly, which is what
bounds how long the old key must stay listed (`ivr.core.secret_rotation.GRACE_SECONDS`):
- a kept recording's part marker: every provider sweep round lists the recording (it is
  still at the provider, that is why it matters) and looks its marker up;
- an inbound text's marker: every inbound sweep round, while the text is at the provider;
- a PIN guard's lock memory: on every check of that reference, and `tipline secret rotate`
  moves those of every existing tip at once;
- sign-in failure counters and the SMS line's seen-markers: on every attempt (minutes).

With one key listed (no rotation under way) `adopt` costs nothing: no round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import redis


def adopt(connection: redis.Redis, digests: Sequence[str], *namers: Callable[[str], str]) -> str:
    """The current digest (`digests[0]`), after moving to its names whatever an older digest
    named and the current name does not hold yet; one pipelined EXISTS, renames only when found."""
    current, older = digests[0], digests[1:]
    if not older:
        return current
    pairs = [(namer(current), [namer(digest) for digest in older]) for namer in namers]
    with connection.pipeline(transaction=False) as pipe:
        for new_name, old_names in pairs:
            pipe.exists(new_name)
            for old_name in old_names:
                pipe.exists(old_name)
        found = iter(pipe.execute())
    for new_name, old_names in pairs:
        new_held = next(found)
        old_held = [next(found) for _ in old_names]
        if new_held:
            continue
        for old_name, held in zip(old_names, old_held, strict=True):
            if held:
                try:
                    connection.renamenx(old_name, new_name)
                except redis.ResponseError:
                    pass  # another process moved it first: the current name holds it now
                break
    return current


def names(digests: Sequence[str], namer: Callable[[str], str]) -> list[str]:
    """A value's names under every key listed, the current one first (for EXISTS and DEL)."""
    return [namer(digest) for digest in digests]
