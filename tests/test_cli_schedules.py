"""``memflow schedule ...`` driven as a user would: subprocesses against a real Postgres."""

from __future__ import annotations

import json

from tests.test_cli import cli


async def test_schedule_commands(namespace: str) -> None:
    ns = ["-n", namespace]
    made = await cli("schedule", "create", "nightly", "--workflow", "report", "-q", "reports",
                     "--cron", "0 3 * * *", "--timezone", "Europe/Paris", "--arg", '"eu"', *ns)
    assert made.code == 0, made.err
    assert made.out.startswith("created schedule nightly (next run ") and "+01:00" in made.out
    assert (await cli("schedule", "create", "poll", "--workflow", "poll", "-q", "reports",
                      "--every", "10 s", "--overlap", "skip", *ns)).code == 0
    listed = await cli("schedule", "list", *ns)
    assert listed.lines[0].split()[:3] == ["SCHEDULE", "ID", "WORKFLOW"]
    assert [line.split()[0] for line in listed.lines[1:]] == ["nightly", "poll"]
    assert "0 3 * * * (Europe/Paris)" in listed.out
    as_json = json.loads((await cli("schedule", "list", "--json", *ns)).out)
    assert [d["schedule_id"] for d in as_json] == ["nightly", "poll"]
    assert as_json[1]["every"] == 10 and len(as_json[1]["next_runs"]) == 5

    paused = await cli("schedule", "pause", "nightly", "--note", "holiday", *ns)
    assert paused.out.strip() == "paused schedule nightly"
    triggered = await cli("schedule", "trigger", "nightly", *ns)
    assert triggered.code == 0 and triggered.out.startswith("nightly-20")
    shown = await cli("schedule", "describe", "nightly", *ns)
    assert shown.lines[0].split() == ["nightly", "paused"]
    assert "holiday" in shown.out and triggered.out.strip() in shown.out
    assert (await cli("schedule", "unpause", "nightly", *ns)).code == 0
    desc = json.loads((await cli("schedule", "describe", "nightly", "--json", *ns)).out)
    assert desc["paused"] is False and desc["note"] == "holiday"
    assert desc["recent_runs"][0]["workflow_id"] == triggered.out.strip()

    filled = await cli("schedule", "backfill", "poll", "2026-01-01T00:00:00",
                       "2026-01-01T00:00:30", "--overlap", "allow_all", *ns)
    assert filled.lines == [f"poll-2026-01-01T00:00:{s}Z" for s in ("00", "10", "20")]
    assert (await cli("schedule", "delete", "poll", *ns)).out.strip() == "deleted schedule poll"
    gone = await cli("schedule", "delete", "poll", *ns)
    assert gone.code == 1 and gone.err.strip() == "error: Schedule not found: poll"
    bad = await cli("schedule", "create", "x", "--workflow", "w", "-q", "q", "--cron", "bad",
                    *ns)
    assert bad.code == 1 and "cron" in bad.err
    usage = await cli("schedule", "create", "x", "--workflow", "w", "-q", "q", "--overlap",
                      "never", *ns)
    assert usage.code == 2
