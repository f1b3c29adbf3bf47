package coalesce_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/coalesce"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// TestRefillsAfterExpiryDoNotInflateTheByteCount: a key refilled once its entry has expired
// replaces that entry, and the byte count, which --coalesce-max-bytes is enforced against, must
// count the key once. The LRU reports an expired entry as absent but keeps it until its own
// sweep, and a refill in between replaced it in place without telling the cache its bytes were
// gone: in a 30-minute soak the count per cached answer grew from 20.6 KB to 140.8 KB, and past
// the limit every fill would have emptied the cache. Needs no server: the cache is driven
// directly.
func TestRefillsAfterExpiryDoNotInflateTheByteCount(t *testing.T) {
	const ttl = 20 * time.Millisecond
	c := coalesce.New(coalesce.Config{TTL: ttl, Enabled: true})
	touch := proxy.Touch{N: 1, Slots: [proxy.MaxTouchKeys]uint32{7}}
	answer := &proxy.Answer{Rows: make([]byte, 1000), Complete: []byte("SELECT 1")}
	fills := 0
	for i := range 300 {
		key := []byte(fmt.Sprintf("SELECT status FROM celery_taskmeta WHERE task_id = 'k%d'", i%3))
		if _, f := c.Get(key, touch, time.Now()); f != nil {
			f.Done(answer)
			fills++
		}
		time.Sleep(rand.N(ttl / 2))
	}
	c.SetEnabled(false) // drops every entry
	if st := c.Stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("after %d fills of 3 keys, emptied: %d entries holding %d bytes, want none", fills, st.Entries, st.Bytes)
	}
}
