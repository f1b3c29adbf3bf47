-- Solid Queue v1.5.0 (github.com/rails/solid_queue), PostgreSQL adapter with prepared
-- statements (ActiveRecord binds become $n, LIMIT included) and Rails >= 7.0 defaults
-- (partial_inserts = false, so INSERTs list every column). Rendered by hand from the
-- ActiveRecord relations; BEGIN/COMMIT/SAVEPOINT around them are not listed.

-- name: worker claim, queues "*" (default), no paused queues -- every polling_interval (0.1 s)
-- source: github.com/rails/solid_queue app/models/solid_queue/ready_execution.rb (select_candidates) @ v1.5.0
-- rendered from: app/models/solid_queue/ready_execution.rb:32-35, app/models/solid_queue/execution.rb:10, app/models/solid_queue/record.rb:13-19
-- expect: poll
SELECT "solid_queue_ready_executions"."id", "solid_queue_ready_executions"."job_id" FROM "solid_queue_ready_executions" ORDER BY "solid_queue_ready_executions"."priority" ASC, "solid_queue_ready_executions"."job_id" ASC LIMIT $1 FOR UPDATE SKIP LOCKED;

-- name: worker claim, one named queue (queues: [name] or each queue a prefix/"*" resolves to)
-- source: github.com/rails/solid_queue app/models/solid_queue/ready_execution.rb (select_candidates) @ v1.5.0
-- rendered from: app/models/solid_queue/ready_execution.rb:5,32-35, app/models/solid_queue/queue_selector.rb:16
-- expect: poll
SELECT "solid_queue_ready_executions"."id", "solid_queue_ready_executions"."job_id" FROM "solid_queue_ready_executions" WHERE "solid_queue_ready_executions"."queue_name" = $1 ORDER BY "solid_queue_ready_executions"."priority" ASC, "solid_queue_ready_executions"."job_id" ASC LIMIT $2 FOR UPDATE SKIP LOCKED;

-- name: worker queue list, "*" with paused queues (loose index scan over queue names)
-- source: github.com/rails/solid_queue app/models/solid_queue/record/distinct_values.rb @ v1.5.0
-- rendered from: app/models/solid_queue/record/distinct_values.rb:26-43 (heredoc squished; to_sql inlines LIMIT 1)
-- expect: poll
WITH RECURSIVE t AS ( (SELECT "queue_name" FROM "solid_queue_ready_executions" WHERE ("queue_name" IS NOT NULL) ORDER BY "queue_name" LIMIT 1) UNION ALL SELECT (SELECT "queue_name" FROM "solid_queue_ready_executions" WHERE ("queue_name" > t."queue_name") ORDER BY "queue_name" LIMIT 1) FROM t WHERE t."queue_name" IS NOT NULL ) SELECT "queue_name" FROM t WHERE "queue_name" IS NOT NULL;

-- name: worker paused-queue check (sent before every claim; reads no queue table)
-- source: github.com/rails/solid_queue app/models/solid_queue/queue_selector.rb (paused_queues) @ v1.5.0
-- rendered from: app/models/solid_queue/queue_selector.rb:71-73
-- expect: none
SELECT "solid_queue_pauses"."queue_name" FROM "solid_queue_pauses";

-- name: dispatcher, due scheduled jobs -- every dispatcher polling_interval (1 s)
-- source: github.com/rails/solid_queue app/models/solid_queue/scheduled_execution.rb (dispatch_next_batch) @ v1.5.0
-- rendered from: app/models/solid_queue/scheduled_execution.rb:7-17
-- expect: poll
SELECT "solid_queue_scheduled_executions"."job_id" FROM "solid_queue_scheduled_executions" WHERE "solid_queue_scheduled_executions"."scheduled_at" <= $1 ORDER BY "solid_queue_scheduled_executions"."scheduled_at" ASC, "solid_queue_scheduled_executions"."priority" ASC, "solid_queue_scheduled_executions"."job_id" ASC LIMIT $2 FOR UPDATE SKIP LOCKED;

-- name: enqueue a job (ActiveJob perform_later -> SolidQueue::Job.enqueue -> create!)
-- source: github.com/rails/solid_queue app/models/solid_queue/job.rb (create_from_active_job) @ v1.5.0
-- rendered from: app/models/solid_queue/job.rb:44-46 (columns in the order of lib/generators/solid_queue/install/templates/db/queue_schema.rb)
-- expect: enqueue
INSERT INTO "solid_queue_jobs" ("queue_name", "class_name", "arguments", "priority", "active_job_id", "scheduled_at", "finished_at", "concurrency_key", "created_at", "updated_at") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING "id";

-- name: enqueue, make the job ready (after_create on the job, same transaction)
-- source: github.com/rails/solid_queue app/models/solid_queue/job/executable.rb (ready: ReadyExecution.create_or_find_by!) @ v1.5.0
-- rendered from: app/models/solid_queue/job/executable.rb:119-121
-- note: the job was counted when it was inserted into solid_queue_jobs (EnqueueTables): counting this too would count every job twice
-- expect: none
INSERT INTO "solid_queue_ready_executions" ("job_id", "queue_name", "priority", "created_at") VALUES ($1, $2, $3, $4) RETURNING "id";

-- name: claimed, remove the ready executions taken
-- source: github.com/rails/solid_queue app/models/solid_queue/ready_execution.rb (lock_candidates) @ v1.5.0
-- rendered from: app/models/solid_queue/ready_execution.rb:42
-- expect: none
DELETE FROM "solid_queue_ready_executions" WHERE "solid_queue_ready_executions"."id" = $1;

-- name: load the claimed job to run it (one per job run; reads solid_queue_jobs but is not a poll)
-- source: github.com/rails/solid_queue app/models/solid_queue/claimed_execution.rb (execute -> job) @ v1.5.0
-- rendered from: app/models/solid_queue/claimed_execution.rb:92-93 (belongs_to :job)
-- expect: none
SELECT "solid_queue_jobs".* FROM "solid_queue_jobs" WHERE "solid_queue_jobs"."id" = $1 LIMIT $2;

-- name: finish a job (preserve_finished_jobs, the default)
-- source: github.com/rails/solid_queue app/models/solid_queue/job/executable.rb (finished!) @ v1.5.0
-- rendered from: app/models/solid_queue/job/executable.rb:76-82 (touch(:finished_at))
-- expect: none
UPDATE "solid_queue_jobs" SET "updated_at" = $1, "finished_at" = $2 WHERE "solid_queue_jobs"."id" = $3;

-- name: process heartbeat
-- source: github.com/rails/solid_queue app/models/solid_queue/process.rb (heartbeat) @ v1.5.0
-- rendered from: app/models/solid_queue/process.rb:22-28 (touch(:last_heartbeat_at) under with_lock)
-- expect: none
UPDATE "solid_queue_processes" SET "last_heartbeat_at" = $1 WHERE "solid_queue_processes"."id" = $2;
