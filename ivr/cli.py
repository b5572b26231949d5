"""`tipline`: the operator's command line (installed into the venv by `make run` / `make test`).

    tipline handler add --role admin NAME    make an account; prints its one-time enrolment link
    tipline handler link NAME                a new enrolment link (lost phone, forgotten password)
    tipline handler list                     accounts, roles and status
    tipline handler disable NAME             sign them out everywhere and refuse sign-in
    tipline audit verify                     check the audit trail's HMAC chain (exit 1 if broken)
    tipline audit reseal --confirm           after a failed check: keep the damaged trail aside, start anew
    tipline retention plan|run [--as-of D]   tips whose time is up: count them, or delete them
    tipline keys new|list|rewrap             the vault's keys (ivr/keys_cli.py)
    tipline audit rotate                     with AUDIT_KEY=new,old: chain the trail under the new key from here
    tipline secret new                       print a fresh random key (for SECRET_KEY or AUDIT_KEY)
    tipline secret rotate                    with SECRET_KEY=new,old: re-seal what depends on the old key
    tipline secret status                    whether anything still needs SECRET_KEY's old key, and until when
    tipline provider setup|check|fallback-twiml   the line's numbers at Twilio (ivr/provider_cli.py)
    tipline backup create|verify|restore PATH   a consistent copy of the data; check one; load one into an empty Redis
    tipline health [--json]                  is the line well: Redis, workers, clock, queues, provider (exit 1 if not)

No password is ever printed or taken on the command line: the person sets theirs through
the link. Settings come from the environment, as for `make run` (same var/ folder).
"""

from __future__ import annotations

import argparse
import sys

import redis

from config.settings import Settings, SettingsError
from ivr import backup_cli, line_health_cli, provider_cli, secret_cli
from ivr.audit_cli import reseal_command, rotate_command, verify_command
from ivr.core import Core, build_core
from ivr.core.accounts import ROLES, AccountError
from ivr.keys_cli import add_keys_commands, keys_command
from ivr.retention_cli import add_parser as add_retention_parser
from ivr.retention_cli import retention_command

