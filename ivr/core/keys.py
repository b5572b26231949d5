"""Redis key and RQ queue names, in one place.

Every name is namespaced `tipline:` and none is ever built from a phone number or a
provider sid: where a provider id must name something, it goes through a keyed digest
(`ivr.core.vault.KeyedDigest`) first.
"""

PREFIX = "tipline"

# RQ queues: urgent categories are transcribed first.
QUEUE_URGENT_RECORDINGS = "tipline-recordings-urgent"
QUEUE_RECORDINGS = "tipline-recordings"
RECORDING_QUEUES = (QUEUE_URGENT_RECORDINGS, QUEUE_RECORDINGS)

# How long a repeat of a recording's status callback is recognised and ignored.
RECORDING_SEEN_SECONDS = 14 * 24 * 3600


def recording_seen(recording_key: str) -> str:
    """Set once per recording (SET NX) so that a repeated callback queues nothing."""
    return f"{PREFIX}:recording:seen:{recording_key}"


def recording_job_id(recording_key: str) -> str:
    return f"{PREFIX}-recording-{recording_key}"


# The handlers' queue: urgent tips are claimed first, then tips the tipster came back to
# (an answer, or more information: `ivr.core.follow_up`), then the rest.
HANDLER_QUEUE_URGENT = f"{PREFIX}:queue:urgent"
HANDLER_QUEUE_RETURNING = f"{PREFIX}:queue:returning"
HANDLER_QUEUE = f"{PREFIX}:queue:normal"
HANDLER_QUEUES = (HANDLER_QUEUE_URGENT, HANDLER_QUEUE_RETURNING, HANDLER_QUEUE)


def tip(tip_id: str) -> str:
    """A tip's record (a hash; transcripts and notes in it are ciphertext)."""
    return f"{PREFIX}:tip:{tip_id}"


def case(tip_id: str) -> str:
    """A handler's work on a tip (a hash): summary, tags, notes, drafts (ciphertext under
    the tip's key, so shredding the tip shreds these too), partner, links."""
    return f"{PREFIX}:case:{tip_id}"


def questions(tip_id: str) -> str:
    """The handlers' questions to a tip's tipster (a hash; each question's text is ciphertext
    under the tip's key) and which one waits (`ivr.core.follow_up`)."""
    return f"{PREFIX}:questions:{tip_id}"


# Tips with a question waiting for the tipster (a sorted set: reference by the coarse hour
# it was asked, in ms), for the supervisors' deadlines page.
QUESTIONS_WAITING = f"{PREFIX}:questions:waiting"
# Tips whose tipster-facing status is still "received" or "being looked at" (a sorted set:
# reference by the coarse hour that status began, in ms), for the deadlines page.
TIPSTER_STATUS_SINCE = f"{PREFIX}:tipster-status:since"


# Set once every stored status is a code, not words (ivr/core/status_migration.py).
STATUS_CODES_MIGRATED = f"{PREFIX}:migrated:status-codes"
# Set once every tip from before the tipster-facing status has one (ivr/core/status_migration.py).
TIPSTER_STATUSES_BACKFILLED = f"{PREFIX}:migrated:tipster-statuses"


# The console's accounts and sign-ins. Names are handler account names, never a tipster's.
CONSOLE_ACCOUNTS = f"{PREFIX}:console:accounts"


def console_account(name: str) -> str:
    """A console account (a hash): role, status, argon2 password hash, sealed TOTP secret."""
    return f"{PREFIX}:console:account:{name}"


def console_login(login_id: str) -> str:
    """One signed-in browser: the account name, expiring after the idle timeout."""
    return f"{PREFIX}:console:login:{login_id}"


def console_failures(name_digest: str) -> str:
    """Sign-in attempts checked for a typed name (known or not), named by its keyed digest,
    expiring with the lock."""
    return f"{PREFIX}:console:failures:{name_digest}"


def console_address_failures(address_digest: str) -> str:
    """Sign-in attempts checked from one client address, named by a keyed digest of the
    address (never the address), expiring with the lock: the address is kept no longer."""
    return f"{PREFIX}:console:address-failures:{address_digest}"


def console_logins_of(name: str) -> str:
    """The sign-ins of one account (a set), so disabling it signs every browser out."""
    return f"{PREFIX}:console:logins:{name}"


# Tip parts awaiting a transcript (a sorted set of "<reference>:<part>" by the time they
# arrived), so the clock can find one whose job was lost (workers/stuck.py).
RECORDINGS_AWAITING = f"{PREFIX}:recording:awaiting"


def recording_requeued(recording_key: str) -> str:
    """Set (NX, expiring) when the clock queues a stuck recording's job again: once per round."""
    return f"{PREFIX}:recording:requeued:{recording_key}"


def recording_part(recording_key: str) -> str:
    """Which tip, and which part of it, a recording became (kept as long as the tip)."""
    return f"{PREFIX}:recording:part:{recording_key}"


def doubtful_audio_day(day: str) -> str:
    """A UTC day's counts ("2026-11-30"): recordings transcribed, and those kept because their
    transcript was doubtful (a hash of two numbers, expiring after the window;
    ivr/core/doubtful_audio.py)."""
    return f"{PREFIX}:doubtful-audio:{day}"


# The SMS line. Everything named by a session key (a daily-rotating HMAC of the sender's
# number, `ivr.core.vault.SessionKeys`) expires well before that day's key stops being derived.
QUEUE_MESSAGES = "tipline-messages"
SMS_IDLE = f"{PREFIX}:sms:idle"


