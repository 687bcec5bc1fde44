"""Grafana OnCall escalation chains → escalation policies (docs/oncall.md). Schedules come
first through apps.oncall.grafana, so a step "notify on call from schedule X" can name ours.

Mapping of OnCall's escalation policy types (ordered by `position`): `wait` adds its `duration`
to the next step's wait; `notify_persons` / `notify_person_next_each_time` → `user_ids`;
`notify_on_call_from_schedule` → `oncall_schedule_ids`; `repeat_escalation` → the policy repeats
(OnCall repeats up to 5 times); `resolve` and everything else is reported and left out.
"""

from __future__ import annotations

from django.db import transaction

from apps.oncall import grafana as oncall_grafana

from .models import EscalationPolicy
from .services import escalation_policy_create


def import_chains(data: dict, *, tenant, schedule_ids: dict[str, int], actor=None) -> tuple[list[EscalationPolicy], list[str]]:
    warnings: list[str] = []
    users = oncall_grafana.user_map(data, tenant.pk)
    policies = oncall_grafana.rows(data, "escalation_policies")
    created = []
    with transaction.atomic():
        for chain in oncall_grafana.rows(data, "escalation_chains"):
            name = str(chain.get("name") or chain.get("id"))[:120]
            if EscalationPolicy.objects.filter(tenant=tenant, name=name).exists():
                warnings.append(f"escalation chain {name!r}: a policy of that name exists already; left as it is")
                continue
            steps, repeat, wait = [], 0, 0
            mine = sorted(
                (p for p in policies if str(p.get("escalation_chain_id")) == str(chain.get("id"))),
                key=lambda p: int(p.get("position") or 0),
            )
            for policy in mine:
                kind = policy.get("type")
                if kind == "wait":
                    wait += int(policy.get("duration") or 60)
                elif kind in ("notify_persons", "notify_person_next_each_time"):
                    key = "persons_to_notify" if kind == "notify_persons" else "persons_to_notify_next_each_time"
                    ids = [users[str(u)] for u in policy.get(key) or [] if str(u) in users]
                    missing = [u for u in policy.get(key) or [] if str(u) not in users]
                    if missing:
                        warnings.append(f"chain {name!r}: users {missing} are not staff of this tenant; left out")
                    if ids:
                        steps.append({"wait_minutes": min(10080, wait // 60), "user_ids": ids})
                        wait = 0
                elif kind == "notify_on_call_from_schedule":
                    target = schedule_ids.get(str(policy.get("notify_on_call_from_schedule")))
                    if target is None:
                        warnings.append(
                            f"chain {name!r}: schedule {policy.get('notify_on_call_from_schedule')!r} was not in the export"
                        )
                    else:
                        steps.append({"wait_minutes": min(10080, wait // 60), "oncall_schedule_ids": [target]})
                        wait = 0
                elif kind == "repeat_escalation":
                    repeat = 5
                else:
                    warnings.append(f"chain {name!r}: step type {kind!r} has no counterpart here; left out")
            if not steps:
                warnings.append(f"chain {name!r}: no step names anyone here; not imported")
                continue
            created.append(
                escalation_policy_create(
                    actor=actor, tenant=tenant, name=name, steps=steps, repeat=repeat, alert_types=[], min_severity="info"
                )
            )
    return created, warnings
