//go:build linux

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Live captures the TCP traffic of some ports on a network interface, through an AF_PACKET
// socket: for `pgpollwatch watch --interface`. A filter in the kernel passes only that traffic,
// so the process sees nothing else of a busy host, and cuts each packet at the snap length.
//
// On an Ethernet or loopback interface (Linux frames loopback as Ethernet) packets come with
// their link header, LinkEthernet; on any other (tun, WireGuard, PPP, tunnels) and on "any",
// without, from the IP header on: LinkRaw. On loopback the kernel shows each packet twice, as
// it leaves and as it arrives: the filter keeps only the arrival, as libpcap does. On "any" a
// packet that crosses several interfaces (a bridge and its veths) still comes once from each.
//
// One goroutine calls Next; Stats and Close may be called from any other.
type Live struct {
	iface  string
	link   LinkType
	file   *os.File
	conn   syscall.RawConn
	recvFn func(fd uintptr) bool // l.recv, made once: a method value per Next would allocate
	closed atomic.Bool

	// One recvmsg per packet, into buffers reused from packet to packet.
	buf   []byte
	oob   [16]uint64 // control messages (time stamp, auxiliary data), aligned for their headers
	iov   unix.Iovec
	msg   unix.Msghdr
	n     int
	errno syscall.Errno

	mu                sync.Mutex // the counters below: the kernel resets its own on each read
	received, dropped uint64
}

var _ Source = (*Live)(nil)

const (
	defaultSnapLen = 262144 // tcpdump's: a loopback packet may be 64 KiB and more (GSO)
	maxPorts       = 100    // the filter's jumps are at most 255 instructions long
	rcvBuf         = 8 << 20
)

// OpenLive starts capturing the TCP traffic to or from ports on the interface named iface,
// or on all of them with "any". Each packet is cut to snapLen bytes: 262144 when snapLen is 0
// or less, and at most 1 MiB.
//
// It needs CAP_NET_RAW; without it, the error says how to get it.
func OpenLive(iface string, ports []uint16, snapLen int) (*Live, error) {
	if len(ports) == 0 {
		return nil, errors.New("capture: no port to capture")
	}
	if len(ports) > maxPorts {
		return nil, fmt.Errorf("capture: %d ports to capture, at most %d", len(ports), maxPorts)
	}
	if snapLen <= 0 {
		snapLen = defaultSnapLen
	}
	snapLen = min(snapLen, maxPacket)
	ifindex, loIndex := 0, -1
	sockType, link := unix.SOCK_DGRAM, LinkRaw // "any": cooked, from the IP header
	if iface == "any" {
		ifs, _ := net.Interfaces()
		for _, ifi := range ifs {
			if ifi.Flags&net.FlagLoopback != 0 {
				loIndex = ifi.Index
				break
			}
		}
	} else {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return nil, unknownInterface(iface)
		}
		if ifi.Flags&net.FlagUp == 0 {
			return nil, fmt.Errorf("capture: interface %s is down", iface)
		}
		ifindex = ifi.Index
		if ifi.Flags&net.FlagLoopback != 0 {
			loIndex = ifi.Index
		}
		hwType, err := hardwareType(iface)
		if err != nil {
			return nil, fmt.Errorf("capture: the link type of %s: %w", iface, err)
		}
		if hwType == unix.ARPHRD_ETHER || hwType == unix.ARPHRD_LOOPBACK {
			sockType, link = unix.SOCK_RAW, LinkEthernet
		}
	}
	prog, err := filterProgram(ports, link == LinkRaw, loIndex, snapLen)
	if err != nil {
		return nil, err
	}

	// Protocol 0: the socket receives nothing until it is bound with a protocol, after the
	// filter is attached.
	fd, err := unix.Socket(unix.AF_PACKET, sockType|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, permissionError(iface, err)
		}
		return nil, fmt.Errorf("capture: a packet socket for %s: %w", iface, err)
	}
	if err := setup(fd, prog, ifindex); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("capture on %s: %w", iface, err)
	}
	l := &Live{iface: iface, link: link, file: os.NewFile(uintptr(fd), "packet:"+iface),
		buf: make([]byte, snapLen)}
	if l.conn, err = l.file.SyscallConn(); err != nil {
		l.file.Close()
		return nil, fmt.Errorf("capture on %s: %w", iface, err)
	}
	l.recvFn = l.recv
	l.iov.Base = &l.buf[0]
	l.iov.SetLen(len(l.buf))
	l.msg.Iov = &l.iov
	l.msg.SetIovlen(1)
	l.msg.Control = (*byte)(unsafe.Pointer(&l.oob[0]))
	return l, nil
}

