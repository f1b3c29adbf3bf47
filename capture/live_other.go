//go:build !linux

package capture

import (
	"fmt"
	"io"
	"runtime"
)

// Live would capture from a network interface: only on Linux (live_linux.go).
type Live struct{}

// OpenLive says that live capture needs Linux, and how to capture here instead.
func OpenLive(iface string, ports []uint16, snapLen int) (*Live, error) {
	return nil, fmt.Errorf("capture: live capture needs Linux, not %s: capture with "+
		"`tcpdump -i %s -w pg.pcap 'tcp port 5432'` and read the file with `pgpollwatch analyze pg.pcap`",
		runtime.GOOS, iface)
}

// Link is never called: OpenLive returns no Live.
func (*Live) Link() LinkType { return LinkRaw }

// Next is never called: OpenLive returns no Live.
func (*Live) Next() (Packet, error) { return Packet{}, io.EOF }

// Stats is never called: OpenLive returns no Live.
func (*Live) Stats() (received, dropped uint64) { return 0, 0 }

// Close is never called: OpenLive returns no Live.
func (*Live) Close() error { return nil }
