-- Procrastinate 3.9.0 (github.com/procrastinate-org/procrastinate), PsycopgConnector (psycopg 3).
-- Query texts are procrastinate/sql/queries.sql, each stripped (procrastinate/sql/__init__.py);
-- psycopg 3 binds server-side, turning %(name)s into $n (one number per distinct name, in order
-- of first appearance). The work is done inside plpgsql functions, so the statements name
-- functions, not tables (fetch: procrastinate_fetch_job_v2; enqueue: procrastinate_defer_jobs_v1).

-- name: fetch a job (worker loop: after each job, on NOTIFY, and every fetch_job_polling_interval = 5 s)
-- source: github.com/procrastinate-org/procrastinate procrastinate/sql/queries.sql (fetch_job) via procrastinate/manager.py (fetch_job) @ 3.9.0
-- rendered from: procrastinate/sql/queries.sql:19-22 (the function always returns one row; all NULL when no job)
-- expect: poll
SELECT id, status, task_name, priority, lock, queueing_lock, args, scheduled_at, queue_name, attempts, worker_id
    FROM procrastinate_fetch_job_v2($1::varchar[], $2);

-- name: fetch a job, Procrastinate 2.x (procrastinate_fetch_job)
-- source: github.com/procrastinate-org/procrastinate procrastinate/sql/queries.sql (fetch_job) @ 2.15.1
-- rendered from: procrastinate/sql/queries.sql:15-18 @ 2.15.1
-- expect: poll
SELECT id, status, task_name, priority, lock, queueing_lock, args, scheduled_at, queue_name, attempts
    FROM procrastinate_fetch_job($1);

-- name: defer jobs (task.defer / defer_async / batch_defer)
-- source: github.com/procrastinate-org/procrastinate procrastinate/sql/queries.sql (defer_jobs) @ 3.9.0
-- rendered from: procrastinate/sql/queries.sql:6-12
-- expect: enqueue
SELECT  unnest(
  procrastinate_defer_jobs_v1(
    $1::procrastinate_job_to_defer_v1[]
  )
) AS id;

-- name: defer a periodic job (periodic deferrer)
-- source: github.com/procrastinate-org/procrastinate procrastinate/sql/queries.sql (defer_periodic_job) @ 3.9.0
-- rendered from: procrastinate/sql/queries.sql:14-17
-- expect: enqueue
SELECT procrastinate_defer_periodic_job_v2($1, $2, $3, $4, $5, $6, $7, $8) AS id;

-- name: defer a job, Procrastinate 2.x (procrastinate_defer_job)
-- source: github.com/procrastinate-org/procrastinate procrastinate/sql/queries.sql (defer_job) @ 2.15.1
-- rendered from: procrastinate/sql/queries.sql:6-8 @ 2.15.1
-- expect: enqueue
SELECT procrastinate_defer_job($1, $2, $3, $4, $5, $6, $7) AS id;

-- name: finish a job
-- source: github.com/procrastinate-org/procrastinate procrastinate/sql/queries.sql (finish_job) @ 3.9.0
-- rendered from: procrastinate/sql/queries.sql:71-73
-- expect: none
SELECT procrastinate_finish_job_v1($1, $2, $3);

-- name: worker heartbeat (every update_heartbeat_interval)
-- source: github.com/procrastinate-org/procrastinate procrastinate/sql/queries.sql (update_heartbeat) @ 3.9.0
-- rendered from: procrastinate/sql/queries.sql:231-233
-- expect: none
SELECT procrastinate_update_heartbeat_v1($1);

-- name: jobs to abort (every abort_job_polling_interval = 5 s, only while jobs are running) -- reads procrastinate_jobs but looks for abort requests, not work
-- source: github.com/procrastinate-org/procrastinate procrastinate/sql/queries.sql (list_jobs_to_abort) @ 3.9.0
-- rendered from: procrastinate/sql/queries.sql:216-221
-- expect: none
SELECT id from procrastinate_jobs
WHERE status = 'doing'
AND abort_requested = true
AND ($1::varchar IS NULL OR queue_name = $1);

-- name: status of one job (job.status / get_job_status) -- reads procrastinate_jobs, not a poll for work
-- source: github.com/procrastinate-org/procrastinate procrastinate/sql/queries.sql (get_job_status) @ 3.9.0
-- rendered from: procrastinate/sql/queries.sql:79-81
-- expect: none
SELECT status FROM procrastinate_jobs WHERE id = $1;
