-- pg-boss 12.27.0 (github.com/timgit/pg-boss), schema "pgboss". pg-boss builds its SQL as
-- template strings in src/plans.ts and sends them through node-postgres; these were produced by
-- evaluating those functions (queue name "email"). Lines that are only whitespace (left by empty
-- interpolations) are dropped, because a blank line ends a block here; otherwise the text is exact.
-- Since v10 a queue's jobs live in pgboss.job_common (default) or, for a queue created with
-- partition: true, in its own partition pgboss.j<sha224(name) in hex>; pgboss.job is the parent.

-- name: fetch, work() default (queue "email" in the shared job_common table, batchSize 1) -- every pollingIntervalSeconds (2 s) per worker
-- source: github.com/timgit/pg-boss src/plans.ts (fetchNextJob) via src/manager.ts (fetch) @ 12.27.0
-- sent by node-postgres pool.query(text, []) (no parameters: simple query protocol; queue name inlined)
-- expect: poll
      WITH
      next AS (
        SELECT j.id
        FROM pgboss.job_common j
        WHERE j.name = 'email'
          AND j.state < 'active'
          AND NOT j.blocked
          AND j.start_after <= now()
        ORDER BY j.priority desc, j.created_on, j.id
        LIMIT 1
        FOR UPDATE OF j SKIP LOCKED
      )
      UPDATE pgboss.job_common j SET
        state = 'active',
        started_on = now(),
        heartbeat_on = now(),
        retry_count = CASE WHEN started_on IS NOT NULL THEN retry_count + 1 ELSE retry_count END
      FROM next
      WHERE name = 'email' AND j.id = next.id
      RETURNING j.id, name, data, expire_seconds as "expireInSeconds", heartbeat_seconds as "heartbeatSeconds", group_id as "groupId", group_tier as "groupTier";

-- name: fetch, queue created with partition: true (own table j || sha224(name)), batchSize 1
-- source: github.com/timgit/pg-boss src/plans.ts (fetchNextJob, createQueueFunction table name) @ 12.27.0
-- expect: poll
      WITH
      next AS (
        SELECT j.id
        FROM pgboss.je5d86f75ef6411d6af5760811945499fac12f4e3dc2b23a9bf903adb j
        WHERE j.name = 'email'
          AND j.state < 'active'
          AND NOT j.blocked
          AND j.start_after <= now()
        ORDER BY j.priority desc, j.created_on, j.id
        LIMIT 1
        FOR UPDATE OF j SKIP LOCKED
      )
      UPDATE pgboss.je5d86f75ef6411d6af5760811945499fac12f4e3dc2b23a9bf903adb j SET
        state = 'active',
        started_on = now(),
        heartbeat_on = now(),
        retry_count = CASE WHEN started_on IS NOT NULL THEN retry_count + 1 ELSE retry_count END
      FROM next
      WHERE name = 'email' AND j.id = next.id
      RETURNING j.id, name, data, expire_seconds as "expireInSeconds", heartbeat_seconds as "heartbeatSeconds", group_id as "groupId", group_tier as "groupTier";

-- name: fetch, stately queue, batchSize 5, includeMetadata
-- source: github.com/timgit/pg-boss src/plans.ts (fetchNextJob) @ 12.27.0
-- expect: poll
      WITH
      next AS (
        SELECT j.id, j.singleton_key
        FROM pgboss.job_common j
        WHERE j.name = 'email'
          AND j.state < 'active'
          AND NOT j.blocked
          AND j.start_after <= now()
        ORDER BY j.priority desc, j.created_on, j.id
        LIMIT 5
        FOR UPDATE OF j SKIP LOCKED
      )
      , singleton_ranking AS (
        SELECT id, 
          row_number() OVER (PARTITION BY singleton_key) as singleton_rn
        FROM next
      )
      UPDATE pgboss.job_common j SET
        state = 'active',
        started_on = now(),
        heartbeat_on = now(),
        retry_count = CASE WHEN started_on IS NOT NULL THEN retry_count + 1 ELSE retry_count END
      FROM singleton_ranking
      WHERE name = 'email' AND j.id = singleton_ranking.id
      AND singleton_rn = 1
      RETURNING j.id, name, data, expire_seconds as "expireInSeconds", heartbeat_seconds as "heartbeatSeconds", group_id as "groupId", group_tier as "groupTier",
  policy,
  state,
  priority,
  retry_limit as "retryLimit",
  retry_count as "retryCount",
  retry_delay as "retryDelay",
  retry_backoff as "retryBackoff",
  retry_delay_max as "retryDelayMax",
  start_after as "startAfter",
  started_on as "startedOn",
  singleton_key as "singletonKey",
  singleton_on as "singletonOn",
  deletion_seconds as "deleteAfterSeconds",
  heartbeat_on as "heartbeatOn",
  created_on as "createdOn",
  completed_on as "completedOn",
  keep_until as "keepUntil",
  dead_letter as "deadLetter",
  blocked,
  blocking,
  pending_dependencies as "pendingDependencies",
  output,
  source_name as "sourceName",
  source_id as "sourceId",
  source_created_on as "sourceCreatedOn",
  source_retry_count as "sourceRetryCount";