// setup attaches the filter to a fresh packet socket, asks for time stamps and original
// lengths, and binds it to ifindex (0: all interfaces).
func setup(fd int, prog []unix.SockFilter, ifindex int) error {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("attaching the filter: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("asking for time stamps: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		return fmt.Errorf("asking for packet lengths: %w", err)
	}
	// A larger queue than the default 208 KiB rides out a burst while the reader is busy;
	// beyond net.core.rmem_max only with CAP_NET_ADMIN, else as large as allowed.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
	}
	// Drop whatever came before the filter. A socket of protocol 0 takes nothing, so this
	// should find nothing; it costs one call and keeps unfiltered packets out if it ever does.
	var b [1]byte
	for {
		if _, _, err := unix.Recvfrom(fd, b[:], unix.MSG_DONTWAIT|unix.MSG_TRUNC); err != nil {
			break
		}
	}
	sa := unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, &sa); err != nil {
		return fmt.Errorf("binding: %w", err)
	}
	return nil
}

// Link is the link type of the packets: LinkEthernet or LinkRaw.
func (l *Live) Link() LinkType { return l.link }

// Next waits for the next packet. Its Data is valid until the next call; Time is the kernel's
// time stamp of the packet. After Close, Next returns io.EOF, as a file does at its end, also
// when Close was called while it waited. An interface going down is an error; calling Next
// again waits for it to come back up.
func (l *Live) Next() (Packet, error) {
	for {
		err := l.conn.Read(l.recvFn)
		if l.closed.Load() {
			return Packet{}, io.EOF
		}
		if err != nil {
			return Packet{}, fmt.Errorf("capture on %s: %w", l.iface, err)
		}
		if l.errno == unix.EINTR {
			continue
		}
		if l.errno != 0 {
			return Packet{}, fmt.Errorf("capture on %s: %w", l.iface, l.errno)
		}
		p := Packet{Data: l.buf[:l.n], OrigLen: l.n, Link: l.link}
		l.control(&p)
		if p.Time.IsZero() {
			p.Time = time.Now().UTC()
		}
		return p, nil
	}
}

// recv reads one packet if there is one; false asks the poller to wait for one.
func (l *Live) recv(fd uintptr) bool {
	l.msg.SetControllen(int(unsafe.Sizeof(l.oob)))
	l.msg.Flags = 0
	n, _, errno := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&l.msg)), 0)
	if errno == unix.EAGAIN {
		return false
	}
	l.n, l.errno = int(n), errno
	return true
}

// control reads the time stamp and the original length from the control messages of the
// packet just read.
func (l *Live) control(p *Packet) {
	oob := unsafe.Slice((*byte)(unsafe.Pointer(&l.oob[0])), unsafe.Sizeof(l.oob))
	oob = oob[:min(int(l.msg.Controllen), len(oob))]
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if int(h.Len) < unix.SizeofCmsghdr || int(h.Len) > len(oob) {
			return
		}
		data := oob[unix.CmsgLen(0):h.Len]
		switch {
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS &&
			len(data) >= int(unsafe.Sizeof(unix.Timespec{})):
			ts := (*unix.Timespec)(unsafe.Pointer(&data[0]))
			p.Time = time.Unix(int64(ts.Sec), int64(ts.Nsec)).UTC()
		case h.Level == unix.SOL_PACKET && h.Type == unix.PACKET_AUXDATA &&
			len(data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})):
			p.OrigLen = int((*unix.TpacketAuxdata)(unsafe.Pointer(&data[0])).Len)
		}
		oob = oob[min(unix.CmsgSpace(len(data)), len(oob)):]
	}
}

// Stats returns how many packets passed the filter and were queued for Next (read or not
// yet), and how many the kernel dropped because the queue was full, since OpenLive.
func (l *Live) Stats() (received, dropped uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.readStats()
	return l.received, l.dropped
}

// readStats adds the kernel's counters, which reading resets, to l's; l.mu is held.
func (l *Live) readStats() {
	var st *unix.TpacketStats
	var err error
	cerr := l.conn.Control(func(fd uintptr) {
		st, err = unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
	})
	if cerr != nil || err != nil {
		return // closed: the counters were read by Close
	}
	// tp_packets counts the dropped packets too.
	l.received += uint64(st.Packets - min(st.Drops, st.Packets))
	l.dropped += uint64(st.Drops)
}

// Close stops the capture; a Next waiting returns io.EOF. Stats still answers afterwards.
func (l *Live) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Swap(true) {
		return nil
	}
	l.readStats()
	return l.file.Close()
}

