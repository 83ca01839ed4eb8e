"""The SOP engine alone (incidents/sop.py): parallel groups, question branches, timers and staged
escalation, what may be done or skipped, and the SOP files' validation (issue 11 points 2 and 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from config.settings import ConfigError
from incidents.config import load_incident_config
from incidents.sop import Record, StepRefused, check_action, evaluate, load_sops, missing_required, parse_sop

T0 = 1_000_000
S = 1000

SOP = parse_sop({"sop": {
    "id": "t", "title": "test", "types": ["x"],
    "steps": [
        {"id": "a", "order": 1, "title": "A", "due_s": 30,
         "escalation": [{"after_s": 0, "notify": ["supervisor"]}, {"after_s": 60, "notify": ["commander"]}]},
        {"id": "b", "order": 1, "title": "B (parallel with A)"},
        {"id": "opt", "order": 1, "title": "optional", "required": False},
        {"id": "q", "order": 2, "title": "Q", "kind": "question", "question": "?",
         "answers": [{"value": "yes_path", "label": "Y"}, {"value": "no_path", "label": "N"}]},
        {"id": "y", "order": 3, "title": "Y only", "when": {"q": ["yes_path"]}, "due_s": 10},
        {"id": "n", "order": 3, "title": "N only", "when": {"q": ["no_path"]}},
        {"id": "end", "order": 4, "title": "end"},
    ]}})


def status(recs: dict[str, Record], now: int = T0) -> dict[str, str]:
    return {v.id: v.status for v in evaluate(SOP, recs, T0, now)}


def test_equal_orders_run_in_parallel_and_the_next_group_waits_for_required_steps() -> None:
    assert status({}) == {"a": "open", "b": "open", "opt": "open", "q": "waiting", "y": "waiting",
                          "n": "waiting", "end": "waiting"}
    one = {"a": Record("done", T0 + 5 * S)}
    assert status(one)["q"] == "waiting"  # b (required, parallel) is still open
    two = {**one, "b": Record("done", T0 + 9 * S)}
    views = {v.id: v for v in evaluate(SOP, two, T0, T0 + 10 * S)}
    assert views["q"].status == "open"
    assert views["q"].opened_ts == T0 + 9 * S  # opened when the last required step of group 1 was done
    assert views["opt"].status == "open"  # the optional step never blocks, and stays doable


def test_the_answer_chooses_the_branch_and_the_other_one_does_not_apply() -> None:
    base = {"a": Record("done", T0), "b": Record("done", T0)}
    yes = {**base, "q": Record("done", T0 + S, answer="yes_path")}
    assert status(yes)["y"] == "open" and status(yes)["n"] == "n/a"
    no = {**base, "q": Record("done", T0 + S, answer="no_path")}
    assert status(no)["y"] == "n/a" and status(no)["n"] == "open"
    # the branch not taken is not required for resolving
    assert missing_required(SOP, {**no, "n": Record("done", T0 + 2 * S)}, T0, T0 + 3 * S) == ["end"]
    done = {**no, "n": Record("done", T0 + 2 * S), "end": Record("done", T0 + 3 * S)}
    assert missing_required(SOP, done, T0, T0 + 4 * S) == []


def test_a_timer_runs_from_when_the_step_opens_and_escalates_in_stages() -> None:
    def level(now: int) -> int:
        return next(v for v in evaluate(SOP, {}, T0, now) if v.id == "a").level

    assert level(T0 + 30 * S) == 0  # due exactly now: not yet overdue
    assert level(T0 + 30 * S + 1) == 2  # overdue (1) + first stage at 0 s (1)
    assert level(T0 + 89 * S) == 2
    assert level(T0 + 90 * S) == 3  # second stage 60 s after due
    # a later step's timer starts when its group opens, not when the incident did
    recs = {"a": Record("done", T0), "b": Record("done", T0),
            "q": Record("done", T0 + 100 * S, answer="yes_path")}
    y = next(v for v in evaluate(SOP, recs, T0, T0 + 105 * S) if v.id == "y")
    assert (y.due_ts, y.overdue) == (T0 + 110 * S, False)
    assert next(v for v in evaluate(SOP, recs, T0, T0 + 111 * S) if v.id == "y").overdue
    # a done step is never overdue, whatever the clock says
    assert all(not v.overdue for v in evaluate(SOP, recs, T0, T0 + 10**9) if v.status == "done")


def test_what_may_be_done_or_skipped_now() -> None:
    with pytest.raises(StepRefused, match="waits"):
        check_action(SOP, {}, T0, T0, "q", "done", "yes_path")
    with pytest.raises(StepRefused, match="required"):
        check_action(SOP, {}, T0, T0, "a", "skipped", None)
    assert check_action(SOP, {}, T0, T0, "opt", "skipped", None).id == "opt"
    base = {"a": Record("done", T0), "b": Record("done", T0)}
    with pytest.raises(StepRefused, match="answers"):
        check_action(SOP, base, T0, T0, "q", "done", "maybe")
    with pytest.raises(StepRefused, match="not a question"):
        check_action(SOP, {}, T0, T0, "a", "done", "yes_path")
    with pytest.raises(StepRefused, match="already done"):
        check_action(SOP, base, T0, T0, "a", "done", None)
    no = {**base, "q": Record("done", T0, answer="no_path")}
    with pytest.raises(StepRefused, match="does not apply"):
        check_action(SOP, no, T0, T0, "y", "done", None)
    with pytest.raises(StepRefused, match="no step"):
        check_action(SOP, no, T0, T0, "zzz", "done", None)


@pytest.mark.parametrize(("steps", "message"), [
    ([{"id": "a", "order": 1, "title": "A"}, {"id": "a", "order": 2, "title": "A"}], "used twice"),
    ([{"id": "q", "order": 1, "title": "Q", "kind": "question", "question": "?",
       "answers": [{"value": "x", "label": "x"}]}], "at least two answers"),
    ([{"id": "s", "order": 1, "title": "S", "when": {"nope": ["x"]}}], "not a question step"),
    ([{"id": "q", "order": 2, "title": "Q", "kind": "question", "question": "?",
       "answers": [{"value": "x", "label": "x"}, {"value": "y", "label": "y"}]},
      {"id": "s", "order": 2, "title": "S", "when": {"q": ["x"]}}], "earlier order"),
    ([{"id": "q", "order": 1, "title": "Q", "kind": "question", "question": "?",
       "answers": [{"value": "x", "label": "x"}, {"value": "y", "label": "y"}]},
      {"id": "s", "order": 2, "title": "S", "when": {"q": ["z"]}}], "not answers"),
    ([{"id": "s", "order": 1, "title": "S", "kind": "action"}], "needs `action`"),
    ([{"id": "s", "order": 1, "title": "S", "auto": True}], "only an action step"),
    ([{"id": "s", "order": 1, "title": "S", "escalation": [{"notify": ["supervisor"]}]}], "needs a timer"),
    ([{"id": "s", "order": 1, "title": "S", "colour": "red"}], "Extra inputs"),
])
def test_bad_sops_are_refused_with_the_key(steps: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_sop({"sop": {"id": "bad", "title": "bad", "types": ["x"], "steps": steps}})


def test_the_shipped_korean_sops_load_and_every_type_has_its_sop() -> None:
    sops = load_sops()
    assert {"emergency_bell", "flood", "fire", "earthquake", "water_quality", "fine_dust", "police_112_video",
            "fire_119_dispatch", "missing_person"} <= set(sops)
    cfg = load_incident_config()  # checks each type's SOP exists
    assert all(t.sop in sops for t in cfg.types.values() if t.sop)
    for s in sops.values():
        assert any("\uac00" <= ch <= "\ud7a3" for ch in s.title)  # written in Korean
        assert any(st.kind == "question" for st in s.steps), s.id  # each has a decision that branches
        assert any(st.due_s for st in s.steps), s.id  # and at least one timer
    assert sops["fire"].step("drone").action == "request_drone"  # type: ignore[union-attr]
    bell = sops["emergency_bell"]
    assert bell.step("cameras").auto and bell.step("cameras").params["count"] == 3  # type: ignore[union-attr]


def test_a_second_file_with_the_same_id_is_refused(tmp_path: Path) -> None:
    src = Path("config/sops/fire.yaml").read_text(encoding="utf-8")
    (tmp_path / "a.yaml").write_text(src, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(src, encoding="utf-8")
    with pytest.raises(ConfigError, match="also defined"):
        load_sops(tmp_path)
    (tmp_path / "b.yaml").write_text(yaml.safe_dump([1, 2]), encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_sops(tmp_path)


@settings(max_examples=200, deadline=None)
@given(done=st.dictionaries(st.sampled_from([s.id for s in SOP.steps]),
                            st.tuples(st.integers(0, 10**6), st.sampled_from(["yes_path", "no_path", None])),
                            max_size=7),
       now=st.integers(0, 10**7))
def test_invariants_hold_for_any_records(done: dict, now: int) -> None:
    recs = {k: Record("done", T0 + t, answer=a if k == "q" else None) for k, (t, a) in done.items()}
    views = evaluate(SOP, recs, T0, T0 + now)
    assert [v.id for v in views] == [s.id for s in SOP.steps]
    by = {v.id: v for v in views}
    for v in views:
        assert v.overdue == (v.level > 0)
        assert not v.overdue or v.status == "open"
        if v.status == "open":  # an open step's earlier groups hold no open or waiting required step
            earlier = [s for s in SOP.steps if s.order < v.order and s.required]
            assert all(by[s.id].status in ("done", "skipped", "n/a") for s in earlier)
    if "q" in recs and recs["q"].answer:
        assert by["y"].status == "n/a" or by["n"].status == "n/a"
