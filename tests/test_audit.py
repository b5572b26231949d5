"""The console's audit trail: recorded in order, safe across writers, and no quiet edits.

The tamper tests play a corrupt operator with Redis access but without AUDIT_KEY: they
change the trail with plain Redis commands and expect `verify` to name what they did.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import redis

from config.settings import Settings
from ivr.audit_cli import rotate_command, verify_command
from ivr.core import keys
from ivr.core.audit import ACTIONS, AuditLog, AuditTrailBroken
from ivr.core.audit_chain import GENESIS, AuditEntry, head_record
from ivr.core.vault import ChainMac

TIP = "4821730956"
OTHER_TIP = "7310945828"


@pytest.fixture
def audit(redis_client: redis.Redis, settings: Settings) -> AuditLog:
    return AuditLog(redis_client, settings.audit_key)


@pytest.fixture
def trail(audit: AuditLog) -> AuditLog:
    """Ten entries: a handler's morning on two tips, and a supervisor reading the trail."""
    audit.append("alice", "sign_in")
    audit.append("alice", "claim", TIP)
    audit.append("alice", "view", TIP)
    audit.append("alice", "triage", TIP, "status=credible")
    audit.append("alice", "pass_on", TIP, "partner=Metropolitan Police")
    audit.append("bob", "sign_in")
    audit.append("bob", "view", OTHER_TIP)
    audit.append("bob", "close", OTHER_TIP, "status=possibly malicious")
    audit.append("carol", "view_audit")
    audit.append("alice", "sign_out")
    return audit


def raw_entry(redis_client: redis.Redis, seq: int) -> dict:
    return json.loads(redis_client.lindex(keys.AUDIT_TRAIL, seq - 1))


def edited(redis_client: redis.Redis, number: int, **changes: object) -> None:
    """Overwrite entry `number` in place (LSET) with some of its fields changed."""
    redis_client.lset(keys.AUDIT_TRAIL, number - 1, json.dumps({**raw_entry(redis_client, number), **changes}))


def problems_of(trail: AuditLog) -> list[str]:
    report = trail.verify()
    assert not report.ok and report.problems
    return report.problems


def names(problem: str, *seqs: int) -> bool:
    return all(re.search(rf"\b{seq}\b", problem) for seq in seqs)


# -- Writing and reading ------------------------------------------------------------------

def test_entries_are_chained_from_one_and_read_newest_first(trail: AuditLog) -> None:
    newest = trail.entries()
    assert [e.seq for e in newest] == list(range(10, 0, -1))
    assert (newest[0].who, newest[0].action, newest[0].tip) == ("alice", "sign_out", None)
    assert [e.seq for e in trail.entries(start=2, count=3)] == [8, 7, 6]
    assert [e.seq for e in trail.entries(start=8, count=5)] == [2, 1]
    assert trail.entries(start=10) == [] and trail.entries(count=0) == []
    assert [e.seq for e in trail.entries(count=3, newest_first=False)] == [1, 2, 3]
    assert [e.seq for e in trail.entries(start=9, newest_first=False)] == [10]
    assert trail.head() == (10, newest[0].mac)
    assert trail.verify().ok and trail.verify().entries == 10


def test_a_tips_history_and_a_handlers_actions_can_be_picked_out(trail: AuditLog) -> None:
    assert [(e.action, e.detail) for e in trail.for_tip(TIP)] == [
        ("claim", ""), ("view", ""), ("triage", "status=credible"), ("pass_on", "partner=Metropolitan Police")]
    assert [e.seq for e in trail.entries(tip=TIP)] == [5, 4, 3, 2]
    assert [e.seq for e in trail.entries(tip=TIP, start=1, count=2)] == [4, 3]
    assert [e.seq for e in trail.entries(tip=TIP, newest_first=False, count=2)] == [2, 3]
    assert [e.seq for e in trail.entries(who="bob")] == [8, 7, 6]
    assert [e.seq for e in trail.entries(who="bob", tip=OTHER_TIP)] == [8, 7]
    assert trail.for_tip("0000000000") == [] and trail.entries(who="mallory") == []


