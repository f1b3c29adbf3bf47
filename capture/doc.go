// Package capture reads packet captures for `pgpollwatch analyze capture.pcap` (issue 17):
// classic pcap files, and the link, IP and TCP headers of each packet, down to the TCP
// segment whose payload a PostgreSQL conversation's reassembly takes.
//
// Everything is parsed by hand, without cgo or a dependency, because a capture of a storm is
// millions of packets: a Reader reuses one buffer for the packet it returns, and Decode fills a
// Segment whose addresses are values and whose payload aliases the packet, allocating nothing.
//
// One direction of a TCP connection is put back in order by a halfStream: retransmissions
// dropped, out-of-order segments held (bounded), and holes the capture lost given up as gaps,
// said to the reader so that it can resynchronise on a message boundary.
//
// Not here yet: pcapng, tracking conversations (both directions, which side is the client,
// idle ones dropped), and decoding their PostgreSQL messages into events (with
// internal/pgwire's readers).
package capture
