package proxy

import (
	"context"
	"encoding/binary"
	"sync"
)

// cancelKeys maps the BackendKeyData the server gave each session to the upstream target that
// session is connected to. A CancelRequest is forwarded only when its key is one of these: a
// made-up key never reaches a server, let alone a random backend.
type cancelKeys struct {
	mu   sync.Mutex
	keys map[string]*target
}

func (c *cancelKeys) add(key []byte, t *target) {
	c.mu.Lock()
	if c.keys == nil {
		c.keys = make(map[string]*target)
	}
	c.keys[string(key)] = t
	c.mu.Unlock()
}

func (c *cancelKeys) remove(key []byte) {
	c.mu.Lock()
	delete(c.keys, string(key))
	c.mu.Unlock()
}

func (c *cancelKeys) lookup(key []byte) *target {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys[string(key)]
}

// sendCancel opens a connection to t and sends it a CancelRequest with key (process ID followed
// by the secret key, as in BackendKeyData), the way libpq does.
func sendCancel(ctx context.Context, t *target, key []byte) error {
	conn, err := t.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	msg := make([]byte, 8+len(key))
	binary.BigEndian.PutUint32(msg, uint32(len(msg)))
	binary.BigEndian.PutUint32(msg[4:], cancelRequestCode)
	copy(msg[8:], key)
	if _, err := conn.Write(msg); err != nil {
		return err
	}
	// The server closes the connection when done; waiting for that keeps the cancel ordered
	// before whatever the client does next.
	var b [1]byte
	_, _ = conn.Read(b[:])
	return nil
}