def test_an_empty_trail_is_intact_and_its_head_is_the_genesis(audit: AuditLog) -> None:
    assert audit.entries() == [] and audit.for_tip(TIP) == []
    assert audit.head() == (0, GENESIS)
    report = audit.verify()
    assert report.ok and report.entries == 0 and report.head == (0, GENESIS)


def test_only_known_actions_are_recorded(audit: AuditLog) -> None:
    with pytest.raises(ValueError, match="must be one of sign_in, .*view_audit"):
        audit.append("alice", "delete_audit")
    assert "view" in ACTIONS and len(set(ACTIONS)) == len(ACTIONS)
    assert audit.entries() == []


def test_who_and_detail_are_short_single_lines(audit: AuditLog) -> None:
    entry = audit.append("  ali\u202ece\n", "pass_on", TIP, "partner=Metropolitan\r\nPolice\x1b[2J")
    assert (entry.who, entry.detail) == ("ali ce", "partner=Metropolitan Police [2J")
    with pytest.raises(ValueError, match="who must not be empty"):
        audit.append(" \t\x00", "view", TIP)
    with pytest.raises(ValueError, match="who must be at most 64"):
        audit.append("a" * 65, "view", TIP)
    with pytest.raises(ValueError, match="detail must be at most 200 characters.*never a tip's text"):
        audit.append("alice", "edit_summary", TIP, "A man in a red car sells drugs outside the school. " * 5)
    with pytest.raises(ValueError, match="tip must be a tip's reference"):
        audit.append("alice", "view", "../../etc")
    assert [e.seq for e in audit.entries()] == [1] and audit.verify().ok


