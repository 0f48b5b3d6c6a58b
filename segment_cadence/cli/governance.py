"""Governance commands: the campaign firewall, override requests, the audit trail and the
language lint.

    segment-cadence campaign check FILE [--allowed-out CSV]   exit 0 clear, 3 if anyone blocked
    segment-cadence campaign override FILE --by NAME --reason TEXT   always refused (exit 4)
    segment-cadence audit customer ID                          a regulator's request
    segment-cadence audit dispute ID --by NAME --reason TEXT --decision D --decided-by NAME
    segment-cadence lint [FILE ...]                           retired language (exit 1 if any)
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.defs.governance import audit, firewall, governance
from segment_cadence.platform import state_store
from segment_cadence.platform.warehouse_lock import command_connection

EXIT_BLOCKED = 3
EXIT_REFUSED = 4


def cmd_campaign(args: argparse.Namespace) -> int:
    """A check, and an override request, read the published membership in a reader's turn at
    the warehouse; what they record goes to the state store, so nothing here writes the
    warehouse."""
    try:
        campaign = firewall.load_campaign(args.file)
        if args.action == "override":
            with command_connection("campaign override", read_only=True) as con:
                answer = firewall.request_override(
                    con,
                    campaign,
                    requested_by=args.by,
                    reason=args.reason,
                    requested_at=datetime.now(),
                )
            print(answer.message)
            print(f"recorded as manual override attempt {answer.request_id}")
            return EXIT_REFUSED
        checked_at = datetime.now()
        with command_connection("campaign check", read_only=True) as con:
            decision = firewall.check_campaign(con, campaign, record=False)
        if decision.blocked:
            with state_store.transaction() as state:
                decision.recorded = firewall.record_check(state, decision, checked_at)
    except firewall.CampaignError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(decision.summary())
    if decision.blocked:
        recorded_as = "a segment-unsafe attempt" if decision.unsafe else "the campaign's holdout"
        print(
            f"recorded as {recorded_as}"
            if decision.recorded
            else "(already recorded: the same campaign was checked against this membership)"
        )
    if args.allowed_out:
        Path(args.allowed_out).write_text(
            "customer_id\n" + "".join(f"{c}\n" for c in decision.allowed)
        )
        print(f"who may be sent to: {args.allowed_out}")
    return EXIT_BLOCKED if decision.unsafe else 0


def cmd_audit(args: argparse.Namespace) -> int:
    if args.action == "dispute":
        with command_connection("audit dispute", read_only=True) as con:
            try:
                request_id = audit.record_dispute(
                    con,
                    args.customer,
                    raised_by=args.by,
                    reason=args.reason,
                    decision=args.decision,
                    decided_by=args.decided_by,
                )
            except ValueError as error:
                print(f"error: {error}", file=sys.stderr)
                return 1
        print(f"dispute {request_id} recorded for {args.customer}: {args.decision}")
        return 0
    with command_connection("audit customer", read_only=True) as con:
        record = audit.customer_record(con, args.customer)
    print("\n".join(record.lines()))
    return 0 if record.months or record.changes or record.requests else 1


def cmd_lint(args: argparse.Namespace) -> int:
    findings = governance.lint_segments(list(segment_dictionary.load().segments))
    for name in args.files:
        try:
            campaign = firewall.load_campaign(name)
        except firewall.CampaignError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        for field, text in (("name", campaign.name), ("copy", campaign.copy)):
            findings += governance.lint_text(text, source="campaign", object_id=name, field=field)
    for finding in findings:
        print(finding.message())
    if not findings:
        print("no retired language")
    return 1 if findings else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    campaign = sub.add_parser("campaign", help="the campaign firewall: check, or ask to override")
    actions = campaign.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help="who may be sent to, and who is blocked and why")
    check.add_argument("file", help="campaign YAML: name, sender, channel, planned_at, targets")
    check.add_argument("--allowed-out", help="write the customers who may be sent to (CSV)")
    override = actions.add_parser("override", help="ask to send anyway (always refused; recorded)")
    override.add_argument("file")
    override.add_argument("--by", required=True, help="who asks")
    override.add_argument("--reason", required=True, help="why")
    campaign.set_defaults(func=cmd_campaign, allowed_out=None)

    audit_ = sub.add_parser("audit", help="the audit trail: one customer's record, disputes")
    audit_actions = audit_.add_subparsers(dest="action", required=True)
    customer = audit_actions.add_parser("customer", help="everything recorded about a customer")
    customer.add_argument("customer")
    dispute = audit_actions.add_parser("dispute", help="record a dispute and its decision")
    dispute.add_argument("customer")
    dispute.add_argument("--by", required=True, help="who raised it")
    dispute.add_argument("--reason", required=True)
    dispute.add_argument("--decision", required=True, choices=audit.DISPUTE_DECISIONS)
    dispute.add_argument("--decided-by", required=True)
    audit_.set_defaults(func=cmd_audit)

    lint = sub.add_parser("lint", help="retired language in segments and campaign files")
    lint.add_argument("files", nargs="*", help="campaign YAML files")
    lint.set_defaults(func=cmd_lint)
