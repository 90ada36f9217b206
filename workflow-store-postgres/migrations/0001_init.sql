-- workflow-store-postgres schema, version 1.
-- Text keys use the "C" collation so that ordering is by bytes, as in every other store.
-- Payloads are `json` (kept as written, readable with ->> in psql).

CREATE TABLE wf_runs (
    seq_no        bigserial NOT NULL,
    run_id        text COLLATE "C" PRIMARY KEY,
    workflow_id   text COLLATE "C" NOT NULL,
    workflow_type text COLLATE "C" NOT NULL,
    status        text NOT NULL,
    start_time    bigint NOT NULL,
    close_time    bigint,
    last_event_id bigint NOT NULL,
    last_time     bigint NOT NULL,
    -- The RunInfo without its input (rewritten at every step, so kept small) ...
    info          json NOT NULL,
    -- ... and the input, written once.
    input         json NOT NULL
) WITH (fillfactor = 70); -- room on each page, so that a step's update is HOT (no index writes)
CREATE UNIQUE INDEX wf_runs_seq ON wf_runs (seq_no);
-- At most one open run per workflow id, even with many writers.
CREATE UNIQUE INDEX wf_runs_open ON wf_runs (workflow_id) WHERE status = 'running';
CREATE INDEX wf_runs_by_id ON wf_runs (workflow_id, seq_no);
CREATE INDEX wf_runs_by_status ON wf_runs (status, seq_no);
CREATE INDEX wf_runs_by_type ON wf_runs (workflow_type, seq_no);
CREATE INDEX wf_runs_closed ON wf_runs (close_time) WHERE close_time IS NOT NULL;

CREATE TABLE wf_events (
    run_id   text COLLATE "C" NOT NULL,
    event_id bigint NOT NULL,
    time     bigint NOT NULL,
    kind     json NOT NULL,
    PRIMARY KEY (run_id, event_id)
);

-- One row per task. `due_at` is when it can next be leased: its visibility time while
-- unleased, its lease expiry while leased. Heartbeats write only the hb_* columns.
CREATE TABLE wf_tasks (
    key            text COLLATE "C" PRIMARY KEY,
    run_id         text COLLATE "C" NOT NULL,
    queue          smallint NOT NULL,
    leased         boolean NOT NULL,
    due_at         bigint NOT NULL,
    lease_ms       bigint NOT NULL,
    task           json NOT NULL,
    version        bigint NOT NULL,
    leased_version bigint NOT NULL,
    lease_owner    text,
    lease_token    bigint,
    lease_since    bigint,
    hb_details     json,
    hb_at          bigint
);
CREATE INDEX wf_tasks_due ON wf_tasks (queue, leased, due_at, key);
CREATE INDEX wf_tasks_by_run ON wf_tasks (run_id);

CREATE TABLE wf_attempts (
    id     bigserial PRIMARY KEY,
    run_id text COLLATE "C" NOT NULL,
    record json NOT NULL
);
CREATE INDEX wf_attempts_by_run ON wf_attempts (run_id, id);

CREATE SEQUENCE wf_lease_tokens;
