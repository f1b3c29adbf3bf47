// Package capture reads packet captures for `pgpollwatch analyze capture.pcap` (issue 17):
// classic pcap and pcapng files, gzipped or not, and the link, IP and TCP headers of each
// packet, down to the TCP segment whose payload a PostgreSQL conversation's reassembly takes.
//
// Open tells the format from the first bytes (Sniff, IsCapture: a capture from a server's log)
// because users hand over whatever tcpdump, Wireshark or a rotation script left: pcap in
// either byte order and time resolution, pcapng (several sections, interfaces of several link
// types, each packet carrying its own), and a gzip of either. Merge reads several files as one
// in time order (rotated files, or captures of several hosts); an error of one file (a
// truncated last file, typically) is returned once and the others go on.
//
// Everything is parsed by hand, without cgo or a capture library (gzip is klauspost/compress's,
// which the module has already), because a capture of a storm is millions of packets: a Reader
// or PcapngReader reuses one buffer for the packet it returns, Merge holds one pending packet a
// source, and Decode fills a Segment whose addresses are values and whose payload aliases the
// packet, allocating nothing.
//
// One direction of a TCP connection is put back in order by a halfStream: retransmissions
// dropped, out-of-order segments held (bounded), and holes the capture lost given up as gaps,
// said to the reader so that it can resynchronise on a message boundary.
//
// A framer cuts each direction into PostgreSQL messages (the client's untyped startup packets
// first), and after a gap resynchronises: the client side on two plausible message headers in
// a row, the server side at the next ReadyForQuery.
//
// A Tracker follows the conversations with a server port: both directions in order, cut into
// messages for a Sink, gaps and retransmissions counted, at most MaxConversations at once,
// idle ones closed.
//
// Events pairs a conversation's messages into the events the live proxy gives its observer
// (statements, binds, rows and their digest, status, errors, connection identity, timings
// from packet times); what a lossy capture cost is counted (EventStats), never guessed.
//
// Live captures from a network interface, for `pgpollwatch watch --interface`, on Linux alone:
// an AF_PACKET socket, without cgo or libpcap, whose classic BPF filter in the kernel passes
// only the TCP traffic of the ports watched (IPv4 and IPv6), cut at the snap length, and drops
// loopback's second copy of each packet. It needs CAP_NET_RAW. Close makes Next return io.EOF.
//
// A framer holds a message whole until it is complete, so a huge answer costs its size while
// it passes.
package capture
