"""The ISA-18.2 state machine (alarms/states.py): any sequence of conditions and operator actions keeps
its invariants (hypothesis stateful test), and the standard's transitions one by one."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from alarms import states
from alarms.states import HIDDEN, PRIORITIES, RANK, STATES, Alarm, NotAllowed

MAX_MS = 60 * 60_000
NEVER = ("critical",)


class AlarmMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.a = Alarm()
        self.now = 1_000_000
        self.shelved_at: int | None = None

    def _apply(self, out: tuple[Alarm, states.Change | None], released: bool = False) -> None:
        before = self.a
        self.a, change = out
        if change is not None:
            # Every change names the states it went between.
            assert change.before == before.state and change.after == self.a.state
        if released and change is not None and self.a.state not in HIDDEN:
            # Back from a hidden state, by the condition: active -> unacknowledged, clear -> normal.
            assert self.a.state == ("UNACK" if self.a.active else "NORM")

    @rule(dt=st.integers(0, 90_000))
    def time_passes(self, dt: int) -> None:
        self.now += dt
        was = self.a.shelve
        self._apply(states.expire(self.a, self.now), released=was is not None)

    @rule(active=st.booleans(), prio=st.sampled_from(PRIORITIES), late=st.booleans())
    def condition(self, active: bool, prio: str, late: bool) -> None:
        before = self.a
        ts = self.now - 120_000 if late else self.now
        self._apply(states.condition(self.a, active, ts, prio, never_shelved=NEVER))  # type: ignore[arg-type]
        if late and active != before.active and ts < before.cond_ts:
            assert self.a == before  # an older event cannot undo a newer change
        if (not late or ts >= before.cond_ts) and active and before.state == "ACKED" \
                and RANK[prio] > RANK[before.priority]:
            assert self.a.state == "UNACK"  # re-alarm when an acknowledged alarm gets worse
        if before.active and active:
            assert self.a.count == before.count + 1  # a repeat raises the count, not a new alarm

    @rule()
    def acknowledge(self) -> None:
        before = self.a
        try:
            self._apply(states.acknowledge(self.a))
        except NotAllowed:
            assert before.state not in ("UNACK", "RTNUN")
            return
        assert self.a.state == ("ACKED" if before.state == "UNACK" else "NORM")

    @rule(oneshot=st.booleans(), minutes=st.integers(-5, 120))
    def shelve(self, oneshot: bool, minutes: int) -> None:
        before = self.a
        shelvable = self.a.priority not in NEVER
        try:
            self._apply(states.shelve(self.a, "oneshot" if oneshot else "timed", self.now,
                                      self.now + minutes * 60_000, shelvable, MAX_MS))
        except NotAllowed:
            assert (not shelvable or before.state in ("NORM", "DSUPR", "OOSRV") or minutes <= 0
                    or minutes * 60_000 > MAX_MS or (oneshot and not before.active)
                    ) and self.a == before
            return
        self.shelved_at = self.now
        assert self.a.state == "SHLVD" and before.priority not in NEVER

    @rule()
    def unshelve(self) -> None:
        try:
            self._apply(states.unshelve(self.a), released=True)
        except NotAllowed:
            assert self.a.shelve is None

    @rule(on=st.booleans())
    def suppress(self, on: bool) -> None:
        self._apply(states.suppress(self.a, on), released=not on)

    @rule(on=st.booleans())
    def out_of_service(self, on: bool) -> None:
        try:
            self._apply(states.out_of_service(self.a, on), released=not on)
        except NotAllowed:
            assert self.a.oos == on

    @invariant()
    def consistent(self) -> None:
        a = self.a
        assert a.state in STATES
        # The state is a function of the components, in this precedence.
        if a.oos:
            assert a.state == "OOSRV"
        elif a.suppressed:
            assert a.state == "DSUPR"
        elif a.shelve:
            assert a.state == "SHLVD"
        else:
            assert a.state == {(False, True): "NORM", (True, False): "UNACK", (True, True): "ACKED",
                               (False, False): "RTNUN"}[(a.active, a.acked)]
        assert not (a.state == "SHLVD" and a.priority in NEVER), "a critical alarm is never shelved"
        if a.shelve is not None:
            assert a.shelved_until is not None and self.shelved_at is not None
            assert a.shelved_until - self.shelved_at <= MAX_MS  # every shelve ends, within the limit
        if a.active:
            assert a.count >= 1 and a.active_since is not None
        assert len(a.transitions) <= 16


TestAlarmMachine = AlarmMachine.TestCase
TestAlarmMachine.settings = settings(max_examples=300, stateful_step_count=40, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])


# ---- the standard's transitions, one by one (A-G as in Alerta's model) -------------------------------
def test_a_b_c_a() -> None:
    a, ch = states.condition(Alarm(), True, 10, "high")
    assert (ch.kind, a.state) == ("activate", "UNACK")
    a, ch = states.acknowledge(a)
    assert a.state == "ACKED"
    a, ch = states.condition(a, False, 20)
    assert (ch.kind, a.state) == ("clear", "NORM")


def test_b_d_a_and_d_b() -> None:
    a, _ = states.condition(Alarm(), True, 10, "low")
    a, _ = states.condition(a, False, 20)
    assert a.state == "RTNUN"
    b, _ = states.condition(a, True, 30, "low")
    assert b.state == "UNACK"  # active again before the ack
    a, _ = states.acknowledge(a)
    assert a.state == "NORM"


def test_realarm_only_when_worse() -> None:
    a, _ = states.condition(Alarm(), True, 10, "medium")
    a, _ = states.acknowledge(a)
    same, ch = states.condition(a, True, 11, "medium")
    assert same.state == "ACKED" and ch.kind == "repeat" and same.count == 2
    lower, _ = states.condition(a, True, 11, "low")
    assert lower.state == "ACKED" and lower.priority == "medium"
    worse, ch = states.condition(a, True, 12, "high")
    assert (worse.state, worse.priority, ch.kind) == ("UNACK", "high", "realarm")


def test_chattering_three_transitions_in_a_minute() -> None:
    a, _ = states.condition(Alarm(), True, 0, "low")
    a, _ = states.condition(a, False, 20_000)
    assert not a.chattering
    a, _ = states.condition(a, True, 59_000)
    assert a.chattering
    assert not states.calm(a, 200_000).chattering


def test_oneshot_shelve_ends_at_the_clear_and_timed_at_expiry() -> None:
    a, _ = states.condition(Alarm(), True, 0, "low")
    one, _ = states.shelve(a, "oneshot", 0, None, True, MAX_MS)
    one, ch = states.condition(one, False, 10)
    assert (ch.kind, one.state) == ("unshelve", "NORM")
    timed, _ = states.shelve(a, "timed", 0, 60_000, True, MAX_MS)
    timed, ch = states.condition(timed, True, 30_000, "low")
    assert timed.state == "SHLVD"
    _same, ch = states.expire(timed, 59_999)
    assert ch is None
    back, ch = states.expire(timed, 60_000)
    assert (ch.kind, back.state) == ("expire", "UNACK")


@pytest.mark.parametrize("bad", [dict(until=0), dict(until=MAX_MS + 1)])
def test_shelve_limits(bad: dict) -> None:
    a, _ = states.condition(Alarm(), True, 0, "low")
    with pytest.raises(NotAllowed):
        states.shelve(a, "timed", 0, bad["until"], True, MAX_MS)
    with pytest.raises(NotAllowed, match="never be shelved"):
        states.shelve(a, "timed", 0, 1000, False, MAX_MS)


def test_escalation_to_critical_unshelves() -> None:
    a, _ = states.condition(Alarm(), True, 0, "high")
    a, _ = states.shelve(a, "timed", 0, 60_000, True, MAX_MS)
    a, ch = states.condition(a, True, 1000, "critical")
    assert (a.state, ch.kind) == ("UNACK", "escalate")


def test_hidden_alarms_are_still_evaluated() -> None:
    a, _ = states.suppress(Alarm(), True)
    a, ch = states.condition(a, True, 10, "high")
    assert a.state == "DSUPR" and a.active and ch.kind == "activate"
    a, ch = states.suppress(a, False)
    assert a.state == "UNACK"
    a, _ = states.out_of_service(a, True)
    a, _ = states.condition(a, False, 20)
    a, ch = states.out_of_service(a, False)
    assert a.state == "NORM"


# ---- configuration: one readable line per problem, exit status 2 ------------------------------------
def test_config_problems_are_one_line_each() -> None:
    from alarms.config import load_alarm_config, parse_alarm_config
    from config.settings import ConfigError

    assert load_alarm_config().priorities["critical"].shelvable is False  # the shipped file is valid
    with pytest.raises(ConfigError) as exc:
        parse_alarm_config({
            "priorities": {"low": {"label": "Low", "target_share": 80}},
            "rules": [{"name": "a", "kind": "threshold", "types": ["t"], "condition": "{props.x}{oops}"},
                      {"name": "b", "kind": "video", "types": ["v"], "clear_types": ["w"]}],
            "grouping": {"quiet_s": -1}, "shelving": {"max_minutes": 10, "quick_minutes": [5, 60]},
            "typo": 1})
    assert exc.value.code == 2
    lines = str(exc.value).splitlines()[1:]
    assert all(line.startswith("  - alarms.") for line in lines)
    text = "\n".join(lines)
    for where in ("alarms.priorities", "alarms.rules.0.condition", "alarms.rules.1",
                  "alarms.grouping.quiet_s", "alarms.shelving", "alarms.typo"):
        assert where in text, where
