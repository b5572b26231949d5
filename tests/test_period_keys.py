"""Period keys: a shred survives backups, machines agree on keys, the keys' commands and start check."""

from __future__ import annotations

import base64
import secrets
import threading
from datetime import UTC, datetime

import pytest
import redis

from dev.processes import run_worker_burst
from dev.redis_server import RedisServer
from ivr import create_app
from ivr.cli import main
from ivr.core import keys
from ivr.core.choices import Choices
from ivr.core.handler_queue import HandlerQueue
from ivr.core.keys_in_use import MissingMasterKey
from ivr.core.period_keys import PeriodKeyGone, PeriodKeys
from ivr.core.tips import READY, NewPart, ShreddedTip, TipStore
from ivr.core.vault import KeyRing, TipVault

OCTOBER = datetime(2026, 10, 14, 9, 30, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 2, 18, 5, tzinfo=UTC)


def new_key(key_id: str) -> str:
    return f"{key_id}:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def a_tip_arrives(tips: TipStore, reference: str, when: datetime, said: str) -> None:
    tips.clock = lambda: when
    part = NewPart(choices=Choices(language="en", category="drugs", reference=reference), pin_hash=None,
                   channel="voice", urgent=False, seconds=20)
    with tips.queue._redis.pipeline() as pipe:
        tips.add_part(pipe, part, existing_parts=0)
        pipe.execute()
    tips.finish_part(reference, 1, READY, transcript=said)


def label_of(connection: redis.Redis, reference: str) -> str:
    return connection.hget(keys.tip(reference), "wrapped_key").decode().partition(":")[0]


def backup(connection: redis.Redis) -> dict[bytes, bytes]:
    """What a Redis backup holds: every key, serialised (DUMP)."""
    return {key: connection.dump(key) for key in connection.keys("*")}


def restore(dumped: dict[bytes, bytes], server: RedisServer) -> redis.Redis:
    """A fresh redis-server holding the backup."""
    server.data_dir.mkdir(parents=True)
    server.start()
    restored = server.client()
    for key, value in dumped.items():
        restored.restore(key, 0, value)
    return restored


def test_a_shredded_tip_stays_shredded_when_an_older_backup_is_restored(core, redis_client, tmp_path) -> None:
    # Given tips in two months, and a backup of Redis taken while all of them were readable
    tips = core.tips
    a_tip_arrives(tips, "OCT1", OCTOBER, "the van in the yard")
    a_tip_arrives(tips, "NOV1", NOVEMBER, "a knife under the bridge")
    a_tip_arrives(tips, "NOV2", NOVEMBER, "the man at the garage")
    assert {label_of(redis_client, r) for r in ("NOV1", "NOV2")} == {"2026-11.1"}
    before_the_shred = backup(redis_client)

    # When a November tip is shredded and retention re-keys November
    tips.shred("NOV1")
    assert tips.rekey_period("2026-11") == 1
    assert tips.vault.periods.labels() == ["2026-10.1", "2026-11.2"]
    after_the_rekey = backup(redis_client)

    # Then the backup from before the shred, restored into a fresh Redis, still holds the
    # shredded tip's wrapped key, under a period key version that exists nowhere now
    old_server = RedisServer(tmp_path / "old-backup", appendfsync=None)
    new_server = RedisServer(tmp_path / "new-backup", appendfsync=None)
    try:
        restored = restore(before_the_shred, old_server)
        assert label_of(restored, "NOV1") == "2026-11.1"
        from_old_backup = TipStore(restored, tips.vault, HandlerQueue(restored))
        with pytest.raises(ShreddedTip):
            from_old_backup.get("NOV1")
        with pytest.raises(PeriodKeyGone, match="2026-11.1"):
            tips.vault.periods.ring("2026-11.1")
        assert from_old_backup.get("OCT1").transcript == "the van in the yard"  # another month: opens
        # The other November tip was under the same destroyed version, but it survived the
        # re-key: the new version carries it, so the old backup still opens it ...
        assert from_old_backup.get("NOV2").transcript == "the man at the garage"
        # ... as does every backup taken after the re-key.
        restored_new = restore(after_the_rekey, new_server)
        from_new_backup = TipStore(restored_new, tips.vault, HandlerQueue(restored_new))
        assert from_new_backup.get("NOV2").transcript == "the man at the garage"
        assert from_new_backup.get("OCT1").transcript == "the van in the yard"
        restored.close()
        restored_new.close()
    finally:
        old_server.remove()
        new_server.remove()
    assert tips.get("NOV2").transcript == "the man at the garage"
    with pytest.raises(ShreddedTip):
        tips.get("NOV1")


