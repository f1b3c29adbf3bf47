package analyzer

// QueuePresets are the job queues recognised by default. (Placeholder until the presets read
// from each library's source land.)
var QueuePresets = []Queue{
	{Name: "river", Library: "River", Tables: []string{"river_job"}},
	{Name: "pgboss", Library: "pg-boss", Schema: "pgboss", Tables: []string{"job"}},
}
