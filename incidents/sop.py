"""SOPs as data (config/sops/*.yaml) and the pure engine that says where an incident's SOP stands.

A step belongs to a group by its `order`: steps of equal order run in parallel, and a group opens
when every required step of the groups before it is done (or does not apply). A `question` step is
answered; steps whose `when` names that question apply only for the answers listed (a branch), the
others are "n/a". A step may have a timer (`due_s` from the moment it opens) and staged escalation
after it is overdue. An `action` step does something (the nearest cameras, the drone, a share to
112/119, a public-alert draft, a notice); `auto: true` actions are done by the system as soon as they
open. Nothing here touches SQL or the clock: the store (incidents/db.py) gives it the step records
and the time, so the rules are unit-tested alone (tests/test_incident_sop.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from config.settings import ConfigError, explain

SOP_DIR = Path(__file__).resolve().parent.parent / "config" / "sops"
Code = Annotated[str, Field(min_length=1, max_length=48, pattern=r"^[a-z0-9][a-z0-9_]*$")]
Label = Annotated[str, Field(min_length=1, max_length=200)]
Action = Literal["nearest_cameras", "request_drone", "share_112", "share_119", "draft_public_alert", "notify"]
Scalar = str | int | float | bool
StepStatus = Literal["waiting", "open", "done", "skipped", "n/a"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Answer(_Model):
    value: Code
    label: Label


class Escalation(_Model):
    after_s: float = Field(0, ge=0, le=86400)  # after the step became overdue
    notify: Annotated[list[Code], Field(min_length=1, max_length=8)]  # roles to alert
    text: Label | None = None


class Step(_Model):
    id: Code
    order: int = Field(ge=1, le=99)
    title: Label
    kind: Literal["check", "question", "action"] = "check"
    required: bool = True
    role: Code | None = None  # who is expected to do it (shown; the right to act is incident_actions)
    detail: Annotated[str, Field(max_length=1000)] = ""
    due_s: float | None = Field(None, gt=0, le=86400)
    escalation: Annotated[list[Escalation], Field(max_length=4)] = []
    question: Label | None = None
    answers: Annotated[list[Answer], Field(max_length=8)] = []
    when: dict[Code, Annotated[list[Code], Field(min_length=1, max_length=8)]] = {}
    action: Action | None = None
    params: dict[Code, Scalar] = {}
    auto: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Step:
        if self.kind == "question":
            if not self.question or len(self.answers) < 2:
                raise ValueError(f"step {self.id}: a question needs `question` and at least two answers")
            if not self.required:
                raise ValueError(f"step {self.id}: a question decides branches, so it must be required")
            if len({a.value for a in self.answers}) != len(self.answers):
                raise ValueError(f"step {self.id}: answer values must be unique")
        elif self.answers or self.question:
            raise ValueError(f"step {self.id}: only a question step has `question` and `answers`")
        if (self.kind == "action") != (self.action is not None):
            raise ValueError(f"step {self.id}: an action step needs `action`, and only it may have one")
        if self.auto and self.kind != "action":
            raise ValueError(f"step {self.id}: only an action step can be automatic")
        if self.escalation and self.due_s is None:
            raise ValueError(f"step {self.id}: escalation needs a timer (due_s)")
        stages = [e.after_s for e in self.escalation]
        if stages != sorted(stages):
            raise ValueError(f"step {self.id}: escalation stages must come in time order")
        return self


class Sop(_Model):
    id: Code
    title: Label
    types: Annotated[list[Code], Field(min_length=1, max_length=16)]  # incident types it applies to
    description: Annotated[str, Field(max_length=2000)] = ""
    steps: Annotated[list[Step], Field(min_length=1, max_length=64)]

    @model_validator(mode="after")
    def _graph(self) -> Sop:
        by_id: dict[str, Step] = {}
        for s in self.steps:
            if s.id in by_id:
                raise ValueError(f"step id {s.id!r} is used twice")
            by_id[s.id] = s
        for s in self.steps:
            for qid, values in s.when.items():
                q = by_id.get(qid)
                if q is None or q.kind != "question":
                    raise ValueError(f"step {s.id}: `when` names {qid!r}, which is not a question step")
                if q.order >= s.order:
                    raise ValueError(f"step {s.id}: its question {qid!r} must come in an earlier order")
                bad = set(values) - {a.value for a in q.answers}
                if bad:
                    raise ValueError(f"step {s.id}: {sorted(bad)} are not answers of {qid!r}")
        return self

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)


# ---- loading -------------------------------------------------------------------------------------
def parse_sop(data: object, where: str = "sop") -> Sop:
    if not isinstance(data, dict) or not isinstance(data.get("sop"), dict):
        raise ConfigError(f"{where}: expected a mapping with a `sop:` section")
    try:
        return Sop(**data["sop"])
    except ValidationError as exc:
        raise ConfigError(explain(exc, f"SOP is not valid ({where}):", prefix="sop.")) from None


def load_sops(directory: Path | None = None) -> dict[str, Sop]:
    """Every config/sops/*.yaml by SOP id; ConfigError naming the file and key on any problem."""
    out: dict[str, Sop] = {}
    for path in sorted((directory or SOP_DIR).glob("*.yaml")):
        with path.open(encoding="utf-8") as f:
            sop = parse_sop(yaml.safe_load(f), str(path))
        if sop.id in out:
            raise ConfigError(f"{path}: SOP id {sop.id!r} is also defined in another file")
        out[sop.id] = sop
    return out


# ---- the engine ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """What was done to a step (a row of incident_steps)."""

    status: Literal["done", "skipped"]
    ts: int
    actor: str = ""
    answer: str | None = None
    note: str = ""


@dataclass(frozen=True)
class StepView:
    id: str
    order: int
    status: StepStatus
    opened_ts: int | None = None  # when it could first be done
    due_ts: int | None = None
    overdue: bool = False
    level: int = 0  # 0: on time or no timer; 1: overdue; 1 + n: n escalation stages reached
    answer: str | None = None
    done_ts: int | None = None
    actor: str = ""


def applies(step: Step, records: dict[str, Record]) -> bool | None:
    """True or False by the answers of the questions it names; None while one is unanswered."""
    for qid, values in step.when.items():
        r = records.get(qid)
        if r is None or r.answer is None:
            return None
        if r.answer not in values:
            return False
    return True


def alert_level(step: Step, due_ts: int, now: int) -> int:
    if now <= due_ts:
        return 0
    return 1 + sum(1 for e in step.escalation if now >= due_ts + int(e.after_s * 1000))


def evaluate(sop: Sop, records: dict[str, Record], started_ts: int, now: int) -> list[StepView]:
    """Each step's status, timer and escalation level at `now`, in SOP order."""
    views: dict[str, StepView] = {}
    gate_ts: int | None = started_ts  # when the current group opened; None: not yet
    for order in sorted({s.order for s in sop.steps}):
        group = [s for s in sop.steps if s.order == order]
        group_done_ts: list[int] = []
        blocked = False
        for s in group:
            rec = records.get(s.id)
            ok = applies(s, records)
            if ok is False:
                views[s.id] = StepView(s.id, order, "n/a")
                continue
            if rec is not None:
                views[s.id] = StepView(
                    s.id,
                    order,
                    rec.status,
                    opened_ts=gate_ts,
                    answer=rec.answer,
                    done_ts=rec.ts,
                    actor=rec.actor,
                )
                if s.required:
                    group_done_ts.append(rec.ts)
                continue
            if gate_ts is None or ok is None:
                views[s.id] = StepView(s.id, order, "waiting")
                blocked = blocked or s.required
                continue
            due = gate_ts + int(s.due_s * 1000) if s.due_s is not None else None
            level = alert_level(s, due, now) if due is not None else 0
            views[s.id] = StepView(
                s.id, order, "open", opened_ts=gate_ts, due_ts=due, overdue=level > 0, level=level
            )
            blocked = blocked or s.required
        gate_ts = max([gate_ts, *group_done_ts]) if gate_ts is not None and not blocked else None
    return [views[s.id] for s in sorted(sop.steps, key=lambda s: (s.order, sop.steps.index(s)))]


def open_steps(sop: Sop, records: dict[str, Record], started_ts: int, now: int) -> list[str]:
    return [v.id for v in evaluate(sop, records, started_ts, now) if v.status == "open"]


def missing_required(sop: Sop, records: dict[str, Record], started_ts: int, now: int) -> list[str]:
    """Required steps that apply and are not done: what stands between the incident and resolved."""
    by_id = {s.id: s for s in sop.steps}
    return [
        v.id
        for v in evaluate(sop, records, started_ts, now)
        if by_id[v.id].required and v.status in ("open", "waiting")
    ]


class StepRefused(Exception):
    """An operator's step action that the SOP does not allow now (the message says why)."""


def check_action(
    sop: Sop,
    records: dict[str, Record],
    started_ts: int,
    now: int,
    step_id: str,
    verb: Literal["done", "skipped"],
    answer: str | None,
) -> Step:
    """Whether `verb` may be applied to the step now; raises StepRefused with the reason."""
    step = sop.step(step_id)
    if step is None:
        raise StepRefused(f"no step {step_id!r} in SOP {sop.id}")
    view = next(v for v in evaluate(sop, records, started_ts, now) if v.id == step_id)
    if view.status in ("done", "skipped"):
        raise StepRefused(f"step {step_id} is already {view.status}")
    if view.status == "n/a":
        raise StepRefused(f"step {step_id} does not apply after the answers given")
    if view.status == "waiting":
        raise StepRefused(f"step {step_id} waits for earlier steps")
    if verb == "skipped" and step.required:
        raise StepRefused(f"step {step_id} is required and cannot be skipped")
    if step.kind == "question":
        if verb == "done" and answer not in {a.value for a in step.answers}:
            raise StepRefused(
                f"step {step_id} needs one of the answers {', '.join(a.value for a in step.answers)}"
            )
    elif answer is not None:
        raise StepRefused(f"step {step_id} is not a question")
    return step
