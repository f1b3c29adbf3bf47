-- Que v2.4.1 (github.com/que-rb/que). Que sends its own SQL through the pg gem: named
-- prepared statements (execute_prepared, when Que.use_prepared_statements and not in a
-- transaction) or exec_params. The text is the library's %{} literal verbatim, with its
-- indentation, minus the leading newline; #{Que.job_schema_version} is 2 (lib/que/version.rb).
-- One empty line inside poll_jobs (after ") AS j") is dropped here, since a blank line ends a block.

-- name: poll for jobs (Poller, every poll_interval = 5 s per queue while workers are free; sooner when the last poll filled them)
-- source: github.com/que-rb/que lib/que/poller.rb (SQL[:poll_jobs]) @ v2.4.1
-- expect: poll
        WITH RECURSIVE jobs AS (
          SELECT
            (j).*,
            l.locked,
            l.remaining_priorities
          FROM (
            SELECT j
            FROM public.que_jobs AS j
            WHERE queue = $1::text
              AND job_schema_version = 2
              AND NOT id = ANY($2::bigint[])
              AND priority <= pg_temp.que_highest_remaining_priority($3::jsonb)
              AND run_at <= now()
              AND finished_at IS NULL AND expired_at IS NULL
            ORDER BY priority, run_at, id
            LIMIT 1
          ) AS t1
          JOIN LATERAL (SELECT * FROM pg_temp.lock_and_update_priorities($3::jsonb, j)) AS l ON true
          UNION ALL (
            SELECT
              (j).*,
              l.locked,
              l.remaining_priorities
            FROM (
              SELECT
                remaining_priorities,
                (
                  SELECT j
                  FROM public.que_jobs AS j
                  WHERE queue = $1::text
                    AND job_schema_version = 2
                    AND NOT id = ANY($2::bigint[])
                    AND priority <= pg_temp.que_highest_remaining_priority(jobs.remaining_priorities)
                    AND run_at <= now()
                    AND finished_at IS NULL AND expired_at IS NULL
                    AND (priority, run_at, id) >
                      (jobs.priority, jobs.run_at, jobs.id)
                  ORDER BY priority, run_at, id
                  LIMIT 1
                ) AS j
              FROM jobs
              WHERE jobs.id IS NOT NULL AND jobs.remaining_priorities != '{}'::jsonb
              LIMIT 1
            ) AS t1
            JOIN LATERAL (SELECT * FROM pg_temp.lock_and_update_priorities(remaining_priorities, j)) AS l ON true
          )
        )
        SELECT *
        FROM jobs
        WHERE locked;

-- name: lock jobs announced by NOTIFY (listening locker; ids inlined, example ids)
-- source: github.com/que-rb/que lib/que/locker.rb (lock_jobs) @ v2.4.1
-- note: by id: the jobs a NOTIFY named are taken, not looked for; the poll is the Poller's statement above
-- expect: none
            WITH jobs AS MATERIALIZED (SELECT * FROM que_jobs WHERE id IN (101, 102))
            SELECT * FROM jobs WHERE pg_try_advisory_lock(id);

-- name: verify locked jobs are still available (after lock_jobs or a poll returned jobs; example ids) -- reads que_jobs, not a search for work
-- source: github.com/que-rb/que lib/que/locker.rb (push_jobs) @ v2.4.1
-- expect: none
            SELECT id
            FROM public.que_jobs
            WHERE finished_at IS NULL
              AND expired_at IS NULL
              AND id IN (101, 102);

-- name: enqueue a job (Que::Job.enqueue)
-- source: github.com/que-rb/que lib/que/job.rb (SQL[:insert_job]) @ v2.4.1
-- expect: enqueue
        INSERT INTO public.que_jobs
        (queue, priority, run_at, job_class, args, kwargs, data, job_schema_version)
        VALUES
        (
          coalesce($1, 'default')::text,
          coalesce($2, 100)::smallint,
          coalesce($3, now())::timestamptz,
          $4::text,
          coalesce($5, '[]')::jsonb,
          coalesce($6, '{}')::jsonb,
          coalesce($7, '{}')::jsonb,
          2
        )
        RETURNING *;

-- name: worker checks the job row still exists before running it (one per job run; reads que_jobs but is not a poll)
-- source: github.com/que-rb/que lib/que/worker.rb (SQL[:check_job]) @ v2.4.1
-- expect: none
        SELECT 1 AS one
        FROM public.que_jobs
        WHERE id = $1::bigint;

-- name: finish a job
-- source: github.com/que-rb/que lib/que/job_methods.rb (SQL[:finish_job]) @ v2.4.1
-- expect: none
      UPDATE public.que_jobs
      SET finished_at = now()
      WHERE id = $1::bigint;

-- name: destroy a job
-- source: github.com/que-rb/que lib/que/job_methods.rb (SQL[:destroy_job]) @ v2.4.1
-- expect: none
      DELETE FROM public.que_jobs
      WHERE id = $1::bigint;

-- name: release advisory locks of finished jobs (example ids)
-- source: github.com/que-rb/que lib/que/locker.rb (unlock_jobs) @ v2.4.1
-- expect: none
SELECT pg_advisory_unlock(v.i) FROM (VALUES (101), (102)) v (i);
