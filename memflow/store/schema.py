"""The tables of one namespace (a Postgres schema), as versioned migrations.

``{s}`` stands for the quoted schema name. Migrations run under a transaction-scoped advisory
lock, so any number of processes may run them at once; each version is applied exactly once.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
CREATE TABLE {s}.workflows (
    workflow_id    text PRIMARY KEY,
    run_id         text NOT NULL UNIQUE,
    name           text NOT NULL,
    task_queue     text NOT NULL,
    status         text NOT NULL,
    args           jsonb NOT NULL,
    result         jsonb,
    error          jsonb,
    entity_type    text,
    entity         jsonb NOT NULL DEFAULT '{}'::jsonb,
    search         jsonb NOT NULL DEFAULT '{}'::jsonb,
    config         jsonb NOT NULL DEFAULT '{}'::jsonb,
    attempt        int NOT NULL DEFAULT 1,
    signal_in      boolean,
    parent_id      text,
    parent_run_id  text,
    parent_dim     text,
    parent_idx     int,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz,
    expire_seconds double precision NOT NULL DEFAULT 1,
    expire_at      timestamptz
);
CREATE INDEX workflows_listing ON {s}.workflows (status, task_queue, name);
CREATE INDEX workflows_parent ON {s}.workflows (parent_run_id) WHERE parent_run_id IS NOT NULL;
CREATE INDEX workflows_completed ON {s}.workflows (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX workflows_entity_type ON {s}.workflows (entity_type) WHERE entity_type IS NOT NULL;

CREATE TABLE {s}.threads (
    run_id       text NOT NULL,
    dim          text NOT NULL,
    name         text NOT NULL,
    task_queue   text NOT NULL,
    args         jsonb NOT NULL,
    status       text NOT NULL,
    result       jsonb,
    error        jsonb,
    parent_run_id text,
    parent_dim   text,
    parent_idx   int,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    PRIMARY KEY (run_id, dim)
);

CREATE TABLE {s}.steps (
    run_id       text NOT NULL,
    dim          text NOT NULL,
    idx          int NOT NULL,
    kind         text NOT NULL,
    name         text,
    status       text NOT NULL,
    input        jsonb,
    result       jsonb,
    error        jsonb,
    seq          int,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    PRIMARY KEY (run_id, dim, idx)
);
CREATE INDEX steps_waiting ON {s}.steps (name)
    WHERE kind IN ('wait', 'exec_hook') AND status = 'pending';

CREATE TABLE {s}.tasks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue       text NOT NULL,
    kind        text NOT NULL,
    run_id      text NOT NULL,
    dim         text NOT NULL DEFAULT '',
    idx         int,
    payload     jsonb,
    visible_at  timestamptz NOT NULL DEFAULT now(),
    attempts    int NOT NULL DEFAULT 0,
    wake        int NOT NULL DEFAULT 0,
    lease_owner text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_ready ON {s}.tasks (queue, visible_at);
CREATE UNIQUE INDEX tasks_pass ON {s}.tasks (run_id, dim) WHERE kind = 'w';
CREATE INDEX tasks_run ON {s}.tasks (run_id);

CREATE TABLE {s}.signals (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    signal_id  text NOT NULL,
    data       jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signals_by_id ON {s}.signals (signal_id, id);

CREATE TABLE {s}.events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic      text NOT NULL,
    message    jsonb,
    run_id     text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_by_topic ON {s}.events (topic, id);
"""),
    (2, """
-- Aborts the transaction that calls it when ``ok`` is not true: how a pass commit, sent in
-- one round trip, refuses to apply to a run that ended or a thread that moved on meanwhile.
CREATE FUNCTION {s}.ensure(ok boolean, reason text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION USING ERRCODE = 'MF001', MESSAGE = reason;
    END IF;
    RETURN true;
END
$$;
"""),
    (3, """
CREATE INDEX workflows_search ON {s}.workflows USING gin (search jsonb_path_ops);
"""),
    (4, """
-- Each thread's version counts its committed passes: a pass commits only on the version it
-- started from (a cached copy that another worker advanced is refused, never applied).
ALTER TABLE {s}.workflows ADD COLUMN version int NOT NULL DEFAULT 0;
ALTER TABLE {s}.threads ADD COLUMN version int NOT NULL DEFAULT 0;

-- The fence of every pass commit: the run is live, the committer still holds its task's lease
-- (owner and claim number), and the thread is at the version the pass started from. Each
-- refusal aborts the whole transaction with its own SQLSTATE.
CREATE FUNCTION {s}.fence(live boolean, held boolean, current boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF live IS NOT TRUE THEN
        RAISE EXCEPTION USING ERRCODE = 'MF001', MESSAGE = 'not live';
    END IF;
    IF held IS NOT TRUE THEN
        RAISE EXCEPTION USING ERRCODE = 'MF002', MESSAGE = 'lease lost';
    END IF;
    IF current IS NOT TRUE THEN
        RAISE EXCEPTION USING ERRCODE = 'MF003', MESSAGE = 'stale thread';
    END IF;
    RETURN true;
END
$$;
"""),
    (5, """
-- Old runs of reused ids, moved here by the statement that starts the new run, so a handle
-- bound to an old run keeps reading it (its steps are keyed by run_id and stay in ``steps``).
CREATE TABLE {s}.runs (LIKE {s}.workflows INCLUDING DEFAULTS);
ALTER TABLE {s}.runs ADD PRIMARY KEY (run_id);
CREATE INDEX runs_by_workflow ON {s}.runs (workflow_id);
CREATE INDEX runs_completed ON {s}.runs (completed_at);

-- Poison work: engine failures of a task (not user activity errors), the last one's error,
-- and when the task was parked after too many of them (it is then never visible again).
ALTER TABLE {s}.tasks ADD COLUMN failures int NOT NULL DEFAULT 0,
                      ADD COLUMN error jsonb,
                      ADD COLUMN parked_at timestamptz;
CREATE INDEX tasks_parked ON {s}.tasks (run_id) WHERE parked_at IS NOT NULL;

-- All the raw SQL search form may read: the namespace's workflow rows (see sql_search.py).
CREATE VIEW {s}.search_view AS
SELECT workflow_id, run_id, name AS workflow_name, task_queue, status, entity_type, entity,
       search, result, created_at, updated_at, completed_at, parent_id AS parent_workflow_id
  FROM {s}.workflows;
"""),
    (6, """
-- Schedules: one row per schedule, with the nominal time of its next tick (next_at) and when
-- that tick is claimed (fire_at: next_at plus its jitter); buffer holds ticks that wait for the
-- running run to close (overlap policies buffer_one, buffer_all, cancel_other).
CREATE TABLE {s}.schedules (
    schedule_id  text PRIMARY KEY,
    spec         jsonb NOT NULL,
    action       jsonb NOT NULL,
    overlap      text NOT NULL,
    paused       boolean NOT NULL DEFAULT false,
    note         text,
    next_at      timestamptz,
    fire_at      timestamptz,
    buffer       timestamptz[] NOT NULL DEFAULT '{}',
    skipped      bigint NOT NULL DEFAULT 0,
    missed       bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_due ON {s}.schedules (fire_at) WHERE NOT paused;

-- The runs a schedule started, one per tick: the key makes each tick start at most once.
CREATE TABLE {s}.schedule_runs (
    schedule_id  text NOT NULL REFERENCES {s}.schedules ON DELETE CASCADE,
    scheduled_at timestamptz NOT NULL,
    workflow_id  text NOT NULL,
    run_id       text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_id, scheduled_at)
);
"""),
    (7, """
-- The namespace's engine clock: every due time and recorded time in the store's SQL reads it.
-- An inlinable STABLE function, so in normal mode it is exactly now(); a time-skipping test
-- environment redefines it in its own namespace to now() plus the skew below.
CREATE FUNCTION {s}.clock() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS 'SELECT now()';
CREATE TABLE {s}.clock_skew (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    skew interval NOT NULL DEFAULT interval '0'
);
ALTER TABLE {s}.workflows ALTER COLUMN created_at SET DEFAULT {s}.clock(),
                          ALTER COLUMN updated_at SET DEFAULT {s}.clock();
ALTER TABLE {s}.threads ALTER COLUMN created_at SET DEFAULT {s}.clock();
ALTER TABLE {s}.steps ALTER COLUMN created_at SET DEFAULT {s}.clock();
ALTER TABLE {s}.tasks ALTER COLUMN visible_at SET DEFAULT {s}.clock(),
                      ALTER COLUMN created_at SET DEFAULT {s}.clock();
ALTER TABLE {s}.signals ALTER COLUMN created_at SET DEFAULT {s}.clock();
ALTER TABLE {s}.events ALTER COLUMN created_at SET DEFAULT {s}.clock();
"""),
    (8, """
-- The dashboard's run list: newest first with keyset paging on (created_at, workflow_id),
-- overall and per status, and the workflow-id prefix filter (LIKE 'prefix%').
CREATE INDEX workflows_recent ON {s}.workflows (created_at, workflow_id);
CREATE INDEX workflows_status_recent ON {s}.workflows (status, created_at, workflow_id);
CREATE INDEX workflows_id_prefix ON {s}.workflows (workflow_id text_pattern_ops);
-- How many attempts an activity step took (recorded with its result; shown on the timeline).
ALTER TABLE {s}.steps ADD COLUMN attempts int;
"""),
    (9, """
-- The trace context (W3C traceparent/tracestate) a run was started under, so every pass of
-- it, on any worker, joins the starter's trace (memflow.observe); NULL when not traced.
ALTER TABLE {s}.workflows ADD COLUMN trace jsonb;
"""),
    (10, """
-- Flow control (memflow/store/flow.py). One row per queue with limits; no row, no limits.
CREATE TABLE {s}.queue_limits (
    queue               text PRIMARY KEY,
    concurrency         int CHECK (concurrency > 0),
    per_key_concurrency int CHECK (per_key_concurrency > 0),
    rate_count          int CHECK (rate_count > 0),
    rate_seconds        float8 CHECK (rate_seconds > 0),
    updated_at          timestamptz NOT NULL DEFAULT {s}.clock(),
    CHECK ((rate_count IS NULL) = (rate_seconds IS NULL))
);
-- The starts of a rate-limited queue within its period (a sliding-window log, pruned by the
-- claim statement itself).
CREATE TABLE {s}.queue_starts (
    queue text NOT NULL,
    at    timestamptz NOT NULL
);
CREATE INDEX queue_starts_by_queue ON {s}.queue_starts (queue, at);
-- priority: higher is claimed first; ckey: the concurrency key; gate: claiming this task
-- takes a slot of its queue's limits (a workflow's first pass until it is admitted; set on
-- activities of a limited queue).
ALTER TABLE {s}.tasks ADD COLUMN priority int NOT NULL DEFAULT 0,
                      ADD COLUMN ckey text,
                      ADD COLUMN gate boolean NOT NULL DEFAULT false;
ALTER TABLE {s}.workflows ADD COLUMN concurrency_key text;
ALTER TABLE {s}.runs ADD COLUMN concurrency_key text;
-- Running workflows per concurrency key (only keyed ones: unkeyed runs cost no entry).
CREATE INDEX workflows_running_keys ON {s}.workflows (task_queue, concurrency_key)
    WHERE status = 'running' AND concurrency_key IS NOT NULL;
"""),
    (13, """
-- Updates sent to a run (message passing): requested by a client, accepted by the pass that
-- admits them into the main thread's history (applied in ``seq`` order), then completed or
-- failed by the pass in which their handler ends. A validator's refusal marks the request
-- rejected (nothing enters the history; the same update id may be sent again).
CREATE TABLE {s}.updates (
    run_id       text NOT NULL,
    update_id    text NOT NULL,
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    name         text NOT NULL,
    args         jsonb NOT NULL,
    status       text NOT NULL,
    result       jsonb,
    error        jsonb,
    idx          int,
    created_at   timestamptz NOT NULL DEFAULT {s}.clock(),
    completed_at timestamptz,
    PRIMARY KEY (run_id, update_id)
);
CREATE INDEX updates_requested ON {s}.updates (run_id, seq) WHERE status = 'requested';

-- Queries waiting for a worker of the run's queue to answer them; transient (the asking
-- client deletes its row once answered or timed out), so unlogged.
CREATE UNLOGGED TABLE {s}.queries (
    query_id   text PRIMARY KEY,
    run_id     text NOT NULL,
    queue      text NOT NULL,
    name       text NOT NULL,
    args       jsonb NOT NULL,
    owner      text,
    status     text NOT NULL DEFAULT 'requested',
    result     jsonb,
    error      jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX queries_open ON {s}.queries (queue, created_at) WHERE owner IS NULL;
"""),
    (14, """
-- A query claimed by a worker that died (or froze) before answering is claimed again by
-- another once its claim is old (the asking client announces it again meanwhile).
ALTER TABLE {s}.queries ADD COLUMN claimed_at timestamptz;
DROP INDEX {s}.queries_open;
CREATE INDEX queries_open ON {s}.queries (queue, created_at) WHERE status = 'requested';
"""),
    (15, """
-- A run's priority (set at its start): every pass task of the run is created with it, not
-- only its first pass. Runs under way take the priority of their main thread's pass task.
ALTER TABLE {s}.workflows ADD COLUMN priority int NOT NULL DEFAULT 0;
ALTER TABLE {s}.runs ADD COLUMN priority int NOT NULL DEFAULT 0;
UPDATE {s}.workflows w SET priority = t.priority
  FROM {s}.tasks t
 WHERE t.run_id = w.run_id AND t.kind = 'w' AND t.dim = '' AND t.priority <> 0;
-- The dashboard's list of earlier runs by status (e.g. "continued"), newest first, by keyset.
CREATE INDEX runs_status_recent ON {s}.runs (status, created_at, workflow_id);
"""),
]

LATEST = MIGRATIONS[-1][0]
