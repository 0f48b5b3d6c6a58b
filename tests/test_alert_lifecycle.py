"""The alert lifecycle's stages one by one, and its invariants under random event sequences.

The stages (dispatch, inhibit, silence, transition, notify, due_escalations) are pure, so
each is tested alone on plain data. Then hypothesis drives random sequences of refreshes,
breaches, silences, acknowledgements (from the CLI and from Slack), backfills, restarts and
Slack faults through the whole lifecycle on a real state store and the Slack-compatible
server, and checks what on-call relies on:

- an alert never resolves while its rule still breaches, silenced or not;
- a silence hides notifications, never state;
- each episode of an alert fires once and resolves once, and its resolution answers that
  episode's own message;
- processing an older month never changes an alert of a later month;
- nothing queued is lost or sent twice, whatever Slack did on the way.

The normal suite runs a bounded number of examples (the `default` profile, well under a
minute); `make test-properties` runs the `long` profile (HYPOTHESIS_PROFILE=long).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import replace
from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, select

from segment_cadence.defs.alerting import alerts, lifecycle, slack
from segment_cadence.defs.alerting.lifecycle import Alert, Observation, SilenceWindow
from segment_cadence.defs.health import thresholds
from segment_cadence.platform import state_store
from tests.slack_server import SlackServer
from tests.test_alerts import OWNERS, SETTINGS

for name, examples, steps in (("default", 12, 14), ("long", 300, 40)):
    settings.register_profile(
        name,
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

T0 = datetime(2026, 1, 2, 6, 0)
VERSION = "v-abc123"
SEGMENTS = ("vip_collectors", "dormant")
CONFIG = thresholds.validate(
    {
        "settings": SETTINGS,
        "rules": [
            {
                "id": "size_change",
                "metric": "size",
                "relative": {"warn": 0.2, "critical": 0.5},
                "kind_of_alert": "size",
                "clear_after": 2,
            },
            {"id": "churn_rising", "metric": "churn_likelihood", "above": {"warn": 0.5}},
            {
                "id": "slow_fire",
                "metric": "dwell_months",
                "above": {"warn": 9},
                "consecutive": 2,
                "clear_after": 1,
            },
            {
                "id": "inputs_stale",
                "metric": "freshness_days",
                "above": {"warn": 7, "critical": 21},
                "depends_on_inputs": False,
                "kind_of_alert": "data_quality",
            },
        ],
    },
    "thresholds.yaml",
)
RULES = {r.id: r for r in CONFIG.rules}
METRICS = {r.id: r.metric for r in CONFIG.rules}
# What can breach: (rule, segment, severity).
UNIVERSE = (
    *[("size_change", s, sev) for s in SEGMENTS for sev in ("warn", "critical")],
    *[("churn_rising", s, "warn") for s in SEGMENTS],
    ("slow_fire", "dormant", "warn"),
    *[("inputs_stale", "*", sev) for sev in ("warn", "critical")],
)
# Month ends from January 2025 on; refreshes start in the middle, backfills fill the start.
MONTHS = tuple(
    date(2025 + (m + 1) // 12, (m + 1) % 12 + 1, 1) - timedelta(days=1) for m in range(1, 30)
)
FIRST_REFRESH = 8


def breach(rule_id: str, segment_id: str, month: date, severity: str = "warn"):
    return thresholds.Breach(
        month, rule_id, segment_id, METRICS[rule_id], 42.0, 30.0, 0.2, "relative", severity, ""
    )


def key_of(rule_id: str, segment_id: str) -> str:
    return lifecycle.alert_key(rule_id, segment_id, METRICS[rule_id], VERSION)


def window(segment_id: str = "*", rule_id: str = "*", hours: float = 24) -> SilenceWindow:
    return SilenceWindow("s1", segment_id, rule_id, "asha", "festive", T0 + timedelta(hours=hours))


# -- each stage alone -----------------------------------------------------------------------


def test_dispatch_keeps_the_worse_of_two_breaches_of_one_identity():
    month = MONTHS[0]
    found = lifecycle.dispatch(
        [
            breach("size_change", "dormant", month, "warn"),
            breach("size_change", "dormant", month, "critical"),
            breach("size_change", "vip_collectors", month),
        ],
        VERSION,
    )
    assert {o.key: o.breach.severity for o in found} == {
        key_of("size_change", "dormant"): "critical",
        key_of("size_change", "vip_collectors"): "warn",
    }


def test_inhibit_holds_input_dependent_alerts_on_a_critical_data_quality_breach():
    month = MONTHS[0]
    observations = lifecycle.dispatch(
        [
            breach("inputs_stale", "*", month, "critical"),
            breach("churn_rising", "dormant", month),
        ],
        VERSION,
    )
    marked = {o.breach.rule_id: o.inhibited for o in lifecycle.inhibit(observations, RULES, set())}
    assert marked["inputs_stale"] is None  # the data-quality alert itself is told
    assert "data-quality" in marked["churn_rising"]
    warn_only = lifecycle.dispatch(
        [breach("inputs_stale", "*", month), breach("churn_rising", "dormant", month)], VERSION
    )
    assert not any(o.inhibited for o in lifecycle.inhibit(warn_only, RULES, set()))


def test_inhibit_holds_size_alerts_of_a_segment_whose_definition_changed():
    month = MONTHS[0]
    observations = lifecycle.dispatch(
        [breach("size_change", "dormant", month), breach("churn_rising", "dormant", month)],
        VERSION,
    )
    marked = {
        o.breach.rule_id: o.inhibited for o in lifecycle.inhibit(observations, RULES, {"dormant"})
    }
    assert "definition changed" in marked["size_change"] and marked["churn_rising"] is None


def test_silence_marks_what_its_window_matches_and_leaves_inhibited_ones_as_they_are():
    month = MONTHS[0]
    observations = [
        Observation(key_of("size_change", "dormant"), breach("size_change", "dormant", month)),
        Observation(
            key_of("churn_rising", "dormant"),
            breach("churn_rising", "dormant", month),
            inhibited="inhibited: x",
        ),
        Observation(
            key_of("size_change", "vip_collectors"), breach("size_change", "vip_collectors", month)
        ),
    ]
    marked = lifecycle.silence(observations, [window("dormant")], T0)
    assert "silenced by asha" in marked[0].silenced
    assert marked[1].silenced is None and marked[1].muted == "inhibited: x"
    assert marked[2].silenced is None
    expired = lifecycle.silence(observations, [window("dormant", hours=-1)], T0)
    assert expired[0].silenced is None


def _observe(month: date, *rules_and_segments: tuple[str, str]) -> list[Observation]:
    return lifecycle.dispatch([breach(r, s, month) for r, s in rules_and_segments], VERSION)


def _step(state: dict[str, Alert], observations: list[Observation], month: date, now: datetime):
    return lifecycle.transition(
        state, observations, RULES, month_end=month, now=now, repeat_interval=timedelta(hours=24)
    )


def test_transition_fires_after_consecutive_refreshes_and_resolves_after_clean_ones():
    key = key_of("slow_fire", "dormant")
    first = _step({}, _observe(MONTHS[0], ("slow_fire", "dormant")), MONTHS[0], T0)
    assert first.alerts[key].state == "pending" and first.events == ()
    second = _step(first.alerts, _observe(MONTHS[1], ("slow_fire", "dormant")), MONTHS[1], T0)
    assert second.alerts[key].state == "firing"
    assert [e.kind for e in second.events] == ["fired"]
    clean = _step(second.alerts, [], MONTHS[2], T0)  # clear_after 1
    assert clean.alerts[key].state == "resolved" and [e.kind for e in clean.events] == ["resolved"]


def test_transition_resolves_a_pending_alert_that_never_fired_without_telling_anyone():
    # Regression: a pending alert (one breach of a rule that needs two) that cleared raised a
    # "resolved" event for an alert nobody had been told of.
    key = key_of("slow_fire", "dormant")
    first = _step({}, _observe(MONTHS[0], ("slow_fire", "dormant")), MONTHS[0], T0)
    clean = _step(first.alerts, [], MONTHS[1], T0)
    assert clean.alerts[key].state == "resolved" and clean.events == ()


def test_transition_starts_a_new_episode_after_a_resolution():
    key = key_of("size_change", "dormant")
    state: dict[str, Alert] = {}
    for month, breaching in zip(MONTHS[:4], (True, False, False, True), strict=True):
        moved = _step(
            state, _observe(month, ("size_change", "dormant")) if breaching else [], month, T0
        )
        state = moved.alerts
    alert = state[key]
    assert alert.state == "firing" and alert.first_breach_month == MONTHS[3]
    assert alert.acknowledged_at is None and alert.level == 1


def test_an_inhibited_observation_neither_advances_nor_clears_its_alert():
    key = key_of("churn_rising", "dormant")
    fired = _step({}, _observe(MONTHS[0], ("churn_rising", "dormant")), MONTHS[0], T0).alerts
    held = [
        replace(o, inhibited="inhibited") for o in _observe(MONTHS[1], ("churn_rising", "dormant"))
    ]
    for month in MONTHS[1:4]:
        fired = _step(fired, held, month, T0).alerts
    assert fired[key].state == "firing" and fired[key].consecutive == 1


def test_notify_groups_a_segment_and_puts_each_escalation_after_its_message():
    month = MONTHS[0]
    observations = lifecycle.dispatch(
        [
            breach("size_change", "dormant", month, "critical"),
            breach("churn_rising", "dormant", month),
            breach("churn_rising", "vip_collectors", month),
        ],
        VERSION,
    )
    notices = lifecycle.notify(_step({}, observations, month, T0), observations)
    assert [(n.kind, n.segment_id) for n in notices] == [
        ("firing", "dormant"),
        ("escalation", "dormant"),
        ("firing", "vip_collectors"),
    ]
    assert notices[1].after == 0 and notices[1].keys == (key_of("size_change", "dormant"),)
    assert len(notices[0].keys) == 2


def test_notify_tells_nothing_muted():
    month = MONTHS[0]
    observations = lifecycle.silence(
        _observe(month, ("churn_rising", "dormant")), [window("dormant")], T0
    )
    assert lifecycle.notify(_step({}, observations, month, T0), observations) == []


def test_due_escalations_waits_for_the_ack_timeout_and_skips_silenced_alerts():
    notified = Alert(
        key_of("size_change", "dormant"),
        "size_change",
        "dormant",
        "size",
        VERSION,
        state="firing",
        level=1,
        consecutive=3,
        last_notified_at=T0,
    )
    due = lifecycle.due_escalations(
        [notified],
        [],
        now=T0 + timedelta(hours=25),
        ack_timeout=timedelta(hours=24),
        persist_refreshes=3,
    )
    assert [(e.level, e.keys) for e in due] == [
        (2, (notified.alert_key,)),
        (3, (notified.alert_key,)),
    ]
    early = lifecycle.due_escalations(
        [replace(notified, consecutive=1)],
        [],
        now=T0 + timedelta(hours=1),
        ack_timeout=timedelta(hours=24),
        persist_refreshes=3,
    )
    assert early == []
    silenced = lifecycle.due_escalations(
        [notified],
        [window("dormant", hours=100)],
        now=T0 + timedelta(hours=25),
        ack_timeout=timedelta(hours=24),
        persist_refreshes=3,
    )
    assert silenced == []


# -- the pure stages under random sequences ------------------------------------------------

refresh_breaches = st.lists(st.sampled_from(UNIVERSE), max_size=6)
silenced_segments = st.sets(st.sampled_from((*SEGMENTS, "*")), max_size=2)


def _run_stages(steps, with_silences: bool) -> tuple[dict[str, Alert], list]:
    state: dict[str, Alert] = {}
    events = []
    for i, (drawn, changed, silenced) in enumerate(steps):
        month, now = MONTHS[i], T0 + timedelta(days=31 * i)
        observations = lifecycle.dispatch(
            [breach(r, s, month, sev) for r, s, sev in drawn], VERSION
        )
        observations = lifecycle.inhibit(observations, RULES, changed)
        if with_silences:
            windows = [
                SilenceWindow(f"s{i}{s}", s, "*", "asha", "why", now + timedelta(days=1))
                for s in silenced
            ]
            observations = lifecycle.silence(observations, windows, now)
        moved = _step(
            {k: a for k, a in state.items() if a.is_open or k in {o.key for o in observations}},
            observations,
            month,
            now,
        )
        state.update(moved.alerts)
        for o in observations:
            assert ("resolved", o.key) not in {(e.kind, e.key) for e in moved.events}
            if not o.inhibited:  # a held measurement opens no new episode either
                assert state[o.key].state != "resolved", "resolved while still breaching"
        events.append(moved.events)
    return state, events


def _check_episodes(events) -> None:
    """Per alert, fired and resolved alternate, starting with fired."""
    last: dict[str, str] = {}
    for step in events:
        for event in step:
            if event.kind in ("fired", "resolved"):
                expected = "resolved" if event.kind == "fired" else "fired"
                assert last.get(event.key, "resolved") == expected, (event, last.get(event.key))
                last[event.key] = event.kind


refresh_steps = st.lists(
    st.tuples(refresh_breaches, st.sets(st.sampled_from(SEGMENTS)), silenced_segments),
    max_size=12,
)


@settings(PROFILE, max_examples=PROFILE.max_examples * 20)
@given(refresh_steps)
def test_a_silence_hides_notifications_never_state(steps):
    """The same breaches with and without silence windows move every alert the same way,
    and fire and resolve the same episodes, each once."""
    silenced_state, silenced_events = _run_stages(steps, with_silences=True)
    plain_state, plain_events = _run_stages(steps, with_silences=False)
    assert silenced_events == plain_events
    _check_episodes(plain_events)

    def shape(state):
        return {k: (a.state, a.consecutive, a.clean_streak) for k, a in state.items()}

    assert shape(silenced_state) == shape(plain_state)


# -- the whole lifecycle on a state store and a Slack server, under random events ------------

FAULTS = ("none", "none", "server_error", "lost_response", "reset", "down", "bad_token")


class Lifecycle(RuleBasedStateMachine):
    """One state store and one Slack workspace; each rule is one thing that happens in
    production, in any order hypothesis likes."""

    url: str = ""

    @initialize()
    def start(self) -> None:
        with state_store.transaction(self.url) as con:
            for table in reversed(state_store.metadata.sorted_tables):
                con.execute(delete(table))
        self.server = SlackServer().start()
        self.client = slack.slack_client(base_url=self.server.base_url, token="xoxb-good")
        self.now = T0
        self.processed: list[date] = []
        self.breaching: set[str] = set()  # what the newest month's refresh observed
        self.last_event: dict[str, str] = {}

    def teardown(self) -> None:
        server = getattr(self, "server", None)
        if server is not None:
            server.stop()

    def _tick(self, hours: float = 1) -> datetime:
        self.now += timedelta(hours=hours)
        return self.now

    def _refresh(self, month: date, drawn, changed) -> alerts.RefreshOutcome:
        with state_store.transaction(self.url) as con:
            return alerts.process_refresh(
                con,
                month_end=month,
                breaches=[breach(r, s, month, sev) for r, s, sev in drawn],
                config=CONFIG,
                definition_version=VERSION,
                owners=OWNERS,
                changed_segments=changed,
                now=self._tick(),
            )

    def _alerts(self) -> dict[str, Alert]:
        with state_store.transaction(self.url) as con:
            return {
                row.alert_key: alerts._alert_of(row)
                for row in con.execute(select(state_store.alerts))
            }

    def _record(self, outcome: alerts.RefreshOutcome, observed: set[str]) -> None:
        """The newest month's refresh: what breaches now, and each alert's episode."""
        self.breaching = observed
        assert not set(outcome.resolved) & observed, "resolved while its rule still breaches"
        for kind, keys in (("fired", outcome.fired), ("resolved", outcome.resolved)):
            for key in keys:
                previous = self.last_event.get(key, "resolved")
                assert previous != kind, f"{key} {kind} twice in one episode"
                self.last_event[key] = kind

    @rule(drawn=refresh_breaches, changed=st.sets(st.sampled_from(SEGMENTS)))
    def monthly_refresh(self, drawn, changed) -> None:
        month = MONTHS[
            FIRST_REFRESH + len([m for m in self.processed if m >= MONTHS[FIRST_REFRESH]])
        ]
        outcome = self._refresh(month, drawn, changed)
        self.processed.append(month)
        observed = {key_of(r, s) for r, s, _ in drawn}
        self._record(outcome, observed)
        with state_store.transaction(self.url) as con:
            queued = con.execute(
                select(state_store.outbox.c.alert_keys).where(
                    state_store.outbox.c.kind == "firing",
                    state_store.outbox.c.month_end == month,
                )
            ).scalars()
            told = {k for keys in queued for k in json.loads(keys)}
        assert not told & set(outcome.suppressed), "a muted alert was told"

    @precondition(lambda self: any(m not in self.processed for m in MONTHS[:FIRST_REFRESH]))
    @rule(drawn=refresh_breaches, pick=st.integers(0, FIRST_REFRESH - 1))
    def backfill(self, drawn, pick) -> None:
        """An older month processed late: it never moves an alert of a later month."""
        month = next(
            m
            for m in MONTHS[pick:] + MONTHS[:pick]
            if m < MONTHS[FIRST_REFRESH] and m not in self.processed
        )
        before = self._alerts()
        outcome = self._refresh(month, drawn, set())
        self.processed.append(month)
        if any(m > month for m in self.processed):
            assert self._alerts() == before
            assert not outcome.fired and not outcome.resolved
        else:  # no later month processed yet: no backfill
            self._record(outcome, {key_of(r, s) for r, s, _ in drawn})

    @rule(segment=st.sampled_from((*SEGMENTS, "*")), hours=st.sampled_from((2, 48, 24 * 40)))
    def silence(self, segment, hours) -> None:
        with state_store.transaction(self.url) as con:
            alerts.silence(
                con,
                segment_id=segment,
                created_by="asha",
                reason="festive window",
                expires_at=self.now + timedelta(hours=hours),
                now=self._tick(0.01),
            )

    @rule(segment=st.sampled_from(SEGMENTS))
    def unsilence(self, segment) -> None:
        with state_store.transaction(self.url) as con:
            alerts.unsilence(con, segment_id=segment, by="asha", now=self._tick(0.01))

    @rule(segment=st.sampled_from(SEGMENTS))
    def acknowledge_from_the_cli(self, segment) -> None:
        with state_store.transaction(self.url) as con:
            alerts.acknowledge(con, segment, "ravi", self._tick(0.1))

    @rule(
        pick=st.integers(0, 20),
        how=st.sampled_from(("reaction", "ack", "silence 2h x", "silence 3d", "unsilence")),
    )
    def answer_in_slack(self, pick, how) -> None:
        """On-call reacts to, or replies under, one of the messages Slack holds."""
        posted = [m for m in self.server.messages.values() if not m.get("thread_ts")]
        if not posted:
            return
        message = posted[pick % len(posted)]
        if how == "reaction":
            self.server.reactions[message["ts"]] = [{"name": "eyes", "users": ["U0RAVI"]}]
        else:
            ts = f"1800000000.{len(self.server.messages):06d}"
            reply = {"ts": ts, "user": "U0RAVI", "text": how, "thread_ts": message["ts"]}
            self.server.messages[ts] = {**reply, "channel": message["channel"]}
            self.server.replies.setdefault(message["ts"], []).append(reply)
        with state_store.transaction(self.url) as con:
            slack.read_acknowledgements(con, self.client, self._tick(0.1))

    @rule(hours=st.sampled_from((1, 25, 24 * 31)))
    def time_passes_and_the_ladder_climbs(self, hours) -> None:
        with state_store.transaction(self.url) as con:
            alerts.escalate_due(con, CONFIG, self._tick(hours))

    @rule()
    def the_sensor_launches_the_strategic_runs(self) -> None:
        with state_store.transaction(self.url) as con:
            for request_id, _ in alerts.pending_strategic_requests(con):
                alerts.strategic_run_launched(
                    con, request_id, f"run-{request_id}", "http://127.0.0.1:3000", self.now
                )

    @rule(fault=st.sampled_from(FAULTS), times=st.integers(1, 3))
    def deliver(self, fault, times) -> None:
        """One delivery pass while Slack misbehaves in one way."""
        if fault == "server_error":
            self.server.fail_next(500, times=times)
        elif fault == "lost_response":
            self.server.drop_next("chat.postMessage", when="after", times=times)
        elif fault == "reset":
            self.server.drop_next(None, when="before", times=times)
        elif fault == "down":
            self.server.stop()
        elif fault == "bad_token":
            self.server.token = "xoxb-rotated"
        try:
            with state_store.transaction(self.url) as con:
                slack.deliver_pending(con, self.client, self._tick(0.5))
        finally:
            self.server.failures.clear()
            self.server.drops.clear()
            self.server.token = None
            if fault == "down":
                self.server.start()

    @rule()
    def restart(self) -> None:
        """The process dies and comes back: nothing survives but the state store."""
        state_store._engines.pop(self.url, None)
        state_store._migrated.discard(self.url)
        self.client = slack.slack_client(base_url=self.server.base_url, token="xoxb-good")

    @invariant()
    def nothing_is_sent_twice(self) -> None:
        if not hasattr(self, "server"):
            return
        ids = Counter(
            (m.get("metadata") or {}).get("event_payload", {}).get("message_id")
            for m in self.server.messages.values()
            if m.get("metadata")
        )
        assert all(n == 1 for n in ids.values()), ids.most_common(3)

    @invariant()
    def no_alert_is_resolved_while_it_breaches_unmuted(self) -> None:
        if not hasattr(self, "server"):
            return
        with state_store.transaction(self.url) as con:
            held = set(
                con.execute(
                    select(state_store.suppressed.c.alert_key).where(
                        state_store.suppressed.c.month_end
                        == (max(self.processed) if self.processed else None)
                    )
                ).scalars()
            )
        for key, alert in self._alerts().items():
            if key in self.breaching and key not in held:
                assert alert.state != "resolved", key

    @invariant()
    def each_resolution_answers_its_own_episode(self) -> None:
        if not hasattr(self, "server"):
            return
        o = state_store.outbox.c
        with state_store.transaction(self.url) as con:
            rows = con.execute(
                select(o.message_id, o.kind, o.alert_keys, o.reply_to, o.created_at)
            ).all()
        by_id = {r.message_id: r for r in rows}
        for r in rows:
            if r.kind != "resolved":
                continue
            (key,) = json.loads(r.alert_keys)
            first = by_id[r.reply_to]
            assert first.kind == "firing" and key in json.loads(first.alert_keys)
            # No other resolution of this key lies between the firing message and this one.
            between = [
                x
                for x in rows
                if x.kind == "resolved"
                and x.message_id != r.message_id
                and key in json.loads(x.alert_keys)
                and first.created_at <= x.created_at <= r.created_at
            ]
            assert not between, (r.message_id, [x.message_id for x in between])

    def check_nothing_is_lost(self) -> None:
        """Slack healthy again and the runs launched: every queued message arrives, once."""
        self.the_sensor_launches_the_strategic_runs()
        for _ in range(12):
            with state_store.transaction(self.url) as con:
                slack.deliver_pending(con, self.client, self._tick(1))
        o = state_store.outbox.c
        with state_store.transaction(self.url) as con:
            statuses = Counter(con.execute(select(o.status)).scalars())
            sent = set(con.execute(select(o.message_id).where(o.status == "sent")).scalars())
        assert set(statuses) <= {"sent"}, statuses
        in_slack = Counter(
            (m.get("metadata") or {}).get("event_payload", {}).get("message_id")
            for m in self.server.messages.values()
            if m.get("metadata")
        )
        assert set(in_slack) == sent and all(n == 1 for n in in_slack.values())


class LifecycleToTheEnd(Lifecycle):
    def teardown(self) -> None:
        try:
            if hasattr(self, "server"):
                self.check_nothing_is_lost()
        finally:
            super().teardown()


def test_the_lifecycle_keeps_its_invariants_under_any_order_of_events(state_url):
    LifecycleToTheEnd.url = state_url
    run_state_machine_as_test(LifecycleToTheEnd, settings=PROFILE)