OPERATOR = "operator"
# One example per command, shown by `tipline TOPIC ACTION --help` (and its topic's --help).
EXAMPLES = {
    ("handler", "add"): "tipline handler add --role admin alice",
    ("handler", "link"): "tipline handler link alice",
    ("handler", "list"): "tipline handler list",
    ("handler", "disable"): "tipline handler disable alice",
    ("audit", "verify"): "tipline audit verify",
    ("audit", "reseal"): "tipline audit reseal --confirm",
    ("audit", "rotate"): "AUDIT_KEY=NEW,OLD tipline audit rotate",
    ("retention", "plan"): "tipline retention plan --as-of 2027-01-31",
    ("retention", "run"): "tipline retention run",
    ("keys", "new"): "tipline keys new --id k20270101",
    ("keys", "list"): "tipline keys list",
    ("keys", "rewrap"): "tipline keys rewrap",
    ("secret", "new"): "tipline secret new",
    ("secret", "rotate"): "SECRET_KEY=NEW,OLD tipline secret rotate",
    ("secret", "status"): "tipline secret status",
    ("backup", "create"): "tipline backup create /srv/backups/tipline-2027-01-31",
    ("backup", "verify"): "tipline backup verify /srv/backups/tipline-2027-01-31",
    ("backup", "restore"): "tipline backup restore /srv/backups/tipline-2027-01-31",
    ("provider", "setup"): "tipline provider setup --number +448005550111",
    ("provider", "check"): "tipline provider check",
    ("provider", "fallback-twiml"): "tipline provider fallback-twiml",
    ("health", ""): "tipline health --json",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tipline", description="Tipline's operator commands.")
    topics = parser.add_subparsers(dest="topic", required=True)
    handler = topics.add_parser("handler", help="console accounts").add_subparsers(dest="action", required=True)
    add = handler.add_parser("add", help="make an account and print its enrolment link")
    add.add_argument("--role", choices=ROLES, default="handler")
    add.add_argument("name")
    link = handler.add_parser("link", help="print a new enrolment link for an account")
    link.add_argument("name")
    handler.add_parser("list", help="list accounts")
    disable = handler.add_parser("disable", help="disable an account")
    disable.add_argument("name")
    audit = topics.add_parser("audit", help="the audit trail").add_subparsers(dest="action", required=True)
    audit.add_parser("verify", help="check the audit trail's chain")
    reseal = audit.add_parser("reseal", help="after a failed check, set the damaged trail aside and start anew")
    reseal.add_argument("--confirm", action="store_true", required=True,
                        help="you have recorded what `tipline audit verify` found")
    add_retention_parser(topics)
    add_keys_commands(topics)
    audit.add_parser("rotate", help="with AUDIT_KEY=new,old: record the change, then chain under the new key")
    secret_cli.add_commands(topics)
    backup_cli.add_parser(topics)
    provider_cli.add_parser(topics)
    line_health_cli.add_parser(topics)
    explain(parser)
    args = parser.parse_args(argv)

    try:
        if args.topic == "keys":
            return keys_command(args)
        settings = Settings.from_env()
        if args.topic == "retention":
            return retention_command(settings, args)
        if args.topic == "secret":
            return secret_cli.run(args, settings)
        if args.topic == "provider":
            return provider_cli.provider_command(args)
        if args.topic == "health":
            return line_health_cli.health_command(settings, args)
        if args.topic == "backup":
            return backup_cli.backup_command(settings, args)
        if args.topic == "audit":
            if args.action == "verify":
                return verify_command(settings)
            return (rotate_command if args.action == "rotate" else reseal_command)(settings, OPERATOR)
        return _handler_command(build_core(settings), args)
    except SettingsError as error:
        print(f"tipline: {error}", file=sys.stderr)
        return 2
    except AccountError as error:
        print(f"tipline: {error}", file=sys.stderr)
        return 1
    except redis.RedisError as error:
        print(f"tipline: cannot reach Redis ({type(error).__name__}). Is `make run` running, or REDIS_URL set?",
              file=sys.stderr)
        return 3


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand under `parser`, in the order they were added."""
    # argparse keeps these on its private _SubParsersAction; it has no public way to list them.
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            found += [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return found


def explain(parser: argparse.ArgumentParser) -> None:
    """Every command with its one-line help under `tipline --help`; an example under each command's --help."""
    listing = []
    for topic, topic_text, topic_parser in _subcommands(parser):
        examples = []
        if not _subcommands(topic_parser):  # a command of one word (`tipline health`)
            example = EXAMPLES.get((topic, ""), f"tipline {topic}")
            topic_parser.formatter_class = argparse.RawDescriptionHelpFormatter
            topic_parser.epilog = f"Example:\n  {example}"
            listing.append(f"  {f'tipline {topic}':32} {topic_text}")
            continue
        for action, text, action_parser in _subcommands(topic_parser):
            example = EXAMPLES.get((topic, action), f"tipline {topic} {action}")  # the test wants one in EXAMPLES
            action_parser.formatter_class = argparse.RawDescriptionHelpFormatter
            action_parser.epilog = f"Example:\n  {example}"
            action_parser.description = action_parser.description or text[:1].upper() + text[1:] + "."
            listing.append(f"  {f'tipline {topic} {action}':32} {text}")
            examples.append(f"  {example}")
        topic_parser.formatter_class = argparse.RawDescriptionHelpFormatter
        topic_parser.epilog = "Examples:\n" + "\n".join(examples)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = ("commands:\n" + "\n".join(listing) + "\n\nEach command's --help shows an example: "
                     "tipline handler add --help\nSettings come from the environment, as for `make run` (and, "
                     "beside a running `make run`, var/run.json).")


def _handler_command(core: Core, args: argparse.Namespace) -> int:
    accounts, audit = core.accounts, core.audit
    if args.action == "list":
        for account in accounts.all():
            print(f"{account.name:32} {account.role:10} {account.status}")
        return 0
    if args.action == "disable":
        accounts.disable(args.name)
        audit.append(OPERATOR, "account_disabled", detail=f"name={args.name}")
        print(f"{args.name} is disabled and signed out everywhere.")
        return 0
    if args.action == "add":
        token = accounts.create(args.name, args.role)
        audit.append(OPERATOR, "account_created", detail=f"name={args.name} role={args.role}")
    else:
        token = accounts.new_enrolment_link(args.name)
        audit.append(OPERATOR, "account_created", detail=f"name={args.name} new enrolment link")
    account = accounts.existing(args.name.strip().lower())
    print(f"Account {account.name} ({account.role}) is waiting for enrolment.")
    print("Give this one-time link to the person (it works once, for 72 hours):")
    print(f"{core.settings.public_base_url}/console/enrol/{token}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
