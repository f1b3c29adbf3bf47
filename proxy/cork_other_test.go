//go:build !linux

package proxy

import "syscall"

// setCork does nothing here: TCP_CORK is Linux's, as is the raw path whose end-of-stream
// watch sendWithFIN tests.
func setCork(syscall.RawConn, int) error { return nil }