def sms_session(session_key: str) -> str:
    """A conversation in progress (a hash; report text and sids are ciphertext)."""
    return f"{PREFIX}:sms:session:{session_key}"


def sms_closed(session_key: str) -> str:
    """Just after DONE: which tip a late text joins (short grace window)."""
    return f"{PREFIX}:sms:closed:{session_key}"


def sms_returning(session_key: str) -> str:
    """A returning tipster's conversation after a proven `REF .. PIN ..` (sealed: which
    reference, the question shown, a CLOSE waiting to be confirmed), ended by their next
    text and expiring with the session's idle lifetime (`ivr.core.sms_returning`)."""
    return f"{PREFIX}:sms:returning:{session_key}"


def sms_rate(session_key: str) -> str:
    """How many texts this session key sent in the current window (INCR + EXPIRE)."""
    return f"{PREFIX}:sms:rate:{session_key}"


def sms_seen(message_key: str) -> str:
    """A MessageSid's keyed digest, set once (SET NX): a retried webhook is answered, not re-run."""
    return f"{PREFIX}:sms:seen:{message_key}"


def sms_inbound(message_key: str) -> str:
    """An inbound message we accepted and still answer for (its MessageSid's keyed digest),
    until its clean-up job has deleted it at the provider; the provider sweep takes in the rest."""
    return f"{PREFIX}:sms:inbound:{message_key}"


# PIN checks on a quoted reference (ivr/core/pin_guard.py). The reference is unverified input
# (a phone number typed in its place, say), so these are named by its keyed digest.
def pin_attempts(reference_key: str) -> str:
    """PINs checked and failed for one reference in the current window or lock (a hash, expiring with it)."""
    return f"{PREFIX}:pin:attempts:{reference_key}"


def pin_locks(reference_key: str) -> str:
    """How many locks in a row a reference's PIN earned (the escalation level); while it lasts,
    the reference is "under attack" on the console."""
    return f"{PREFIX}:pin:locks:{reference_key}"


# The console's hotspot counts
def console_hotspots(week: str) -> str:
    """Tips tagged per area and category in one ISO week ("2026-W48"): a hash, field "area|category"."""
    return f"{PREFIX}:console:hotspots:{week}"


# When `tipline secret rotate` ran for the current SECRET_KEY (a hash: the key's fingerprint,
# never the key, to the time), which starts the old key's grace period (ivr/core/secret_rotation.py).
SECRET_ROTATION = f"{PREFIX}:secret:rotation"


# The console's audit trail (ivr/core/audit.py): a list of MAC-chained JSON entries,
# oldest first, and the head record that vouches for the last one. Never trimmed.
AUDIT_TRAIL = f"{PREFIX}:audit"
AUDIT_HEAD = f"{PREFIX}:audit:head"
AUDIT_ARCHIVES = f"{PREFIX}:audit:archives"


def audit_archive(number: int) -> str:
    """A damaged trail set aside by `tipline audit reseal` (its head beside it, `:head`): evidence, kept."""
    return f"{PREFIX}:audit:archive:{number}"


# Retention (ivr/core/retention.py): what is left of a tip deleted under the retention rules.
def tombstone(reference: str) -> str:
    """A deleted tip's tombstone (a hash: the PIN's argon2 hash, the month it came, a coarse
    outcome), so its tipster hears it was dealt with; it expires after TOMBSTONE_DAYS."""
    return f"{PREFIX}:tombstone:{reference}"


# Held (SET NX PX, renewed each tick) by the one clock that runs the periodic work; its value
# is that clock's random id (workers/clock_lease.py).
CLOCK_LEADER = f"{PREFIX}:clock:leader"


def retention_day(day: str) -> str:
    """Taken (SET NX, expiring) by the one clock that runs a day's retention ("2026-11-30")."""
    return f"{PREFIX}:retention:day:{day}"


# Set once the audit trail names tips only by keyed digest (ivr/core/audit_digests.py).
AUDIT_TIPS_DIGESTED = f"{PREFIX}:migrated:audit-tip-digests"
# Keys (ivr/core/rekeying.py): tips still wrapped directly under a master key, from before
# period keys (a hash: master key id -> count, exact once `..:counted` is set), and the
# SCAN cursor of `tipline keys rewrap`'s job while it runs. No key material is ever in Redis.
OLD_FORMAT_TIPS = f"{PREFIX}:keys:old-format-tips"
OLD_FORMAT_TIPS_COUNTED = f"{PREFIX}:keys:old-format-tips:counted"
KEYS_REWRAP_CURSOR = f"{PREFIX}:keys:rewrap-cursor"
# RQ queue for slow housekeeping (re-wrapping keys): listened to last, after every recording and message.
QUEUE_MAINTENANCE = "tipline-maintenance"

# The clock's last tick (Unix seconds, a plain string): `/metrics` shows how long ago it was.
CLOCK_LAST_TICK = f"{PREFIX}:clock:last-tick"


def worker_pulse(worker_name: str) -> str:
    """Renewed every few seconds while the RQ worker of that name lives (ivr/core/worker_pulse.py).
    The name is RQ's own (a random hex id), never anything a caller sent."""
    return f"{PREFIX}:worker:pulse:{worker_name}"


# Written just before Redis's WAIT (ivr/core/replication.py): a write of the waiting
# connection's own, later than the commit it vouches for. Its value means nothing.
REPLICATION_PROBE = f"{PREFIX}:replication:probe"

# PINs minted ahead with their argon2 hashes (ivr/core/pin_pool.py): a list of sealed
# {pin, hash} entries, filled by the clock, each taken (LPOP) by one new tip.
PIN_POOL = f"{PREFIX}:pin-pool"