def test_a_survivor_carried_by_one_re_key_is_dropped_by_the_re_key_after_its_own_shred(
        core, redis_client, tmp_path) -> None:
    tips = core.tips
    for reference, said in (("NOV1", "a knife under the bridge"), ("NOV2", "the man at the garage"),
                            ("NOV3", "the blue car")):
        a_tip_arrives(tips, reference, NOVEMBER, said)
    oldest_backup = backup(redis_client)
    tips.shred("NOV1")
    tips.rekey_period("2026-11")  # NOV2 and NOV3 carried by version 2
    tips.shred("NOV2")
    tips.rekey_period("2026-11")  # version 3 carries NOV3 only
    assert tips.vault.periods.labels("2026-11") == ["2026-11.3"]
    server = RedisServer(tmp_path / "oldest", appendfsync=None)
    try:
        restored = restore(oldest_backup, server)
        from_oldest = TipStore(restored, tips.vault, HandlerQueue(restored))
        for shredded in ("NOV1", "NOV2"):
            with pytest.raises(ShreddedTip):
                from_oldest.get(shredded)
        assert from_oldest.get("NOV3").transcript == "the blue car"
        restored.close()
    finally:
        server.remove()
    carried = [path for path in tips.vault.periods.directory.iterdir() if path.suffix == ".carried"]
    assert [path.name for path in carried] == ["2026-11.3.carried"] and carried[0].stat().st_mode & 0o777 == 0o600
    assert b"NOV3" not in carried[0].read_bytes()  # sealed: not even the references read in clear


