"""Period keys: one key per month tips arrived, kept in files outside Redis and its backups.

A tip's data key is wrapped under its month's key (`ivr.core.vault.TipVault`). When tips of
a month are shredded, the retention run re-keys that month (`TipStore.rekey_period`): the
surviving tips are re-wrapped under a new version of the month's key and the old version's
file is destroyed. A Redis backup taken before the shred still holds the shredded tip's
wrapped key, but it names a period key version that no longer exists anywhere, so a
restore cannot bring the tip back. That holds only while PERIOD_KEYS_DIR is kept out of
every backup (README, "Keys").

Each file `<period>.<version>.key` (mode 0600) holds one line: the period key sealed under
a master key from VAULT_KEYS, as `<master id>:<base64>` (the id readable without a key, so
the start check is cheap). Every web and worker machine reads the same directory (a shared
volume): nothing is cached, so a version destroyed on one machine is gone for all at once.
A file appears whole or not at all (written aside, then hard-linked into place, which
fails if the name exists): two machines creating the same period's key agree on the
winner's.

A re-key would make a Redis backup from before it useless for the whole month: its
records name the destroyed version. So the new version's file has a companion,
`<period>.<version>.carried`, sealed under that version: every tip of the period that
survived the re-key, with its data key wrapped under the new version. A record restored
from an older backup opens through it (`carried`); a shredded tip is in no companion, so
it does not. The companion is destroyed with its version.
"""

from __future__ import annotations

import json
import os
import secrets
from collections import defaultdict
from pathlib import Path

from ivr.core.vault import PERIOD_LABEL, KeyRing, PeriodKeyGone, VaultError

FILE_SUFFIX = ".key"
# Beside a key version: the tips of its period that survived the re-key that made it
# (`write_carried`), so a Redis backup from before that re-key still opens them.
CARRIED_SUFFIX = ".carried"
__all__ = ["PeriodKeyGone", "PeriodKeys", "PeriodKeysUnusable"]


class PeriodKeysUnusable(VaultError):
    """PERIOD_KEYS_DIR is missing or open to others; the message says what to do."""


def _context(label: str) -> bytes:
    return f"tipline.period-key|{label}".encode()


def _carried_context(label: str) -> bytes:
    return f"tipline.period-key.carried|{label}".encode()


def _sort_key(label: str) -> tuple[str, int]:
    period, _, version = label.partition(".")
    return period, int(version)


