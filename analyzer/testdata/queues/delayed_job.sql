-- delayed_job_active_record v4.1.11 (github.com/collectiveidea/delayed_job_active_record) with
-- delayed_job v4.2.0 (github.com/collectiveidea/delayed_job), PostgreSQL >= 9.5, default
-- reserve_sql_strategy :optimized_sql, no queues / priorities configured. The reserve statement is
-- built with to_sql and find_by_sql([sql, ...]), so ActiveRecord inlines every value as a quoted
-- literal (no $n). Times, worker name ("host:<hostname> pid:<pid>") and ids below are examples;
-- the second time is now - max_run_time (4 h).

-- name: reserve a job, optimized PostgreSQL (Delayed::Worker, one per sleep_delay = 5 s when idle)
-- source: github.com/collectiveidea/delayed_job_active_record lib/delayed/backend/active_record.rb (reserve_with_scope_using_optimized_postgres) @ v4.1.11
-- rendered from: lib/delayed/backend/active_record.rb:55-62,81-90,129-152
-- expect: poll
UPDATE "delayed_jobs" SET locked_at = '2026-08-01 12:00:00.123456', locked_by = 'host:worker-1 pid:4242' WHERE id IN (SELECT id FROM "delayed_jobs" WHERE (((run_at <= '2026-08-01 12:00:00.123456' AND (locked_at IS NULL OR locked_at < '2026-08-01 08:00:00.123456')) OR locked_by = 'host:worker-1 pid:4242') AND failed_at IS NULL) ORDER BY priority ASC, run_at ASC LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *;

-- name: reserve a job, optimized PostgreSQL, worker started with --queues=mailers
-- source: github.com/collectiveidea/delayed_job_active_record lib/delayed/backend/active_record.rb (for_queues, reserve_with_scope_using_optimized_postgres) @ v4.1.11
-- rendered from: lib/delayed/backend/active_record.rb:45,81-90,129-152
-- expect: poll
UPDATE "delayed_jobs" SET locked_at = '2026-08-01 12:00:00.123456', locked_by = 'host:worker-1 pid:4242' WHERE id IN (SELECT id FROM "delayed_jobs" WHERE (((run_at <= '2026-08-01 12:00:00.123456' AND (locked_at IS NULL OR locked_at < '2026-08-01 08:00:00.123456')) OR locked_by = 'host:worker-1 pid:4242') AND failed_at IS NULL) AND "delayed_jobs"."queue" = 'mailers' ORDER BY priority ASC, run_at ASC LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *;

-- name: reserve, reserve_sql_strategy :default_sql -- step 1, candidate ids (read_ahead = 5 bound as LIMIT)
-- source: github.com/collectiveidea/delayed_job_active_record lib/delayed/backend/active_record.rb (reserve_with_scope_using_default_sql) @ v4.1.11
-- rendered from: lib/delayed/backend/active_record.rb:118-127
-- expect: poll
SELECT "delayed_jobs"."id" FROM "delayed_jobs" WHERE (((run_at <= '2026-08-01 12:00:00.123456' AND (locked_at IS NULL OR locked_at < '2026-08-01 08:00:00.123456')) OR locked_by = 'host:worker-1 pid:4242') AND failed_at IS NULL) ORDER BY priority ASC, run_at ASC LIMIT $1;

-- name: reserve, :default_sql -- step 2, lock one candidate (run only for candidates step 1 found; no RETURNING, then job.reload). Rails >= 7.1 Arel turns an ordered update_all into WHERE (key) IN (subselect), so it reads delayed_jobs
-- source: github.com/collectiveidea/delayed_job_active_record lib/delayed/backend/active_record.rb (reserve_with_scope_using_default_sql) @ v4.1.11
-- rendered from: lib/delayed/backend/active_record.rb:123-125
-- expect: none
UPDATE "delayed_jobs" SET "locked_at" = $1, "locked_by" = $2 WHERE ("delayed_jobs"."id") IN (SELECT "delayed_jobs"."id" FROM "delayed_jobs" WHERE (((run_at <= '2026-08-01 12:00:00.123456' AND (locked_at IS NULL OR locked_at < '2026-08-01 08:00:00.123456')) OR locked_by = 'host:worker-1 pid:4242') AND failed_at IS NULL) AND "delayed_jobs"."id" = $3 ORDER BY priority ASC, run_at ASC);

-- name: enqueue a job (Delayed::Job.enqueue / .delay / ActiveJob adapter -> save)
-- source: github.com/collectiveidea/delayed_job lib/delayed/backend/base.rb (enqueue_job -> job.save) @ v4.2.0; table from delayed_job_active_record lib/generators/delayed_job/templates/migration.rb @ v4.1.11
-- rendered from: lib/delayed/backend/base.rb:19 (Rails >= 7.0: partial_inserts = false, every column in table order)
-- expect: enqueue
INSERT INTO "delayed_jobs" ("priority", "attempts", "handler", "last_error", "run_at", "locked_at", "failed_at", "locked_by", "queue", "created_at", "updated_at") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING "id";

-- name: job done, delete it
-- source: github.com/collectiveidea/delayed_job lib/delayed/worker.rb (run: job.destroy) @ v4.2.0
-- rendered from: lib/delayed/worker.rb:232
-- expect: none
DELETE FROM "delayed_jobs" WHERE "delayed_jobs"."id" = $1;

-- name: job failed, reschedule it
-- source: github.com/collectiveidea/delayed_job lib/delayed/worker.rb (reschedule: job.save!) @ v4.2.0
-- rendered from: lib/delayed/worker.rb:248-253 (changed columns in table order plus updated_at)
-- expect: none
UPDATE "delayed_jobs" SET "attempts" = $1, "last_error" = $2, "run_at" = $3, "locked_at" = $4, "locked_by" = $5, "updated_at" = $6 WHERE "delayed_jobs"."id" = $7;
