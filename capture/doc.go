// Package capture reads packet captures for `pgpollwatch analyze capture.pcap` (issue 17):
// classic pcap files, and the link, IP and TCP headers of each packet, down to the TCP
// segment whose payload a PostgreSQL conversation's reassembly takes.
//
// Everything is parsed by hand, without cgo or a dependency, because a capture of a storm is
// millions of packets: a Reader reuses one buffer for the packet it returns, and Decode fills a
// Segment whose addresses are values and whose payload aliases the packet, allocating nothing.
//
// Not here yet: pcapng, TCP reassembly, and decoding the PostgreSQL messages of a conversation
// (which internal/pgwire's readers will do).
package capture