class PeriodKeys:
    """The period key files in one directory, sealed under the master keys of `master`."""

    def __init__(self, directory: Path, master: KeyRing, must_exist: bool) -> None:
        if not directory.is_dir():
            if must_exist:
                raise PeriodKeysUnusable(
                    f"PERIOD_KEYS_DIR {directory} does not exist. It must be the shared volume every web and "
                    "worker machine mounts: mount it (never create an empty one on a single machine).")
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if directory.stat().st_mode & 0o077:
            raise PeriodKeysUnusable(f"PERIOD_KEYS_DIR {directory} is open to other users: `chmod 700 {directory}`.")
        self.directory = directory
        self._master = master

    def _path(self, label: str) -> Path:
        if not PERIOD_LABEL.fullmatch(label):
            raise ValueError(f"not a period key label: {label!r}")
        return self.directory / f"{label}{FILE_SUFFIX}"

    def labels(self, period: str | None = None) -> list[str]:
        """Every period key there is (or one period's), oldest first."""
        found = []
        for name in os.listdir(self.directory):
            label = name.removesuffix(FILE_SUFFIX)
            match = PERIOD_LABEL.fullmatch(label)
            if name.endswith(FILE_SUFFIX) and match and (period is None or match.group(1) == period):
                found.append(label)
        return sorted(found, key=_sort_key)

    def newest(self, period: str) -> KeyRing:
        """The ring of `period`'s newest key, creating version 1 when the period has none."""
        existing = self.labels(period)
        return self.ring(existing[-1] if existing else self._create(f"{period}.1"))

    def ring(self, label: str) -> KeyRing:
        """The ring of one period key (its id is the label)."""
        try:
            sealed = self._path(label).read_text().strip()
        except FileNotFoundError:
            raise PeriodKeyGone(f"period key {label} was destroyed (its tips were re-keyed after a shred)") from None
        return KeyRing.of_one_key(label, self._master.unwrap(sealed, _context(label)))

    def new_version(self, period: str) -> str:
        """Create the period's next key version (the newest from now on); returns its label."""
        existing = self.labels(period)
        version = _sort_key(existing[-1])[1] + 1 if existing else 1
        return self._create(f"{period}.{version}")

    def _create(self, label: str) -> str:
        """Write a fresh key as `label`, sealed under the current master key, unless another
        process just did (then theirs stands). A file is never rewritten in place: one being
        re-sealed while another machine destroys it would come back."""
        sealed = self._master.wrap(KeyRing.fresh_material(), _context(label))
        aside = self.directory / f".{label}.{secrets.token_hex(8)}.partial"
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(sealed + "\n")
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(aside, self._path(label))
            except FileExistsError:
                pass  # another machine created it first: theirs is the period's key
        finally:
            aside.unlink(missing_ok=True)
        self._sync_directory()
        return label

    def write_carried(self, label: str, wrapped_keys: dict[str, str]) -> None:
        """Record, sealed under version `label`, the tips that survived the re-key that made it
        (tip id -> its data key wrapped under `label`). Written aside, then renamed into place."""
        sealed = self.ring(label).wrap(json.dumps(wrapped_keys, sort_keys=True).encode(), _carried_context(label))
        path = self._path(label).with_suffix(CARRIED_SUFFIX)
        aside = self.directory / f".{label}.{secrets.token_hex(8)}.partial"
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(sealed + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(aside, path)
        self._sync_directory()

    def carried(self, label: str, tip_id: str) -> str | None:
        """A tip whose key version `label` is gone: its data key wrapped under the period's
        newest version, if that version's re-key carried it (None: shredded, or never re-keyed)."""
        match = PERIOD_LABEL.fullmatch(label)
        existing = self.labels(match.group(1)) if match else []
        if not existing:
            return None
        newest = existing[-1]
        try:
            sealed = self._path(newest).with_suffix(CARRIED_SUFFIX).read_text().strip()
        except FileNotFoundError:
            return None
        table: dict[str, str] = json.loads(self.ring(newest).unwrap(sealed, _carried_context(newest)))
        return table.get(tip_id)

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def destroy(self, label: str) -> None:
        """Overwrite a period key's file, then unlink it (already gone: nothing to do).

        Overwriting is best effort (a journalling or copy-on-write filesystem, or an SSD,
        may keep old blocks): what makes destruction final is that the file is in no backup.
        """
        path = self._path(label)
        self._destroy_file(path)
        self._destroy_file(path.with_suffix(CARRIED_SUFFIX))
        self._sync_directory()

    @staticmethod
    def _destroy_file(path: Path) -> None:
        """Overwrite, then unlink (best effort, as for a key file)."""
        try:
            fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            return
        try:
            os.write(fd, b"\0" * max(os.fstat(fd).st_size, 1))
            os.fsync(fd)
        finally:
            os.close(fd)
        path.unlink(missing_ok=True)

    def master_id_of(self, label: str) -> str:
        """The master key a period key's file is sealed under (read from its header, no key needed)."""
        return self._path(label).read_text().partition(":")[0]

    def sealed_under(self) -> dict[str, list[str]]:
        """Master key id -> the period keys sealed under it."""
        found: dict[str, list[str]] = defaultdict(list)
        for label in self.labels():
            try:
                found[self.master_id_of(label)].append(label)
            except FileNotFoundError:
                continue  # destroyed meanwhile
        return dict(found)

    def periods_to_reseal(self) -> list[str]:
        """Periods with a key sealed under a master key other than the current one (rotation):
        re-keying them (`ivr.core.rekeying`) seals their new version under the current one."""
        return sorted({label.partition(".")[0] for master_id, labels in self.sealed_under().items()
                       if master_id != self._master.current_id for label in labels})
