package analyzer

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/proxy"
)

func TestParseTag(t *testing.T) {
	cases := []struct{ text, want string }{
		// sqlcommenter (its spec's example, values URL-encoded and quoted).
		{`SELECT * FROM FOO /*action='%2Fparam*d',controller='index',framework='spring',traceparent='00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01',tracestate='congo%3Dt61rcWkgMzE%2Crojo%3D00f067aa0ba902b7'*/`,
			"framework=spring,controller=index,action=/param*d"},
		// marginalia, appended and prepended.
		{`SELECT "delayed_jobs".* FROM "delayed_jobs" /*application:MyApp,job:PollJob*/`, "application=MyApp,job=PollJob"},
		{`/*application:MyApp,controller:jobs,action:show*/ SELECT 1`, "application=MyApp,controller=jobs,action=show"},
		{"SELECT 1 /*application:App,line:/app/models/job.rb:12:in `poll'*/;", "application=App,line=/app/models/job.rb:12:in `poll'"},
		// Rails' query log tags (sqlcommenter format).
		{`SELECT 1 /*application='Blog',controller='articles',action='index'*/`, "application=Blog,controller=articles,action=index"},
		// Ids in a route are masked: they name a request, not code.
		{`SELECT 1 /*route='/tasks/3f2504e0-4f89-11d3-9a0c-0305e82c3301/status',framework='django'*/`, "framework=django,route=/tasks/?/status"},
		{`SELECT 1 /*route='/jobs/123456'*/`, "route=/jobs/?"},
		// Nothing to keep.
		{`SELECT 1 /*traceparent='00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01'*/`, ""},
		{`SELECT 1 /* a plain comment */`, ""},
		{`SELECT '/*x*/' AS a`, ""},
		{`SELECT 1`, ""},
		// A comment-like string inside the statement is not the statement's comment.
		{`SELECT '*/' /*job:A*/`, "job=A"},
	}
	for _, c := range cases {
		got := string(parseTag(nil, commentOf([]byte(c.text))))
		if got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.text, got, c.want)
		}
	}
}

func TestParseTagBoundsValues(t *testing.T) {
	long := strings.Repeat("x", 500)
	got := string(parseTag(nil, []byte("controller='"+long+"',action='"+long+"'")))
	if len(got) > maxTagLen || !strings.HasPrefix(got, "controller="+strings.Repeat("x", maxTagValue)+",") {
		t.Errorf("tag of %d bytes: %.100q", len(got), got)
	}
	if got := string(parseTag(nil, []byte("job='a,b=c\n'"))); got != "job=a_b_c_" {
		t.Errorf("separators in a value: %q", got)
	}
	// A code location keeps its end: the file and line, not the start of a long path.
	path := "/usr/share/rubygems-integration/all/gems/activesupport-6.1.7/lib/active_support/app/models/job.rb:12:in `poll'"
	if got := string(parseTag(nil, []byte("line:"+path))); got != "line="+path[len(path)-maxTagValue:] {
		t.Errorf("line: %q", got)
	}
}

// Tags are counted per statement and per poll, capped with "other", and the keys' and
// pollers' top tags reach their storms and findings.
func TestTagsAttributePolls(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := New(Config{Now: func() time.Time { return now }, Epoch: now, StormWindow: 2 * time.Second})
	info := &proxy.ConnInfo{ClientAddr: "10.0.0.1:5000", User: "u", Database: "d", ApplicationName: "app"}
	a.ConnOpened(info)
	a.ConnAuthenticated(info, true, "")
	for i := 0; i < 200; i++ { // 50 polls a second for 4 s, with a new traceparent each
		now = now.Add(20 * time.Millisecond)
		tag := "PollJob"
		if i%4 == 0 {
			tag = "OtherJob"
		}
		q := fmt.Sprintf("%s'k1' /*application:App,job:%s,traceparent:00-%032x-01*/", celeryLookup, tag, i)
		a.Statements(info, []proxy.Event{simpleEvent(q, now)})
		a.Statements(info, []proxy.Event{simpleEvent(fmt.Sprintf("SELECT 1 /*controller:c%d*/", i%100), now)})
		if i%50 == 49 {
			a.Tick(now)
		}
	}
	s := a.Snapshot()
	byTag := map[string]TagStat{}
	for _, ts := range s.Tags {
		byTag[ts.Tag] = ts
	}
	if got := byTag["application=App,job=PollJob"]; got.Queries != 150 || got.Polls != 150 {
		t.Errorf("PollJob: %+v, want 150 queries, 150 polls", got)
	}
	if got := byTag["application=App,job=OtherJob"]; got.Queries != 50 || got.Polls != 50 {
		t.Errorf("OtherJob: %+v", got)
	}
	// 100 controllers: 62 fit beside the two jobs, the other 38 count as "other".
	if len(s.Tags) != maxTags+1 || byTag["other"].Queries != 38*2 || byTag["other"].Polls != 0 {
		t.Errorf("%d tags, other %+v", len(s.Tags), byTag["other"])
	}
	for _, ts := range s.Tags {
		if strings.Contains(ts.Tag, "traceparent") || strings.Contains(ts.Tag, "k1") {
			t.Errorf("tag %q holds a request's id or a literal", ts.Tag)
		}
	}
	if len(s.Keys) != 1 || len(s.Keys[0].Tags) != 2 || s.Keys[0].Tags[0].Tag != "application=App,job=PollJob" || s.Keys[0].Tags[0].Count != 150 {
		t.Fatalf("key tags: %+v", s.Keys)
	}
	var storm *Storm
	for i := range s.Storms {
		if s.Storms[i].Kind == "key" {
			storm = &s.Storms[i]
		}
	}
	if storm == nil || len(storm.Tags) == 0 || storm.Tags[0].Tag != "application=App,job=PollJob" {
		t.Fatalf("storm tags: %+v", s.Storms)
	}
	found := false
	for _, f := range s.Findings {
		for _, e := range f.Evidence {
			if strings.HasPrefix(e, "polled by application=App,job=PollJob (75%), application=App,job=OtherJob (25%)") {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no finding says who polled: %+v", s.Findings)
	}
}
