package analyzer

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
)

// TestSetReuseStats: the reuse counters reach snapshots only once a source is set, are asked
// again for each snapshot, and leave with a nil source; a snapshot without them marshals as
// before (no "reuse" field).
func TestSetReuseStats(t *testing.T) {
	a := New(Config{})
	s := a.Snapshot()
	if s.Reuse != nil {
		t.Fatalf("reuse %+v without SetReuseStats", s.Reuse)
	}
	if b, _ := json.Marshal(s); strings.Contains(string(b), `"reuse"`) {
		t.Fatal("a snapshot without reuse has a reuse field")
	}
	var reused atomic.Int64
	a.SetReuseStats(func() ReuseStats { return ReuseStats{Reused: reused.Add(1), Kept: 43, Discarded: 2, Idle: 3} })
	s = a.Snapshot()
	if r := s.Reuse; r == nil || r.Reused != 1 || r.Kept != 43 || r.Discarded != 2 || r.Idle != 3 {
		t.Fatalf("reuse %+v", r)
	}
	if b, _ := json.Marshal(s); !strings.Contains(string(b), `"reuse":{"reused":1,"kept":43,"discarded":2,"idle":3}`) {
		t.Fatalf("snapshot JSON %s", b)
	}
	if r := a.Snapshot().Reuse; r.Reused != 2 {
		t.Fatalf("second snapshot reused %d, want 2: each snapshot asks again", r.Reused)
	}
	a.SetReuseStats(nil)
	if a.Snapshot().Reuse != nil {
		t.Fatal("SetReuseStats(nil) left the stats in")
	}
}
