-- GoodJob v4.19.2 (github.com/bensheldon/good_job), PostgreSQL >= 12, ActiveRecord with
-- prepared statements and Rails >= 7.0 defaults (partial_inserts = false). Defaults:
-- lock_strategy :advisory, queues "*", dequeue_query_sort :created_at, enable_pauses false,
-- queue_select_limit nil. Rendered by hand from the relations; Arel's UnaryOperation for
-- MATERIALIZED really emits two spaces after AS.

-- name: dequeue, advisory lock strategy (default), all queues -- every poll_interval (10 s) and on each NOTIFY
-- source: github.com/bensheldon/good_job app/models/good_job/job.rb (perform_with_advisory_lock) + app/models/concerns/good_job/advisory_lockable.rb (advisory_lock) @ v4.19.2
-- rendered from: app/models/good_job/job.rb:386-391, app/models/concerns/good_job/advisory_lockable.rb:355-380 (shape confirmed by spec/app/models/concerns/good_job/advisory_lockable_spec.rb:46-66)
-- expect: poll
SELECT "good_jobs".* FROM "good_jobs" WHERE "good_jobs"."id" IN (WITH "rows" AS  MATERIALIZED (SELECT "good_jobs"."id" FROM "good_jobs" WHERE "good_jobs"."finished_at" IS NULL AND "good_jobs"."scheduled_at" <= $1 ORDER BY priority ASC NULLS LAST, "good_jobs"."created_at" ASC) SELECT "rows"."id" FROM "rows" WHERE pg_try_advisory_lock(('x' || substr(md5('good_jobs' || '-' || "rows"."id"::text), 1, 16))::bit(64)::bigint) LIMIT $2) ORDER BY priority ASC NULLS LAST, "good_jobs"."created_at" ASC;

-- name: dequeue, advisory lock strategy, one named queue (queues: "mailers")
-- source: github.com/bensheldon/good_job app/models/good_job/job.rb (queue_string, perform_with_advisory_lock) @ v4.19.2
-- rendered from: app/models/good_job/job.rb:213-223,386-391
-- expect: poll
SELECT "good_jobs".* FROM "good_jobs" WHERE "good_jobs"."id" IN (WITH "rows" AS  MATERIALIZED (SELECT "good_jobs"."id" FROM "good_jobs" WHERE "good_jobs"."queue_name" = $1 AND "good_jobs"."finished_at" IS NULL AND "good_jobs"."scheduled_at" <= $2 ORDER BY priority ASC NULLS LAST, "good_jobs"."created_at" ASC) SELECT "rows"."id" FROM "rows" WHERE pg_try_advisory_lock(('x' || substr(md5('good_jobs' || '-' || "rows"."id"::text), 1, 16))::bit(64)::bigint) LIMIT $3) ORDER BY priority ASC NULLS LAST, "good_jobs"."created_at" ASC;

-- name: dequeue, lock_strategy :skiplocked (values inlined by to_sql and find_by_sql sanitizing; example values)
-- source: github.com/bensheldon/good_job app/models/good_job/job/lockable.rb (with_skip_locked_claim) @ v4.19.2
-- rendered from: app/models/good_job/job.rb:425-431, app/models/good_job/job/lockable.rb:45-59
-- expect: poll
WITH candidate AS MATERIALIZED (SELECT "good_jobs"."id" FROM "good_jobs" WHERE "good_jobs"."finished_at" IS NULL AND "good_jobs"."locked_by_id" IS NULL AND "good_jobs"."scheduled_at" <= '2026-08-01 12:00:00.123456' ORDER BY priority ASC NULLS LAST, "good_jobs"."created_at" ASC LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED) UPDATE "good_jobs" SET locked_by_id = '5f0c6a2e-6d1b-4a59-9d53-0c1f3e0b7a11', locked_at = '2026-08-01 12:00:00.123789', lock_type = 1 FROM candidate WHERE "good_jobs".id = candidate.id RETURNING "good_jobs".*;

