-- graphile-worker v0.17.3 (github.com/graphile/worker), schema "graphile_worker" (escaped with
-- pg's escapeIdentifier), preparedStatements true, useNodeTime false. Since v0.14 the worker
-- sends inline SQL against _private_jobs (jobs is the public view); up to v0.13 it called the
-- get_job/complete_job/fail_job functions. Texts are the template literals evaluated; lines that
-- are only whitespace (an empty ${flagsClause}) are dropped, since a blank line ends a block.

-- name: get jobs (worker idle loop, every pollInterval = 2000 ms per idle worker, and on NOTIFY "jobs:insert")
-- source: github.com/graphile/worker src/sql/getJobs.ts (batchGetJobs) @ v0.17.3
-- prepared statement "get_job/graphile_worker"; $1 = worker pool id, $2 = task ids
-- expect: poll
with j as (
  select jobs.job_queue_id, jobs.priority, jobs.run_at, jobs.id
    from "graphile_worker"._private_jobs as jobs
    where jobs.is_available = true
    and run_at <= now()
    and task_id = any($2::int[])
    and (
      jobs.job_queue_id is null
      or
      jobs.job_queue_id in (
        select id
        from "graphile_worker"._private_job_queues as job_queues
        where job_queues.is_available = true
        for update
        skip locked
      )
    )
    order by priority asc, run_at asc
    limit 1
    for update
    skip locked
),
q as (
  update "graphile_worker"._private_job_queues as job_queues
    set
      locked_by = $1::text,
      locked_at = now()
    from j
    where job_queues.id = j.job_queue_id
)
  update "graphile_worker"._private_jobs as jobs
    set
      attempts = jobs.attempts + 1,
      locked_by = $1::text,
      locked_at = now()
    from j
    where jobs.id = j.id
    returning *;

-- name: get jobs, LocalQueue batch of 10 with forbidden flags
-- source: github.com/graphile/worker src/sql/getJobs.ts (batchGetJobs) @ v0.17.3
-- prepared statement "get_job10F/graphile_worker"
-- expect: poll
with j as (
  select jobs.job_queue_id, jobs.priority, jobs.run_at, jobs.id
    from "graphile_worker"._private_jobs as jobs
    where jobs.is_available = true
    and run_at <= now()
    and task_id = any($2::int[])
    and (
      jobs.job_queue_id is null
      or
      jobs.job_queue_id in (
        select id
        from "graphile_worker"._private_job_queues as job_queues
        where job_queues.is_available = true
        for update
        skip locked
      )
    )
    and ((flags ?| $3::text[]) is not true)
    order by priority asc, run_at asc
    limit 10
    for update
    skip locked
),
q as (
  update "graphile_worker"._private_job_queues as job_queues
    set
      locked_by = $1::text,
      locked_at = now()
    from j
    where job_queues.id = j.job_queue_id
)
  update "graphile_worker"._private_jobs as jobs
    set
      attempts = jobs.attempts + 1,
      locked_by = $1::text,
      locked_at = now()
    from j
    where jobs.id = j.id
    returning *;

-- name: get a job, releases up to v0.13 (the get_job function)
-- source: github.com/graphile/worker src/worker.ts @ v0.13.0
-- prepared statement "get_job/graphile_worker"
-- expect: poll
SELECT * FROM "graphile_worker".get_job($1, $2, forbidden_flags := $3::text[], now := coalesce($4::timestamptz, now()));

-- name: add a job (addJob / quickAddJob)
-- source: github.com/graphile/worker src/helpers.ts (makeAddJob) @ v0.17.3
-- text begins with a newline and 8 spaces of indentation; the trailing newline and spaces after ";" are not shown
-- expect: enqueue
        select * from "graphile_worker".add_job(
          identifier => $1::text,
          payload => $2::json,
          queue_name => $3::text,
          run_at => $4::timestamptz,
          max_attempts => $5::int,
          job_key => $6::text,
          priority => $7::int,
          flags => $8::text[],
          job_key_mode => $9::text
        );

-- name: add jobs in bulk (addJobs)
-- source: github.com/graphile/worker src/helpers.ts (makeAddJobs) @ v0.17.3
-- expect: enqueue
select *
from "graphile_worker".add_jobs(
  array(
    select json_populate_recordset(null::"graphile_worker".job_spec, $1::json)
  ),
  $2::boolean
);

-- name: complete one job without a named queue
-- source: github.com/graphile/worker src/sql/completeJobs.ts (batchCompleteJobs) @ v0.17.3
-- prepared statement "complete_job/graphile_worker"
-- expect: none
delete from "graphile_worker"._private_jobs as jobs
where id = $1::bigint;

-- name: complete jobs that hold a named queue -- DELETE ... RETURNING inside a CTE, then unlock the queue
-- source: github.com/graphile/worker src/sql/completeJobs.ts (batchCompleteJobs) @ v0.17.3
-- prepared statement "complete_job_q/graphile_worker"
-- expect: none
with j as (
delete from "graphile_worker"._private_jobs as jobs
using unnest($1::bigint[]) n(n)
where id = n
returning *
)
update "graphile_worker"._private_job_queues as job_queues
set locked_by = null, locked_at = null
from j
where job_queues.id = j.job_queue_id and job_queues.locked_by = $2::text;

-- name: complete a job, releases up to v0.13 (the complete_job function)
-- source: github.com/graphile/worker src/worker.ts @ v0.13.0
-- expect: none
SELECT FROM "graphile_worker".complete_job($1, $2);
