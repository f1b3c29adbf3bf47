-- Oban v2.23.1 (github.com/oban-bg/oban), Basic engine with the default prefix "public".
-- Oban builds its SQL with Ecto; the statements below are rendered by hand from the Ecto
-- queries with the Ecto 3.13.5 planner and ecto_sql 3.13.5 Postgres connection (the versions in
-- Oban's mix.lock): CTE and subquery columns get `AS "name"`, inner aliases get an `s` prefix,
-- runtime values become $n (CTE first, then SET, then joins, then WHERE), literals are inlined.

-- name: fetch available jobs (producer dispatch)
-- source: github.com/oban-bg/oban lib/oban/engines/basic.ex (fetch_jobs/3) @ v2.23.1
-- rendered from: lib/oban/engines/basic.ex:94-130
-- expect: poll
WITH "subset" AS (SELECT so0."id" AS "id" FROM "public"."oban_jobs" AS so0 WHERE (so0."state" = 'available') AND (so0."queue" = $1) ORDER BY so0."priority", so0."scheduled_at", so0."id" LIMIT $2 FOR UPDATE SKIP LOCKED) UPDATE "public"."oban_jobs" AS o0 SET "state" = $3, "attempted_at" = $4, "attempted_by" = $5, "attempt" = o0."attempt" + $6 FROM "subset" AS f1 WHERE (o0."id" = f1."id") AND (o0."attempt" < o0."max_attempts") RETURNING o0."id", o0."state", o0."queue", o0."worker", o0."args", o0."meta", o0."tags", o0."errors", o0."attempt", o0."attempted_by", o0."max_attempts", o0."priority", o0."attempted_at", o0."cancelled_at", o0."completed_at", o0."discarded_at", o0."inserted_at", o0."scheduled_at";

-- name: stage scheduled/retryable jobs (Stager, every stage_interval on the leader)
-- source: github.com/oban-bg/oban lib/oban/engines/basic.ex (stage_jobs/3) @ v2.23.1
-- rendered from: lib/oban/engines/basic.ex:134-153
-- expect: poll
UPDATE "public"."oban_jobs" AS o0 SET "state" = $1 FROM (SELECT so0."id" AS "id", so0."state" AS "state" FROM "public"."oban_jobs" AS so0 WHERE (so0."state" IN ('scheduled','retryable')) AND (so0."scheduled_at" <= $2) ORDER BY so0."scheduled_at" DESC, so0."id" DESC LIMIT $3) AS s1 WHERE (o0."id" = s1."id") RETURNING o0."id", o0."queue", s1."state";

-- name: queues with available jobs (Stager, every stage_interval, then pg_notify to them)
-- source: github.com/oban-bg/oban lib/oban/engines/basic.ex (check_available/1) @ v2.23.1
-- rendered from: lib/oban/engines/basic.ex:204-213
-- expect: poll
SELECT DISTINCT o0."queue" FROM "public"."oban_jobs" AS o0 WHERE (o0."state" = 'available') AND (NOT (o0."queue" IS NULL));

-- name: insert a job (Oban.insert/2, no unique options)
-- source: github.com/oban-bg/oban lib/oban/engines/basic.ex (insert_unique/3 -> Repo.insert) @ v2.23.1
-- rendered from: lib/oban/engines/basic.ex:443 (columns: the non-nil fields of Oban.Job.new/2, in Ecto's sorted-map order)
-- expect: enqueue
INSERT INTO "public"."oban_jobs" ("args","attempt","errors","max_attempts","meta","queue","state","tags","worker") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT DO NOTHING RETURNING "id";

-- name: insert trigger notification (after an insert; also the Stager's notice to queues)
-- source: github.com/oban-bg/oban lib/oban/notifiers/postgres.ex (notify/3) @ v2.23.1
-- expect: none
SELECT pg_notify($1, payload) FROM json_array_elements_text($2::json) AS payload;

-- name: complete a job
-- source: github.com/oban-bg/oban lib/oban/engines/basic.ex (complete_job/2) @ v2.23.1
-- rendered from: lib/oban/engines/basic.ex:216-224
-- expect: none
UPDATE "public"."oban_jobs" AS o0 SET "state" = $1, "completed_at" = $2 WHERE (o0."id" = $3);

-- name: snooze a job
-- source: github.com/oban-bg/oban lib/oban/engines/basic.ex (snooze_job/3) @ v2.23.1
-- rendered from: lib/oban/engines/basic.ex:263-271
-- expect: none
UPDATE "public"."oban_jobs" AS o0 SET "state" = $1, "scheduled_at" = $2, "max_attempts" = o0."max_attempts" + $3 WHERE (o0."id" = $4);

-- name: prune old jobs (Pruner plugin) -- maintenance, but DELETE ... USING (SELECT ...) RETURNING reads oban_jobs
-- source: github.com/oban-bg/oban lib/oban/engines/basic.ex (prune_jobs/3) @ v2.23.1
-- rendered from: lib/oban/engines/basic.ex:156-178
-- expect: none
DELETE FROM "public"."oban_jobs" AS o0 USING (SELECT so0."id" AS "id", so0."queue" AS "queue", so0."state" AS "state" FROM "public"."oban_jobs" AS so0 WHERE ((((so0."state" = 'completed') AND (so0."scheduled_at" < $1))) OR ((so0."state" = 'cancelled') AND (so0."cancelled_at" < $2)) OR ((so0."state" = 'discarded') AND (so0."discarded_at" < $3))) AND (NOT (so0."queue" IS NULL)) LIMIT $4) AS s1 WHERE (o0."id" = s1."id") RETURNING s1."id", s1."queue", s1."state";

-- name: rescue orphaned jobs (Lifeline plugin) -- maintenance, but UPDATE ... RETURNING
-- source: github.com/oban-bg/oban lib/oban/engines/basic.ex (rescue_jobs/3) @ v2.23.1
-- rendered from: lib/oban/engines/basic.ex:181-201
-- expect: none
UPDATE "public"."oban_jobs" AS o0 SET "state" = $1 WHERE ((o0."state" = 'executing') AND (o0."attempted_at" < $2)) AND (o0."attempt" < o0."max_attempts") RETURNING o0."id", o0."queue", o0."state";
