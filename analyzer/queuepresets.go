package analyzer

// QueuePresets are the PostgreSQL-backed job systems people run, read from each library's own
// source. The statements each one sends are in testdata/queues/<Name>.sql, with the expected
// classification of every statement; docs/queues.md has the same facts for users.
var QueuePresets = []Queue{
	// Oban v2.23.1 (Elixir). Every producer claims work with one statement: a CTE
	// `WITH "subset" AS (SELECT ... FROM "public"."oban_jobs" ... FOR UPDATE SKIP LOCKED)
	// UPDATE "public"."oban_jobs" ... RETURNING ...` (lib/oban/engines/basic.ex, fetch_jobs/3);
	// the Stager (lib/oban/stager.ex) reads oban_jobs every stage_interval (stage_jobs,
	// check_available). Jobs are enqueued by an Ecto INSERT into oban_jobs. No SQL functions.
	{
		Name:    "oban",
		Library: "Oban",
		Tables:  []string{"oban_jobs"},
		Fix: "Queues fetch when an insert notification arrives (Oban.Notifiers.Postgres LISTEN/NOTIFY, insert_trigger: true by default), " +
			"so make sure notifications get through: behind PgBouncer transaction pooling they fail and the Stager falls back to local mode, " +
			"where every queue on every node polls each stage_interval (default 1_000 ms); raise stage_interval, use Oban.Notifiers.PG on a " +
			"clustered app, and run fewer queues per node.",
		Source: "github.com/oban-bg/oban lib/oban/engines/basic.ex, lib/oban/stager.ex, lib/oban/queue/producer.ex @ v2.23.1",
	},
	// Solid Queue v1.5.0 (Rails). Workers claim with SELECT ... FROM solid_queue_ready_executions
	// ... FOR UPDATE SKIP LOCKED (app/models/solid_queue/ready_execution.rb), the dispatcher polls
	// solid_queue_scheduled_executions the same way (scheduled_execution.rb). Enqueueing inserts
	// into solid_queue_jobs and then solid_queue_ready_executions (or
	// solid_queue_scheduled_executions) in one transaction (job.rb, job/executable.rb), so one
	// job is two enqueue statements. No SQL functions.
	{
		Name:          "solid_queue",
		Library:       "Solid Queue",
		Tables:        []string{"solid_queue_ready_executions", "solid_queue_scheduled_executions", "solid_queue_jobs"},
		EnqueueTables: []string{"solid_queue_jobs"},
		Fix: "Raise the worker polling_interval in config/queue.yml (the code default is 0.1 s, lib/solid_queue/configuration.rb; " +
			"the installer's queue.yml sets 1 s since v1.5.0) and the dispatcher's polling_interval (default 1 s). " +
			"Solid Queue has no LISTEN/NOTIFY: each worker process polls on its own, so run fewer worker processes per queue.",
		Source: "github.com/rails/solid_queue app/models/solid_queue/ready_execution.rb, app/models/solid_queue/scheduled_execution.rb, lib/solid_queue/configuration.rb @ v1.5.0",
	},
	// GoodJob v4.19.2 (Rails). The default :advisory lock strategy dequeues with
	// SELECT "good_jobs".* FROM "good_jobs" WHERE "good_jobs"."id" IN (WITH "rows" AS MATERIALIZED
	// (SELECT ... FROM "good_jobs" ...) SELECT "rows"."id" FROM "rows" WHERE pg_try_advisory_lock(...)
	// LIMIT $2) (app/models/concerns/good_job/advisory_lockable.rb); :skiplocked and :hybrid
	// use WITH candidate AS MATERIALIZED (... FOR NO KEY UPDATE SKIP LOCKED) UPDATE "good_jobs" ...
	// RETURNING (app/models/good_job/job/lockable.rb). Enqueue inserts into good_jobs.
	{
		Name:    "good_job",
		Library: "GoodJob",
		Tables:  []string{"good_jobs"},
		Fix: "LISTEN/NOTIFY is on by default (enable_listen_notify, GOOD_JOB_ENABLE_LISTEN_NOTIFY), so the poll is only a backstop: " +
			"raise poll_interval (config.good_job.poll_interval or GOOD_JOB_POLL_INTERVAL, default 10 s) and keep LISTEN/NOTIFY working " +
			"(it needs a session, not PgBouncer transaction pooling); fewer queue pools per process poll less.",
		Source: "github.com/bensheldon/good_job app/models/good_job/job.rb, app/models/concerns/good_job/advisory_lockable.rb, lib/good_job/configuration.rb @ v4.19.2",
	},
	// Que v2.4.1 (Ruby). The locker polls with a recursive CTE over public.que_jobs that takes
	// pg_try_advisory_lock through pg_temp.lock_and_update_priorities (lib/que/poller.rb,
	// SQL[:poll_jobs]) and, when a NOTIFY names jobs, locks them with WITH jobs AS MATERIALIZED
	// (SELECT * FROM que_jobs ...) (lib/que/locker.rb). Enqueue is INSERT INTO public.que_jobs
	// (lib/que/job.rb). The pg_temp functions are only called from statements that read
	// que_jobs, so no PollFunctions are needed.
	{
		Name:    "que",
		Library: "Que",
		Tables:  []string{"que_jobs"},
		Fix: "Raise poll_interval (que --poll-interval, default 5 s per queue); lockers LISTEN by default (--listen, with the " +
			"que_job_notify trigger sending each new job to a locker), so polling only picks up scheduled and retried jobs; " +
			"run fewer locker processes.",
		Source: "github.com/que-rb/que lib/que/poller.rb, lib/que/locker.rb, lib/que/job.rb @ v2.4.1",
	},
	// delayed_job_active_record v4.1.11 with delayed_job v4.2.0. On PostgreSQL the default
	// :optimized_sql strategy reserves with UPDATE "delayed_jobs" SET locked_at = ..., locked_by =
	// ... WHERE id IN (SELECT id FROM "delayed_jobs" WHERE ... LIMIT 1 FOR UPDATE SKIP LOCKED)
	// RETURNING * (lib/delayed/backend/active_record.rb,
	// reserve_with_scope_using_optimized_postgres); :default_sql first SELECTs candidate ids.
	// Enqueue is an ActiveRecord INSERT into delayed_jobs.
	{
		Name:    "delayed_job",
		Library: "Delayed::Job (delayed_job_active_record)",
		Tables:  []string{"delayed_jobs"},
		Fix: "Raise Delayed::Worker.sleep_delay (default 5 s): an idle worker reserves once per sleep_delay. " +
			"delayed_job has no LISTEN/NOTIFY, and every worker process polls on its own, so run fewer workers per queue.",
		Source: "github.com/collectiveidea/delayed_job_active_record lib/delayed/backend/active_record.rb @ v4.1.11; github.com/collectiveidea/delayed_job lib/delayed/worker.rb @ v4.2.0",
	},
	// pg-boss 12.27.0 (Node). work() fetches with WITH next AS (SELECT j.id FROM pgboss.<table> j
	// ... FOR UPDATE OF j SKIP LOCKED) UPDATE pgboss.<table> j SET state = 'active' ... RETURNING
	// (src/plans.ts, fetchNextJob); send() inserts with INSERT INTO pgboss.<table> (...) SELECT
	// ... FROM json_to_recordset($1::json) (insertJobs). Since v10 <table> is job_common for
	// ordinary queues and, for a queue created with partition: true, its own partition named
	// 'j' || sha224(queue name) in hex (createQueueFunction), which no fixed list can name;
	// job is the partitioned parent.
	{
		Name:              "pgboss",
		Library:           "pg-boss",
		Schema:            "pgboss",
		Tables:            []string{"job", "job_common"},
		HashedTablePrefix: "j",
		Fix: "Raise pollingIntervalSeconds on work() (default 2, minimum 0.5); each of a queue's localConcurrency workers polls on its own, " +
			"so use batchSize instead of more workers. Since v12 pg-boss can LISTEN: pass useListenNotify: true to the constructor and " +
			"create the queue with notify: true, and idle polling drops to notifyPollingIntervalSeconds (default 30).",
		Source: "github.com/timgit/pg-boss src/plans.ts, src/manager.ts, src/worker.ts, src/attorney.ts @ 12.27.0",
	},
	// graphile-worker v0.17.3 (Node). Since v0.14 workers fetch with inline SQL, with j as (select
	// ... from "graphile_worker"._private_jobs as jobs ... for update skip locked) ... update
	// "graphile_worker"._private_jobs ... returning * (src/sql/getJobs.ts); up to v0.13 they called
	// the get_job function (src/worker.ts @ v0.13.0) on the jobs table. Enqueue is the add_job /
	// add_jobs function (src/helpers.ts), also called from SQL by applications and triggers.
	{
		Name:             "graphile_worker",
		Library:          "Graphile Worker",
		Schema:           "graphile_worker",
		Tables:           []string{"_private_jobs", "jobs"},
		PollFunctions:    []string{"get_job"},
		EnqueueFunctions: []string{"add_job", "add_jobs"},
		Fix: "Raise pollInterval (default 2000 ms); workers LISTEN on \"jobs:insert\" by default, so the poll only finds scheduled and " +
			"retried jobs. Every idle worker polls (concurrentJobs per instance), so lower concurrency or enable the LocalQueue " +
			"(worker.localQueue.size) so one fetch serves the whole pool.",
		Source: "github.com/graphile/worker src/sql/getJobs.ts, src/helpers.ts, src/config.ts @ v0.17.3; src/worker.ts @ v0.13.0",
	},
	// River v0.43.0 (Go). Producers fetch with the sqlc query JobGetAvailable: WITH locked_jobs AS
	// (SELECT ... FROM river_job WHERE state = 'available' ... FOR UPDATE SKIP LOCKED) UPDATE
	// river_job ... RETURNING (riverdriver/riverpgxv5/internal/dbsqlc/river_job.sql); the leader's
	// JobScheduler reads river_job every 5 s (JobSchedule). Inserts are JobInsertFastMany (INSERT
	// INTO river_job ... SELECT unnest(...)). No SQL functions.
	{
		Name:    "river",
		Library: "River",
		Tables:  []string{"river_job"},
		Fix: "Raise Config.FetchPollInterval (default 1 s) and FetchCooldown (default 100 ms), or per queue in QueueConfig; River wakes " +
			"producers with LISTEN/NOTIFY unless Config.PollOnly is set (needed behind PgBouncer transaction pooling), so keep a " +
			"session-pooled connection for the listener and leave PollOnly off.",
		Source: "github.com/riverqueue/river riverdriver/riverpgxv5/internal/dbsqlc/river_job.sql, client.go, internal/maintenance/job_scheduler.go @ v0.43.0",
	},
	// Procrastinate 3.9.0 (Python). The worker fetches with SELECT ... FROM
	// procrastinate_fetch_job_v2($1::varchar[], $2) and defers with procrastinate_defer_jobs_v1
	// (procrastinate/sql/queries.sql); both work inside plpgsql functions on procrastinate_jobs
	// (procrastinate/sql/schema.sql). The function names of 2.x (procrastinate_fetch_job,
	// procrastinate_defer_job) and of the intermediate _v1 versions are listed too.
	{
		Name:          "procrastinate",
		Library:       "Procrastinate",
		Tables:        []string{"procrastinate_jobs"},
		PollFunctions: []string{"procrastinate_fetch_job", "procrastinate_fetch_job_v1", "procrastinate_fetch_job_v2"},
		EnqueueFunctions: []string{
			"procrastinate_defer_job", "procrastinate_defer_job_v1", "procrastinate_defer_jobs_v1",
			"procrastinate_defer_periodic_job", "procrastinate_defer_periodic_job_v1", "procrastinate_defer_periodic_job_v2",
		},
		Fix: "Keep listen_notify on (the default; --listen-notify) so workers wake on NOTIFY, and raise fetch_job_polling_interval " +
			"(--fetch-job-polling-interval, default 5 s; the worker's timeout in 2.x); run fewer worker processes per queue.",
		Source: "github.com/procrastinate-org/procrastinate procrastinate/sql/queries.sql, procrastinate/sql/schema.sql, procrastinate/worker.py @ 3.9.0",
	},
	// Hangfire.PostgreSql 1.21.1 (.NET). Each worker dequeues with UPDATE "hangfire"."jobqueue" SET
	// "fetchedat" = NOW() WHERE "id" = (SELECT "id" FROM "hangfire"."jobqueue" ... FOR UPDATE SKIP
	// LOCKED LIMIT 1) RETURNING ... (src/Hangfire.PostgreSql/PostgreSqlJobQueue.cs,
	// Dequeue_Transaction) and enqueues with INSERT INTO "hangfire"."jobqueue" (Enqueue). Only
	// jobqueue is the queue; the job, state and set tables are Hangfire's storage.
	{
		Name:    "hangfire",
		Library: "Hangfire.PostgreSql",
		Schema:  "hangfire",
		Tables:  []string{"jobqueue"},
		Fix: "Raise PostgreSqlStorageOptions.QueuePollInterval (default 15 s, minimum 50 ms): each of the server's WorkerCount workers " +
			"polls on its own. Turn on EnableLongPolling (default false) to LISTEN on new_job, and lower WorkerCount or the number " +
			"of servers per queue.",
		Source: "github.com/hangfire-postgres/Hangfire.PostgreSql src/Hangfire.PostgreSql/PostgreSqlJobQueue.cs, src/Hangfire.PostgreSql/PostgreSqlStorageOptions.cs @ 1.21.1",
	},
	// Django-Q 1.3.9 ORM broker (Python; the version Debian ships). The cluster's pusher dequeues
	// with a Django ORM SELECT ... FROM "django_q_ormq" WHERE key = ... AND lock < ... LIMIT <bulk>
	// and claims with an UPDATE per task; enqueue is an INSERT into django_q_ormq
	// (django_q/brokers/orm.py). django-q2 v1.11.0 sends the same statements.
	{
		Name:       "django_q",
		Library:    "Django-Q (ORM broker)",
		Tables:     []string{"django_q_ormq"},
		PlainPolls: true,
		Fix: "Raise the Q_CLUSTER poll setting (default 0.2 s): the ORM broker sleeps poll after every empty dequeue. " +
			"Django-Q has no LISTEN/NOTIFY; each cluster polls on its own, so run fewer clusters against one queue (the same holds for django-q2).",
		Source: "github.com/Koed00/django-q django_q/brokers/orm.py, django_q/conf.py @ v1.3.9; github.com/django-q2/django-q2 django_q/brokers/orm.py @ v1.11.0",
	},
}