-- name: dequeue, lock_strategy :hybrid (example values)
-- source: github.com/bensheldon/good_job app/models/good_job/job/lockable.rb (with_hybrid_lock_claim) @ v4.19.2
-- rendered from: app/models/good_job/job.rb:442-448, app/models/good_job/job/lockable.rb:82-102
-- expect: poll
WITH candidate AS MATERIALIZED (SELECT "good_jobs"."id" FROM "good_jobs" WHERE "good_jobs"."finished_at" IS NULL AND "good_jobs"."locked_by_id" IS NULL AND "good_jobs"."scheduled_at" <= '2026-08-01 12:00:00.123456' ORDER BY priority ASC NULLS LAST, "good_jobs"."created_at" ASC LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED) UPDATE "good_jobs" SET locked_by_id = '5f0c6a2e-6d1b-4a59-9d53-0c1f3e0b7a11', locked_at = '2026-08-01 12:00:00.123789', lock_type = 2 FROM ( SELECT id FROM candidate WHERE pg_try_advisory_lock(('x' || substr(md5('good_jobs' || '-' || id::text), 1, 16))::bit(64)::bigint) ) AS locked WHERE "good_jobs".id = locked.id RETURNING "good_jobs".*;

-- name: enqueue a job (ActiveJob perform_later -> GoodJob::Job.enqueue -> save!)
-- source: github.com/bensheldon/good_job app/models/good_job/job.rb (enqueue) @ v4.19.2
-- rendered from: app/models/good_job/job.rb:512,527 (columns in the order of lib/generators/good_job/templates/install/migrations/create_good_jobs.rb.erb)
-- expect: enqueue
INSERT INTO "good_jobs" ("id", "queue_name", "priority", "serialized_params", "scheduled_at", "performed_at", "finished_at", "error", "created_at", "updated_at", "active_job_id", "concurrency_key", "cron_key", "retried_good_job_id", "cron_at", "batch_id", "batch_callback_id", "is_discrete", "executions_count", "job_class", "error_event", "labels", "locked_by_id", "locked_at", "lock_type") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25) RETURNING "id";

-- name: enqueue notification (simple query, literal payload; example payload)
-- source: github.com/bensheldon/good_job lib/good_job/notifier.rb (notify) @ v4.19.2
-- expect: none
NOTIFY good_job, '{"queue_name":"default","scheduled_at":"2026-08-01T12:00:00.123Z"}';

-- name: check the locked job is still unfinished before running it (reload; one per job run)
-- source: github.com/bensheldon/good_job app/models/good_job/job.rb (executable?) @ v4.19.2
-- rendered from: app/models/good_job/job.rb:904-908
-- expect: none
SELECT "good_jobs".* FROM "good_jobs" WHERE "good_jobs"."id" = $1 LIMIT $2;

-- name: mark the job performing (advisory strategy)
-- source: github.com/bensheldon/good_job app/models/good_job/job.rb (perform: update!(job_attrs)) @ v4.19.2
-- rendered from: app/models/good_job/job.rb:798-810 (SET in column order, updated_at added by timestamps)
-- expect: none
UPDATE "good_jobs" SET "performed_at" = $1, "updated_at" = $2, "executions_count" = $3, "locked_by_id" = $4, "locked_at" = $5, "lock_type" = $6 WHERE "good_jobs"."id" = $7;

-- name: finish a job (success, record preserved)
-- source: github.com/bensheldon/good_job app/models/good_job/job.rb (perform: save!) @ v4.19.2
-- rendered from: app/models/good_job/job.rb:860-895
-- expect: none
UPDATE "good_jobs" SET "finished_at" = $1, "updated_at" = $2, "locked_by_id" = $3, "locked_at" = $4, "lock_type" = $5 WHERE "good_jobs"."id" = $6;

-- name: release the job's advisory lock
-- source: github.com/bensheldon/good_job app/models/concerns/good_job/advisory_lockable.rb (_advisory_unlock_key_once) @ v4.19.2
-- rendered from: app/models/concerns/good_job/advisory_lockable.rb:507-513
-- expect: none
SELECT pg_advisory_unlock(('x' || substr(md5($1::text), 1, 16))::bit(64)::bigint) AS unlocked;
