package sqlscan

import "testing"

// celeryQuery is the polling lookup Celery's database result backend issues
// (via SQLAlchemy) for every AsyncResult.get() / .state access.
var celeryQuery = []byte(`SELECT celery_taskmeta.id AS celery_taskmeta_id, celery_taskmeta.task_id AS celery_taskmeta_task_id, celery_taskmeta.status AS celery_taskmeta_status, celery_taskmeta.result AS celery_taskmeta_result, celery_taskmeta.date_done AS celery_taskmeta_date_done, celery_taskmeta.traceback AS celery_taskmeta_traceback 
FROM celery_taskmeta 
WHERE celery_taskmeta.task_id = 'b5517ae9-59ef-46e7-808b-1da17dab9721'`)

func BenchmarkNormalizeCelery(b *testing.B) {
	dst := make([]byte, 0, 1024)
	consts := make([]Const, 0, 16)
	b.ReportAllocs()
	b.SetBytes(int64(len(celeryQuery)))
	for b.Loop() {
		r := Normalize(dst[:0], consts[:0], celeryQuery)
		dst, consts = r.Normalized, r.Consts
	}
}

func BenchmarkFingerprintCelery(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(celeryQuery)))
	var sink uint64
	for b.Loop() {
		sink += Fingerprint(celeryQuery)
	}
	_ = sink
}

func BenchmarkScannerCelery(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(celeryQuery)))
	var s Scanner
	n := 0
	for b.Loop() {
		s.Reset(celeryQuery)
		for t := s.Next(); t.Kind != EOF; t = s.Next() {
			n++
		}
	}
	_ = n
}

var djangoQuery = []byte(`SELECT "django_celery_results_taskresult"."id", "django_celery_results_taskresult"."task_id", "django_celery_results_taskresult"."periodic_task_name", "django_celery_results_taskresult"."task_name", "django_celery_results_taskresult"."task_args", "django_celery_results_taskresult"."task_kwargs", "django_celery_results_taskresult"."status", "django_celery_results_taskresult"."worker", "django_celery_results_taskresult"."content_type", "django_celery_results_taskresult"."content_encoding", "django_celery_results_taskresult"."result", "django_celery_results_taskresult"."date_created", "django_celery_results_taskresult"."date_done", "django_celery_results_taskresult"."traceback", "django_celery_results_taskresult"."meta" FROM "django_celery_results_taskresult" WHERE "django_celery_results_taskresult"."task_id" = 'b5517ae9-59ef-46e7-808b-1da17dab9721' LIMIT 21`)

func BenchmarkNormalizeDjango(b *testing.B) {
	dst := make([]byte, 0, 2048)
	consts := make([]Const, 0, 16)
	b.ReportAllocs()
	b.SetBytes(int64(len(djangoQuery)))
	for b.Loop() {
		r := Normalize(dst[:0], consts[:0], djangoQuery)
		dst, consts = r.Normalized, r.Consts
	}
}

var inListQuery = []byte(`SELECT id, status FROM jobs WHERE id IN (101, 102, 103, 104, 105, 106, 107, 108) AND state <> 'done' ORDER BY 1 LIMIT 50`)

func BenchmarkNormalizeInList(b *testing.B) {
	dst := make([]byte, 0, 1024)
	consts := make([]Const, 0, 16)
	b.ReportAllocs()
	b.SetBytes(int64(len(inListQuery)))
	for b.Loop() {
		r := Normalize(dst[:0], consts[:0], inListQuery)
		dst, consts = r.Normalized, r.Consts
	}
}