def test_writers_in_parallel_get_one_unbroken_chain(audit: AuditLog, settings: Settings) -> None:
    """Given four workers with their own connections, when each records 50 actions at once..."""
    def handler_session(number: int) -> list[int]:
        with redis.Redis.from_url(settings.redis_url) as connection:
            log = AuditLog(connection, settings.audit_key)
            return [log.append(f"handler{number}", "view", TIP, f"round={i}").seq for i in range(50)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        seqs_by_writer = list(pool.map(handler_session, range(4)))

    # ...then every append got its own seq, and the chain is whole.
    assert sorted(seq for seqs in seqs_by_writer for seq in seqs) == list(range(1, 201))
    assert all(seqs == sorted(seqs) for seqs in seqs_by_writer)
    assert [e.seq for e in audit.entries(count=500, newest_first=False)] == list(range(1, 201))
    report = audit.verify()
    assert report.ok and report.entries == 200 and report.head == audit.head() and audit.head()[0] == 200


def test_a_check_during_appends_sees_an_intact_trail(audit: AuditLog, settings: Settings) -> None:
    def handler_session() -> None:
        with redis.Redis.from_url(settings.redis_url) as connection:
            log = AuditLog(connection, settings.audit_key)
            for _ in range(150):
                log.append("alice", "view", TIP)

    with ThreadPoolExecutor(max_workers=1) as pool:
        writing = pool.submit(handler_session)
        reports = []
        while not writing.done():
            reports.append(audit.verify())
        writing.result()
    assert len(reports) > 1 and all(report.ok for report in reports), [r.problems for r in reports if not r.ok]
    assert audit.verify().entries == 150


def test_entries_carry_the_hour_and_nothing_finer(trail: AuditLog, redis_client: redis.Redis) -> None:
    stored = [value for key in redis_client.keys("*") for value in
              (redis_client.lrange(key, 0, -1) if redis_client.type(key) == b"list" else [redis_client.get(key)])]
    assert set(redis_client.keys("*")) == {keys.AUDIT_TRAIL.encode(), keys.AUDIT_HEAD.encode()} and len(stored) == 11
    for value in stored:
        record = json.loads(value)
        readable = json.dumps({k: v for k, v in record.items() if k not in ("mac", "check")})
        assert TIP not in readable and OTHER_TIP not in readable  # tips are named by keyed digest
        readable = readable.replace(trail.tip_digest(TIP), "<tip>").replace(trail.tip_digest(OTHER_TIP), "<tip>")
        # No seconds, no minutes but :00, no epoch time.
        assert not re.search(r"\d\d:\d\d:\d\d|T\d\d:(?!00Z)|\d{9,}", readable), readable
        if "hour" in record:
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:00Z", record["hour"])


# -- Tampering without the key -----------------------------------------------------------

@pytest.mark.parametrize("field, value", [("detail", "partner=none"), ("who", "mallory"), ("action", "view"),
                                          ("tip", OTHER_TIP), ("tip", None), ("hour", "2020-01-01T03:00Z")])
def test_an_edited_entry_is_named(trail: AuditLog, redis_client: redis.Redis, field: str, value: object) -> None:
    edited(redis_client, 5, **{field: value})
    problems = problems_of(trail)
    assert len(problems) == 1 and "entry 5 was altered" in problems[0], problems


def test_an_entry_whose_seq_was_changed_is_named(trail: AuditLog, redis_client: redis.Redis) -> None:
    edited(redis_client, 5, seq=6)
    assert problems_of(trail) == ["entry 5 was altered after it was written (it now claims to be entry 6): "
                                  "its contents no longer match its MAC"]


def test_an_edit_of_the_last_entry_is_named(trail: AuditLog, redis_client: redis.Redis) -> None:
    edited(redis_client, 10, action="sign_in")
    problems = problems_of(trail)
    assert len(problems) == 1 and "entry 10 was altered" in problems[0], problems


def test_an_entry_with_a_replaced_mac_is_named(trail: AuditLog, redis_client: redis.Redis) -> None:
    edited(redis_client, 5, detail="partner=none", mac="e" * 64)
    problems = problems_of(trail)
    assert any("position 5 (claiming to be entry 5) was not written by Tipline" in p for p in problems), problems
    assert all(names(p, 5) for p in problems), problems


def test_an_entry_deleted_from_the_middle_is_named(trail: AuditLog, redis_client: redis.Redis) -> None:
    assert redis_client.lrem(keys.AUDIT_TRAIL, 1, redis_client.lindex(keys.AUDIT_TRAIL, 4)) == 1
    problems = problems_of(trail)
    assert len(problems) == 1 and problems[0].startswith("entry 5 is missing (deleted from the middle, "
                                                         "between entries 4 and 6"), problems


def test_entries_deleted_from_the_start_are_named(trail: AuditLog, redis_client: redis.Redis) -> None:
    redis_client.lpop(keys.AUDIT_TRAIL)
    redis_client.lpop(keys.AUDIT_TRAIL)
    assert problems_of(trail) == ["entries 1-2 are missing from the start of the trail (deleted)"]


def test_entries_removed_from_the_end_are_named(trail: AuditLog, redis_client: redis.Redis) -> None:
    redis_client.rpop(keys.AUDIT_TRAIL)
    redis_client.rpop(keys.AUDIT_TRAIL)
    assert problems_of(trail) == ["entries 9-10 are missing from the end: the head records 10 entries but the "
                                  "trail stops at entry 8"]


def test_reordered_entries_are_named(trail: AuditLog, redis_client: redis.Redis) -> None:
    third, seventh = redis_client.lindex(keys.AUDIT_TRAIL, 2), redis_client.lindex(keys.AUDIT_TRAIL, 6)
    redis_client.lset(keys.AUDIT_TRAIL, 2, seventh)
    redis_client.lset(keys.AUDIT_TRAIL, 6, third)
    problems = problems_of(trail)
    assert len(problems) == 2 and all("out of order" in p for p in problems), problems
    assert names(problems[0], 7) and "position 3" in problems[0]
    assert names(problems[1], 3) and "position 7" in problems[1]


def test_neighbours_swapped_are_named(trail: AuditLog, redis_client: redis.Redis) -> None:
    third, fourth = redis_client.lindex(keys.AUDIT_TRAIL, 2), redis_client.lindex(keys.AUDIT_TRAIL, 3)
    redis_client.lset(keys.AUDIT_TRAIL, 2, fourth)
    redis_client.lset(keys.AUDIT_TRAIL, 3, third)
    assert problems_of(trail) == ["entry 4 is out of order: stored at position 3, after entry 2 "
                                  "(the trail was reordered)"]


def test_an_entry_made_up_without_the_key_is_named(trail: AuditLog, redis_client: redis.Redis) -> None:
    genuine_fifth = redis_client.lindex(keys.AUDIT_TRAIL, 4)
    made_up = {**raw_entry(redis_client, 5), "who": "bob", "action": "close", "mac": "ab" * 32}
    assert redis_client.linsert(keys.AUDIT_TRAIL, "BEFORE", genuine_fifth, json.dumps(made_up)) == 11
    problems = problems_of(trail)
    assert problems == ["position 5 (claiming to be entry 5) was not written by Tipline: its MAC does not check "
                        "out, so it was inserted or altered by someone without the key"]
    assert trail.verify().entries == 11


def test_an_entry_appended_without_the_key_is_named(trail: AuditLog, redis_client: redis.Redis) -> None:
    made_up = {**raw_entry(redis_client, 10), "seq": 11, "action": "view", "tip": TIP, "mac": "0" * 64}
    redis_client.rpush(keys.AUDIT_TRAIL, json.dumps(made_up))
    problems = problems_of(trail)
    assert len(problems) == 1 and problems[0].startswith("position 11 (claiming to be entry 11) was not written")


def test_a_copied_entry_is_named(trail: AuditLog, redis_client: redis.Redis) -> None:
    redis_client.rpush(keys.AUDIT_TRAIL, redis_client.lindex(keys.AUDIT_TRAIL, 2))
    assert problems_of(trail) == ["entry 3 appears more than once (positions 3 and 11): a copy was inserted"]


def test_something_that_is_not_an_entry_is_named(trail: AuditLog, redis_client: redis.Redis) -> None:
    redis_client.lset(keys.AUDIT_TRAIL, 4, "[" * 100_000)
    problems = problems_of(trail)
    assert problems[0].startswith("position 5 holds something that is not an audit entry"), problems
    assert any(p.startswith("entry 5 is missing") for p in problems) and len(problems) == 2


def test_a_forged_head_is_named_and_stops_new_entries(trail: AuditLog, redis_client: redis.Redis) -> None:
    eighth = raw_entry(redis_client, 8)
    redis_client.set(keys.AUDIT_HEAD, json.dumps({"seq": 8, "mac": eighth["mac"], "check": "c" * 64}))
    assert problems_of(trail) == ["the head record was altered or forged: its MAC does not check out"]
    with pytest.raises(AuditTrailBroken, match="head record does not check out"):
        trail.append("alice", "view", TIP)
    redis_client.set(keys.AUDIT_HEAD, "garbage")
    assert problems_of(trail) == ["the head record was altered or forged: its MAC does not check out"]


def test_an_older_copy_of_the_head_is_named(audit: AuditLog, redis_client: redis.Redis) -> None:
    for _ in range(3):
        audit.append("alice", "view", TIP)
    older_head = redis_client.get(keys.AUDIT_HEAD)
    for _ in range(3):
        audit.append("alice", "view", OTHER_TIP)
    redis_client.set(keys.AUDIT_HEAD, older_head)
    problems = problems_of(audit)
    assert problems == ["the head records 3 entries but the trail holds genuine entries up to entry 6: "
                        "the head was replaced with an older copy"]


def test_a_deleted_list_is_named(trail: AuditLog, redis_client: redis.Redis) -> None:
    redis_client.delete(keys.AUDIT_TRAIL)
    assert problems_of(trail) == ["the trail is empty but its head records 10 entries: the list was deleted"]


def test_a_deleted_head_is_named_and_stops_new_entries(trail: AuditLog, redis_client: redis.Redis) -> None:
    redis_client.delete(keys.AUDIT_HEAD)
    problems = problems_of(trail)
    assert len(problems) == 1 and problems[0].startswith("the head record is missing"), problems
    with pytest.raises(AuditTrailBroken, match="holds 10 entries but its head record is missing"):
        trail.append("alice", "view", TIP)
    with pytest.raises(AuditTrailBroken):
        trail.head()


def test_appends_after_entries_were_removed_keep_the_gap_visible(trail: AuditLog, redis_client: redis.Redis) -> None:
    redis_client.rpop(keys.AUDIT_TRAIL)
    redis_client.rpop(keys.AUDIT_TRAIL)
    assert trail.append("alice", "sign_in").seq == 11
    problems = problems_of(trail)
    assert len(problems) == 1 and problems[0].startswith("entries 9-10 are missing (deleted from the middle"), problems


def test_the_key_matters(trail: AuditLog, redis_client: redis.Redis) -> None:
    report = AuditLog(redis_client, "another-audit-key-" + "x" * 30).verify()
    assert not report.ok and len(report.problems) == 1 and "AUDIT_KEY" in report.problems[0]
    assert "the key is wrong" in report.problems[0]


def test_a_plain_hash_chain_rebuilt_without_the_key_does_not_pass(trail: AuditLog, redis_client: redis.Redis) -> None:
    """A forger who rebuilds every MAC and the head under a key of their own is caught as a wrong key."""
    forger = ChainMac("the forger's own key, long enough" * 2)
    previous = GENESIS
    for seq in range(1, 11):
        entry = {**raw_entry(redis_client, seq), "who": "mallory"}
        entry["mac"] = previous = forger.mac(previous, json.dumps(
            [entry[k] for k in ("seq", "hour", "who", "action", "tip", "detail")], separators=(",", ":")).encode())
        redis_client.lset(keys.AUDIT_TRAIL, seq - 1, json.dumps(entry))
    redis_client.set(keys.AUDIT_HEAD, head_record(forger, 10, previous))
    problems = problems_of(trail)
    assert len(problems) == 1 and "the whole trail was replaced" in problems[0]


# -- The operator's check -----------------------------------------------------------------

def test_the_check_prints_the_head_of_an_intact_trail(trail: AuditLog, settings: Settings,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert verify_command(settings) == 0
    seq, mac = trail.head()
    assert capsys.readouterr().out == f"audit trail: 10 entries, chain intact; head 10:{mac[:16]}\n"


def test_the_check_of_an_empty_trail_passes(audit: AuditLog, settings: Settings,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert verify_command(settings) == 0
    assert capsys.readouterr().out == f"audit trail: 0 entries, chain intact; head 0:{'0' * 16}\n"


def test_the_check_prints_each_problem_and_fails(trail: AuditLog, redis_client: redis.Redis, settings: Settings,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    edited(redis_client, 3, detail="status=unfounded")
    redis_client.rpop(keys.AUDIT_TRAIL)
    assert verify_command(settings) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[-1] == "audit trail: 2 problem(s) found"
    assert lines[0].startswith("entry 3 was altered") and lines[1].startswith("entry 10 is missing from the end")


# -- Rotating AUDIT_KEY -------------------------------------------------------------------

NEW_AUDIT_KEY = "the next audit key, long enough to be one " + "n" * 10


@pytest.fixture
def rotated(trail: AuditLog, redis_client: redis.Redis, settings: Settings) -> AuditLog:
    """The ten entries under the old key; AUDIT_KEY=new,old deployed, one more entry (still
    under the old key), `tipline audit rotate` (entry 12), then two entries under the new key."""
    both = AuditLog(redis_client, [NEW_AUDIT_KEY, settings.audit_key])
    both.append("dave", "sign_in")
    rotation = both.rotate("operator")
    assert rotation is not None and rotation.seq == 12 and rotation.action == "key_rotated"
    assert both.rotate("operator") is None  # once is enough
    both.append("dave", "view", TIP)
    both.append("dave", "sign_out")
    return both


def test_a_rotation_is_recorded_and_verify_checks_across_it(rotated: AuditLog, redis_client: redis.Redis,
                                                            settings: Settings) -> None:
    assert rotated.verify().ok and rotated.head()[0] == 14
    rotation = raw_entry(redis_client, 12)
    assert rotation["detail"] == (f"from={ChainMac(settings.audit_key).fingerprint} "
                                  f"to={ChainMac(NEW_AUDIT_KEY).fingerprint}")
    assert settings.audit_key not in rotation["detail"] and NEW_AUDIT_KEY not in rotation["detail"]
    # Signed under the old key, and the entries after it under the new one.
    assert ChainMac(settings.audit_key).verify(raw_entry(redis_client, 11)["mac"], _signed(redis_client, 12),
                                               rotation["mac"])
    assert ChainMac(NEW_AUDIT_KEY).verify(rotation["mac"], _signed(redis_client, 13),
                                          raw_entry(redis_client, 13)["mac"])


def _signed(redis_client: redis.Redis, seq: int) -> bytes:
    return AuditEntry.from_json(redis_client.lindex(keys.AUDIT_TRAIL, seq - 1)).signed_bytes()


@pytest.mark.parametrize("seq", [3, 12, 13])
def test_tampering_before_at_or_after_the_rotation_is_named(rotated: AuditLog, redis_client: redis.Redis,
                                                            seq: int) -> None:
    edited(redis_client, seq, who="mallory")
    assert any(names(problem, seq) for problem in problems_of(rotated))


def test_with_only_the_new_key_the_part_before_the_rotation_is_reported_unchecked(
        rotated: AuditLog, redis_client: redis.Redis) -> None:
    problems = problems_of(AuditLog(redis_client, NEW_AUDIT_KEY))
    assert "retired AUDIT_KEY" in problems[0] and names(problems[0], 12)


def test_a_rotation_made_with_the_new_key_alone_is_refused(trail: AuditLog, redis_client: redis.Redis,
                                                           settings: Settings) -> None:
    # Someone holding only the new key writes a rotation onto a trail under the old key,
    # and carries on under the new key.
    old, new = ChainMac(settings.audit_key), ChainMac(NEW_AUDIT_KEY)
    redis_client.set(keys.AUDIT_HEAD, head_record(new, 10, raw_entry(redis_client, 10)["mac"]))
    forger = AuditLog(redis_client, NEW_AUDIT_KEY)
    forger._append("mallory", "key_rotated", None, f"from={old.fingerprint} to={new.fingerprint}", rotating=False)
    forger.append("mallory", "view", TIP)
    problems = problems_of(AuditLog(redis_client, [NEW_AUDIT_KEY, settings.audit_key]))
    assert any(names(problem, 11) and "not written by Tipline" in problem for problem in problems)
    assert any("head" in problem for problem in problems)


def test_a_leaked_old_key_cannot_write_after_the_rotation(rotated: AuditLog, redis_client: redis.Redis,
                                                          settings: Settings) -> None:
    old_only = AuditLog(redis_client, settings.audit_key)
    redis_client.set(keys.AUDIT_HEAD, head_record(ChainMac(settings.audit_key), *rotated.head()))
    old_only.append("mallory", "view", TIP)
    problems = problems_of(rotated)
    assert any(names(problem, 15) for problem in problems)


def test_the_rotate_command_needs_both_keys_and_verify_passes_after_it(trail: AuditLog, settings: Settings,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert rotate_command(settings, "operator") == 1
    both = replace(settings, audit_keys=(NEW_AUDIT_KEY, settings.audit_key))
    assert rotate_command(both, "operator") == 0
    assert "entry 11 records the change" in capsys.readouterr().out
    assert verify_command(both) == 0
    assert "entries, chain intact" in capsys.readouterr().out