-- name: send a job (notify off, the default)
-- source: github.com/timgit/pg-boss src/plans.ts (insertJobs) via src/manager.ts (createJob) @ 12.27.0
-- sent with one parameter, $1 = JSON array of the job
-- expect: enqueue
    INSERT INTO pgboss.job_common (
      id,
      name,
      data,
      priority,
      start_after,
      singleton_key,
      singleton_on,
      group_id,
      group_tier,
      expire_seconds,
      deletion_seconds,
      keep_until,
      retry_limit,
      retry_delay,
      retry_backoff,
      retry_delay_max,
      policy,
      dead_letter,
      heartbeat_seconds,
      blocked,
      blocking,
      pending_dependencies
    )
    SELECT
      COALESCE(id, gen_random_uuid()) as id,
      'email' as name,
      data,
      COALESCE(priority, 0) as priority,
      j.start_after,
      "singletonKey",
      CASE
        WHEN "singletonSeconds" IS NOT NULL THEN 'epoch'::timestamp + '1s'::interval * ("singletonSeconds"::float8 * floor(( date_part('epoch', now()) + COALESCE("singletonOffset",0)::float8) / "singletonSeconds"::float8 ))
        ELSE NULL
        END as singleton_on,
      "groupId" as group_id,
      "groupTier" as group_tier,
      COALESCE("expireInSeconds", q.expire_seconds) as expire_seconds,
      COALESCE("deleteAfterSeconds", q.deletion_seconds) as deletion_seconds,
      j.start_after + (COALESCE("retentionSeconds", q.retention_seconds) * interval '1s') as keep_until,
      COALESCE("retryLimit", q.retry_limit) as retry_limit,
      COALESCE("retryDelay", q.retry_delay) as retry_delay,
      COALESCE("retryBackoff", q.retry_backoff, false) as retry_backoff,
      COALESCE("retryDelayMax", q.retry_delay_max) as retry_delay_max,
      q.policy,
      COALESCE("deadLetter", q.dead_letter) as dead_letter,
      COALESCE("heartbeatSeconds", q.heartbeat_seconds) as heartbeat_seconds,
      COALESCE(blocked, false) as blocked,
      COALESCE(blocking, false) as blocking,
      COALESCE("pendingDependencies", 0) as pending_dependencies
    FROM (
      SELECT *,
        CASE
          WHEN right("startAfter", 1) = 'Z' THEN CAST("startAfter" as timestamp with time zone)
          ELSE now() + CAST(COALESCE("startAfter",'0') as interval)
          END as start_after
      FROM json_to_recordset($1::json) as x (
        id uuid,
        priority integer,
        data jsonb,
        "startAfter" text,
        "retryLimit" integer,
        "retryDelay" integer,
        "retryDelayMax" integer,
        "retryBackoff" boolean,
        "singletonKey" text,
        "singletonSeconds" integer,
        "singletonOffset" integer,
        "groupId" text,
        "groupTier" text,
        "expireInSeconds" integer,
        "deleteAfterSeconds" integer,
        "retentionSeconds" integer,
        "deadLetter" text,
        "heartbeatSeconds" integer,
        blocked boolean,
        blocking boolean,
        "pendingDependencies" integer
      )
    ) j
    JOIN pgboss.queue q ON q.name = 'email'
    ON CONFLICT DO NOTHING
    RETURNING id;