// filterProgram is the classic BPF program for "tcp and (port P1 or port P2 ...)" over IPv4
// and IPv6, as tcpdump compiles it (IPv4 fragments after the first refused: there are no ports
// in them; IPv6 extension headers not followed), which accepts snapLen bytes of a packet.
// cooked says the packet starts at its IP header (SOCK_DGRAM), its protocol in the socket
// buffer's, else at an Ethernet header. loIndex is the loopback interface's index, whose
// outgoing copies of packets are refused, or -1.
func filterProgram(ports []uint16, cooked bool, loIndex, snapLen int) ([]unix.SockFilter, error) {
	var p bpfProgram
	if loIndex >= 0 {
		p.add(bpf.LoadExtension{Num: bpf.ExtType}, "", "")
		p.add(bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OUTGOING}, "", "ip")
		p.add(bpf.LoadExtension{Num: bpf.ExtInterfaceIndex}, "", "")
		p.add(bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(loIndex)}, "reject", "")
	}
	nh := uint32(14) // the IP header's offset
	p.label("ip")
	if cooked {
		nh = 0
		p.add(bpf.LoadExtension{Num: bpf.ExtProto}, "", "")
	} else {
		p.add(bpf.LoadAbsolute{Off: 12, Size: 2}, "", "")
	}
	p.add(bpf.JumpIf{Cond: bpf.JumpEqual, Val: etherIPv4}, "ipv4", "")
	p.add(bpf.JumpIf{Cond: bpf.JumpEqual, Val: etherIPv6}, "", "reject")
	p.add(bpf.LoadAbsolute{Off: nh + 6, Size: 1}, "", "") // next header
	p.add(bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoTCP}, "", "reject")
	p.add(bpf.LoadConstant{Dst: bpf.RegX, Val: 40}, "", "")
	p.add(bpf.Jump{}, "ports", "")
	p.label("ipv4")
	p.add(bpf.LoadAbsolute{Off: nh + 9, Size: 1}, "", "") // protocol
	p.add(bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoTCP}, "", "reject")
	p.add(bpf.LoadAbsolute{Off: nh + 6, Size: 2}, "", "") // fragment offset
	p.add(bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff}, "reject", "")
	p.add(bpf.LoadMemShift{Off: nh}, "", "") // X = the IPv4 header's length
	p.label("ports")
	for _, off := range []uint32{nh, nh + 2} { // source port, destination port
		p.add(bpf.LoadIndirect{Off: off, Size: 2}, "", "")
		for _, port := range ports {
			p.add(bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(port)}, "accept", "")
		}
	}
	p.add(bpf.Jump{}, "reject", "")
	p.label("accept")
	p.add(bpf.RetConstant{Val: uint32(snapLen)}, "", "")
	p.label("reject")
	p.add(bpf.RetConstant{Val: 0}, "", "")
	return p.assemble()
}

// bpfProgram assembles a classic BPF program whose jumps go to labels.
type bpfProgram struct {
	ins    []bpf.Instruction
	jt, jf []string // where each jump goes when true (or always), when false; "" is next
	labels map[string]int
}

func (p *bpfProgram) add(in bpf.Instruction, jt, jf string) {
	p.ins, p.jt, p.jf = append(p.ins, in), append(p.jt, jt), append(p.jf, jf)
}

func (p *bpfProgram) label(name string) {
	if p.labels == nil {
		p.labels = map[string]int{}
	}
	p.labels[name] = len(p.ins)
}

func (p *bpfProgram) assemble() ([]unix.SockFilter, error) {
	skip := func(i int, label string) (uint32, error) {
		if label == "" {
			return 0, nil
		}
		to, ok := p.labels[label]
		if !ok || to <= i || to-i-1 > 255 {
			return 0, fmt.Errorf("capture: filter: a jump from %d to %q", i, label)
		}
		return uint32(to - i - 1), nil
	}
	for i, in := range p.ins {
		t, err1 := skip(i, p.jt[i])
		f, err2 := skip(i, p.jf[i])
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		switch in := in.(type) {
		case bpf.JumpIf:
			in.SkipTrue, in.SkipFalse = uint8(t), uint8(f)
			p.ins[i] = in
		case bpf.Jump:
			in.Skip = t
			p.ins[i] = in
		}
	}
	raw, err := bpf.Assemble(p.ins)
	if err != nil {
		return nil, fmt.Errorf("capture: filter: %w", err)
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return prog, nil
}

// hardwareType is the ARPHRD_ type of the interface: its link header.
func hardwareType(iface string) (uint16, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(iface)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return 0, err
	}
	return ifr.Uint16(), nil // ifr_hwaddr.sa_family
}

func htons(v uint16) uint16 {
	return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v))
}

// permissionError says what capturing on iface needs, and how to grant it to this program.
func permissionError(iface string, err error) error {
	exe, exeErr := os.Executable()
	if exeErr != nil {
		exe = "/path/to/pgpollwatch"
	}
	return fmt.Errorf("capturing on %s needs CAP_NET_RAW: run as root, or grant it once with "+
		"`sudo setcap cap_net_raw+ep %s` (%w)", iface, exe, err)
}

// unknownInterface names the interfaces there are.
func unknownInterface(iface string) error {
	names := []string{"any"}
	ifs, _ := net.Interfaces()
	for _, ifi := range ifs {
		names = append(names, ifi.Name)
	}
	return fmt.Errorf("capture: there is no interface %q; there are: %s", iface, strings.Join(names, ", "))
}