def test_two_machines_creating_a_periods_key_at_once_agree(core, settings) -> None:
    ring = KeyRing(settings.vault_keys)
    machines = [PeriodKeys(settings.period_keys_dir, ring, must_exist=True) for _ in range(8)]
    start = threading.Barrier(len(machines))
    rings: list[KeyRing] = []

    def create(machine: PeriodKeys) -> None:
        start.wait()
        rings.append(machine.newest("2026-12"))

    threads = [threading.Thread(target=create, args=(machine,)) for machine in machines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert machines[0].labels("2026-12") == ["2026-12.1"]
    wrapped = rings[0].wrap(b"k" * 32, b"context")
    assert all(other.unwrap(wrapped, b"context") == b"k" * 32 for other in rings)
    assert not [p for p in settings.period_keys_dir.iterdir() if p.name.endswith(".partial")]
    assert oct(settings.period_keys_dir.joinpath("2026-12.1.key").stat().st_mode & 0o777) == "0o600"


def test_re_keying_while_tips_arrive_loses_none(core) -> None:
    tips = core.tips
    for n in range(20):
        a_tip_arrives(tips, f"EARLY{n}", NOVEMBER, f"early {n}")
    arriving = TipStore(core.redis, tips.vault, HandlerQueue(core.redis))
    done = threading.Event()
    arrived: list[str] = []

    def tips_keep_arriving() -> None:
        while not done.is_set() or len(arrived) < 5:
            reference = f"LATE{len(arrived)}"
            a_tip_arrives(arriving, reference, NOVEMBER, f"said {reference}")
            arrived.append(reference)

    arrivals = threading.Thread(target=tips_keep_arriving)
    arrivals.start()
    try:
        tips.rekey_period("2026-11")
    finally:
        done.set()
        arrivals.join()
    assert tips.vault.periods.labels("2026-11") == ["2026-11.2"]
    for reference in [f"EARLY{n}" for n in range(20)] + arrived:
        assert tips.get(reference).transcript.endswith(reference.removeprefix("EARLY").removeprefix("LATE"))


def test_the_app_refuses_to_start_without_a_master_key_in_use(core, settings, environment, monkeypatch,
                                                            capsys) -> None:
    a_tip_arrives(core.tips, "NOV1", NOVEMBER, "something")
    without_it = {**environment, "VAULT_KEYS": new_key("fresh")}
    from config.settings import Settings

    with pytest.raises(MissingMasterKey, match="'test1'.*2026-11.1"):
        create_app(Settings.from_env(without_it))
    monkeypatch.setenv("VAULT_KEYS", without_it["VAULT_KEYS"])
    for name, value in environment.items():
        if name != "VAULT_KEYS":
            monkeypatch.setenv(name, value)
    assert main(["keys", "list"]) == 2
    assert "VAULT_KEYS lacks master key 'test1'" in capsys.readouterr().err


def test_old_format_tips_need_their_master_key_and_move_with_the_rewrap_job(core, settings, environment, redis_client,
                                                                         monkeypatch, capsys) -> None:
    # Given tips from before period keys: data keys wrapped straight under master key test1
    old_style = TipStore(core.redis, TipVault(KeyRing(settings.vault_keys)), HandlerQueue(core.redis))
    for reference in ("OLD1", "OLD2"):
        a_tip_arrives(old_style, reference, OCTOBER, f"said {reference}")
    assert label_of(redis_client, "OLD1") == "test1"
    # and a new master key put first
    rotated = {**environment, "VAULT_KEYS": f"{new_key('k2')},{settings.vault_keys}"}
    for name, value in rotated.items():
        monkeypatch.setenv(name, value)
    a_tip_arrives(core.tips, "NEW1", NOVEMBER, "said NEW1")  # sealed under test1 (the app's ring)

    # The keys as listed: test1 seals November's period key and wraps two old-format tips
    assert main(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert "master key k2 (current): 0 period key(s), 0 tip(s); 0 tip(s) in the old format" in listed
    assert "master key test1 (in use): 1 period key(s), 1 tip(s); 2 tip(s) in the old format" in listed
    assert "  period key 2026-11.1: 1 tip(s)" in listed
    # The worker refuses to start with test1 gone, naming it (the count in Redis, no key files needed)
    from config.settings import Settings
    from ivr.core import build_core

    core.tips.vault.periods.destroy("2026-11.1")  # only the old-format tips still need test1 now
    without = build_core(Settings.from_env({**environment, "VAULT_KEYS": new_key("k2")}))
    with pytest.raises(MissingMasterKey, match="'test1', under which 2 tip"):
        without.check_keys_in_use()
    without.redis.close()

    # When the rewrap job runs in a real worker
    assert main(["keys", "rewrap"]) == 0
    assert "Queued job tipline-keys-rewrap" in capsys.readouterr().out
    first = run_worker_burst(rotated)
    assert first.returncode == 0, first.stderr[-2000:]
    # Then the old-format tips are under October's period key, sealed under k2, and open
    assert label_of(redis_client, "OLD1") == label_of(redis_client, "OLD2") == "2026-10.1"
    assert core.tips.vault.periods.master_id_of("2026-10.1") == "k2"
    assert main(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert "master key test1 (unused: it can be removed from VAULT_KEYS)" in listed
    assert "master key k2 (current): 1 period key(s), 2 tip(s); 0 tip(s) in the old format" in listed
    assert "(shredded; unreadable): 2026-11.1" in listed  # NEW1's key destroyed above: as good as shredded
    only_k2 = Settings.from_env({**rotated, "VAULT_KEYS": rotated["VAULT_KEYS"].split(",")[0]})
    reader = build_core(only_k2)
    reader.check_keys_in_use()
    assert reader.tips.get("OLD1").transcript == "said OLD1"
    reader.redis.close()
    # and a second run moves nothing
    assert main(["keys", "rewrap"]) == 0
    second = run_worker_burst(rotated)
    assert second.returncode == 0
    assert "keys re-wrapped: 0 record(s) moved" in second.stdout + second.stderr
    assert label_of(redis_client, "OLD1") == "2026-10.1"


def test_keys_new_prints_a_usable_entry_and_stores_nothing(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["keys", "new", "--id", "k2027"]) == 0
    entry = capsys.readouterr().out.strip()
    assert entry.startswith("k2027:") and KeyRing(entry).current_id == "k2027"
    assert main(["keys", "new"]) == 0
    assert capsys.readouterr().out.strip() != entry
    assert main(["keys", "new", "--id", "2026-11.1"]) == 2
    assert list(tmp_path.iterdir()) == []
