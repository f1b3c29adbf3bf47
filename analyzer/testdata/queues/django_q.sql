-- Django-Q 1.3.9 (github.com/Koed00/django-q, the version Debian ships), ORM broker
-- (Q_CLUSTER = {"orm": "default"}), cluster name "default", bulk 1, retry 60. Rendered by hand
-- from the Django ORM querysets for the PostgreSQL backend with psycopg2, which interpolates
-- parameters client-side, so values arrive as literals (example values below; the lock
-- times are now - retry). django-q2 v1.11.0 (github.com/django-q2/django-q2) sends the same
-- shapes from django_q/brokers/orm.py, except that enqueue stores lock = now().

-- name: dequeue (the cluster's pusher loop; when empty it sleeps poll = 0.2 s and asks again)
-- source: github.com/Koed00/django-q django_q/brokers/orm.py (ORM.dequeue) @ v1.3.9
-- rendered from: django_q/brokers/orm.py:63-67 (filter(key=..., lock__lt=...)[0:Conf.BULK]; Django sorts filter kwargs)
-- expect: poll
SELECT "django_q_ormq"."id", "django_q_ormq"."key", "django_q_ormq"."payload", "django_q_ormq"."lock" FROM "django_q_ormq" WHERE ("django_q_ormq"."key" = 'default' AND "django_q_ormq"."lock" < '2026-08-01T11:59:00.123456+00:00'::timestamptz) LIMIT 1;

-- name: claim a dequeued task (runs only for a task the SELECT returned; no RETURNING)
-- source: github.com/Koed00/django-q django_q/brokers/orm.py (ORM.dequeue) @ v1.3.9
-- rendered from: django_q/brokers/orm.py:71-74
-- expect: none
UPDATE "django_q_ormq" SET "lock" = '2026-08-01T12:00:00.123456+00:00'::timestamptz WHERE ("django_q_ormq"."id" = 42 AND "django_q_ormq"."lock" = '2026-08-01T11:58:00.000001+00:00'::timestamptz);

-- name: enqueue (async_task -> broker.enqueue -> OrmQ.objects.create)
-- source: github.com/Koed00/django-q django_q/brokers/orm.py (ORM.enqueue) @ v1.3.9
-- rendered from: django_q/brokers/orm.py:57-61
-- expect: enqueue
INSERT INTO "django_q_ormq" ("key", "payload", "lock") VALUES ('default', 'gASVnAAAAAAAAAB9lCiMAmlklIwg...:1s5Xb2:signature', '2026-08-01T11:59:00.123456+00:00'::timestamptz) RETURNING "django_q_ormq"."id";

-- name: acknowledge / delete a finished task
-- source: github.com/Koed00/django-q django_q/brokers/orm.py (ORM.delete) @ v1.3.9
-- rendered from: django_q/brokers/orm.py:84-85 (fast delete of a single-table queryset)
-- expect: none
DELETE FROM "django_q_ormq" WHERE "django_q_ormq"."id" = 42;

-- name: queue size (qinfo / monitor / admin) -- a count, not a poll for work
-- source: github.com/Koed00/django-q django_q/brokers/orm.py (ORM.queue_size) @ v1.3.9
-- rendered from: django_q/brokers/orm.py:31-36
-- expect: none
SELECT COUNT(*) AS "__count" FROM "django_q_ormq" WHERE ("django_q_ormq"."key" = 'default' AND "django_q_ormq"."lock" <= '2026-08-01T11:59:00.123456+00:00'::timestamptz);
