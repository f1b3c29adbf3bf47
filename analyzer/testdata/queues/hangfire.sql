-- Hangfire.PostgreSql 1.21.1 (github.com/hangfire-postgres/Hangfire.PostgreSql), default options
-- (SchemaName "hangfire", InvisibilityTimeout 30 min). Dapper + Npgsql: Npgsql rewrites @Name
-- placeholders to $n and sends each ";"-terminated statement separately without its ";" and
-- without the C# verbatim string's leading newline; indentation and trailing spaces inside the
-- text are kept as in the source.

-- name: dequeue (UseNativeDatabaseTransactions = true, the default) -- each worker, again every QueuePollInterval = 15 s while empty
-- source: github.com/hangfire-postgres/Hangfire.PostgreSql src/Hangfire.PostgreSql/PostgreSqlJobQueue.cs (Dequeue_Transaction, fetchJobSql) @ 1.21.1
-- InvisibilityTimeout 30 min -> INTERVAL '-1800 SECONDS'; $1 = text[] of the worker's queues (Dapper passes the list as an array to Npgsql)
-- expect: poll
UPDATE "hangfire"."jobqueue" 
        SET "fetchedat" = NOW()
        WHERE "id" = (
          SELECT "id" 
          FROM "hangfire"."jobqueue" 
          WHERE "queue" = ANY ($1)
          AND ("fetchedat" IS NULL OR "fetchedat" < NOW() + INTERVAL '-1800 SECONDS')
          ORDER BY "fetchedat" NULLS FIRST, "queue", "jobid"
          FOR UPDATE SKIP LOCKED
          LIMIT 1
        )
        RETURNING "id" AS "Id", "jobid" AS "JobId", "queue" AS "Queue", "fetchedat" AS "FetchedAt";

-- name: dequeue, UseNativeDatabaseTransactions = false -- step 1, look for a job
-- source: github.com/hangfire-postgres/Hangfire.PostgreSql src/Hangfire.PostgreSql/PostgreSqlJobQueue.cs (Dequeue_UpdateCount, jobToFetchSql) @ 1.21.1
-- expect: poll
SELECT "id" AS "Id", "jobid" AS "JobId", "queue" AS "Queue", "fetchedat" AS "FetchedAt", "updatecount" AS "UpdateCount"
        FROM "hangfire"."jobqueue" 
        WHERE "queue" = ANY ($1)
        AND ("fetchedat" IS NULL OR "fetchedat" < NOW() + INTERVAL '-1800 SECONDS')
        ORDER BY "fetchedat" NULLS FIRST, "queue", "jobid"
        LIMIT 1;

-- name: dequeue, UseNativeDatabaseTransactions = false -- step 2, claim the job step 1 found (runs only when one was found; UPDATE ... RETURNING by id)
-- source: github.com/hangfire-postgres/Hangfire.PostgreSql src/Hangfire.PostgreSql/PostgreSqlJobQueue.cs (Dequeue_UpdateCount, markJobAsFetchedSql) @ 1.21.1
-- expect: none
UPDATE "hangfire"."jobqueue" 
        SET "fetchedat" = NOW(), 
            "updatecount" = ("updatecount" + 1) % 2000000000
        WHERE "id" = $1 
        AND "updatecount" = $2
        RETURNING "id" AS "Id", "jobid" AS "JobId", "queue" AS "Queue", "fetchedat" AS "FetchedAt";

-- name: enqueue (write-only transaction commit -> AddToQueue)
-- source: github.com/hangfire-postgres/Hangfire.PostgreSql src/Hangfire.PostgreSql/PostgreSqlJobQueue.cs (Enqueue) @ 1.21.1
-- expect: enqueue
INSERT INTO "hangfire"."jobqueue" ("jobid", "queue") 
        VALUES ($1, $2);

-- name: job finished, remove it from the queue
-- source: github.com/hangfire-postgres/Hangfire.PostgreSql src/Hangfire.PostgreSql/PostgreSqlFetchedJob.cs (RemoveFromQueue) @ 1.21.1
-- expect: none
DELETE FROM "hangfire"."jobqueue" WHERE "id" = $1 AND "fetchedat" = $2;

-- name: keep-alive of a fetched job (UseSlidingInvisibilityTimeout = true) -- UPDATE ... RETURNING
-- source: github.com/hangfire-postgres/Hangfire.PostgreSql src/Hangfire.PostgreSql/PostgreSqlFetchedJob.cs (updateFetchAtSql) @ 1.21.1
-- expect: none
UPDATE "hangfire"."jobqueue" 
          SET "fetchedat" = NOW()
          WHERE "id" = $1 AND "fetchedat" = $2
          RETURNING "fetchedat" AS "FetchedAt";

-- name: dashboard: queue names -- reads jobqueue, not a poll for work
-- source: github.com/hangfire-postgres/Hangfire.PostgreSql src/Hangfire.PostgreSql/PostgreSqlJobQueueMonitoringApi.cs (GetQueues) @ 1.21.1
-- note: the analyzer counts it as a poll: a SELECT DISTINCT of the queue's table is what Oban's Stager polls with (check_available), and nothing in the text tells the two apart; a dashboard runs it when a page is open, not in a loop
-- expect: poll
SELECT DISTINCT "queue" FROM "hangfire"."jobqueue";