-- name: send a job to a notify-enabled queue with useListenNotify (INSERT inside a CTE, then pg_notify)
-- source: github.com/timgit/pg-boss src/plans.ts (insertJobs, notifyChannelSql) @ 12.27.0
-- expect: enqueue
    WITH ins AS (
    INSERT INTO pgboss.job_common (
      id,
      name,
      data,
      priority,
      start_after,
      singleton_key,
      singleton_on,
      group_id,
      group_tier,
      expire_seconds,
      deletion_seconds,
      keep_until,
      retry_limit,
      retry_delay,
      retry_backoff,
      retry_delay_max,
      policy,
      dead_letter,
      heartbeat_seconds,
      blocked,
      blocking,
      pending_dependencies
    )
    SELECT
      COALESCE(id, gen_random_uuid()) as id,
      'email' as name,
      data,
      COALESCE(priority, 0) as priority,
      j.start_after,
      "singletonKey",
      CASE
        WHEN "singletonSeconds" IS NOT NULL THEN 'epoch'::timestamp + '1s'::interval * ("singletonSeconds"::float8 * floor(( date_part('epoch', now()) + COALESCE("singletonOffset",0)::float8) / "singletonSeconds"::float8 ))
        ELSE NULL
        END as singleton_on,
      "groupId" as group_id,
      "groupTier" as group_tier,
      COALESCE("expireInSeconds", q.expire_seconds) as expire_seconds,
      COALESCE("deleteAfterSeconds", q.deletion_seconds) as deletion_seconds,
      j.start_after + (COALESCE("retentionSeconds", q.retention_seconds) * interval '1s') as keep_until,
      COALESCE("retryLimit", q.retry_limit) as retry_limit,
      COALESCE("retryDelay", q.retry_delay) as retry_delay,
      COALESCE("retryBackoff", q.retry_backoff, false) as retry_backoff,
      COALESCE("retryDelayMax", q.retry_delay_max) as retry_delay_max,
      q.policy,
      COALESCE("deadLetter", q.dead_letter) as dead_letter,
      COALESCE("heartbeatSeconds", q.heartbeat_seconds) as heartbeat_seconds,
      COALESCE(blocked, false) as blocked,
      COALESCE(blocking, false) as blocking,
      COALESCE("pendingDependencies", 0) as pending_dependencies
    FROM (
      SELECT *,
        CASE
          WHEN right("startAfter", 1) = 'Z' THEN CAST("startAfter" as timestamp with time zone)
          ELSE now() + CAST(COALESCE("startAfter",'0') as interval)
          END as start_after
      FROM json_to_recordset($1::json) as x (
        id uuid,
        priority integer,
        data jsonb,
        "startAfter" text,
        "retryLimit" integer,
        "retryDelay" integer,
        "retryDelayMax" integer,
        "retryBackoff" boolean,
        "singletonKey" text,
        "singletonSeconds" integer,
        "singletonOffset" integer,
        "groupId" text,
        "groupTier" text,
        "expireInSeconds" integer,
        "deleteAfterSeconds" integer,
        "retentionSeconds" integer,
        "deadLetter" text,
        "heartbeatSeconds" integer,
        blocked boolean,
        blocking boolean,
        "pendingDependencies" integer
      )
    ) j
    JOIN pgboss.queue q ON q.name = 'email'
    ON CONFLICT DO NOTHING
    RETURNING id, start_after
    ),
    notified AS (
      SELECT pg_notify(('pgboss_' || left(encode(sha224('pgboss'::bytea), 'hex'), 24)), 'email')
      FROM ins WHERE start_after <= now() LIMIT 1
    )
    SELECT id FROM ins WHERE (SELECT count(*) FROM notified) >= 0;

-- name: complete jobs (work() after the handler resolves) -- UPDATE ... RETURNING 1 inside a CTE
-- source: github.com/timgit/pg-boss src/plans.ts (completeJobsWithOutputs) via src/manager.ts (#completeWithOutputs) @ 12.27.0
-- expect: none
    WITH input AS (
      SELECT * FROM json_to_recordset($2::json) AS x (id uuid, output jsonb)
    ),
    results AS (
      UPDATE pgboss.job_common j
      SET completed_on = now(),
        state = 'completed',
        output = i.output
      FROM input i
      WHERE j.name = $1
        AND j.id = i.id
        AND j.state = 'active'
      RETURNING 1
    )
    SELECT COUNT(*) FROM results;

-- name: heartbeat / touch active jobs -- UPDATE ... RETURNING 1 inside a CTE
-- source: github.com/timgit/pg-boss src/plans.ts (touchJobs) @ 12.27.0
-- expect: none
    WITH results AS (
      UPDATE pgboss.job_common
      SET heartbeat_on = now()
      WHERE name = $1
        AND id = ANY($2::uuid[])
        AND state = 'active'
      RETURNING 1
    )
    SELECT COUNT(*) FROM results;

-- name: complete jobs by id (boss.complete) -- UPDATE ... RETURNING 1 inside a CTE
-- source: github.com/timgit/pg-boss src/plans.ts (completeJobs) @ 12.27.0
-- expect: none
    WITH results AS (
      UPDATE pgboss.job_common
      SET completed_on = now(),
        state = 'completed',
        output = $3::jsonb,
        blocked = blocked,
        pending_dependencies = pending_dependencies
      WHERE name = $1
        AND id = ANY($2::uuid[])
        AND state = 'active'
      RETURNING 1
    )
    SELECT COUNT(*) FROM results;
