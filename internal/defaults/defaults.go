// Package defaults holds the values rundock uses when an operator leaves an option out, once
// for the service spec, the announcer, rundock upstreams and the documentation.
package defaults

// Defaults shared by more than one command.
const (
	// Domain is the DNS domain services are announced under.
	Domain = "s.prod.example.com"
	// EtcdEndpoint is the etcd member the announcer and rundock upstreams talk to.
	EtcdEndpoint = "http://127.0.0.1:2379"
	// Prefix is the etcd path CoreDNS's etcd plugin reads (one segment).
	Prefix = "/skydns"
	// TTL is the lease of a record in seconds: how long it outlives a killed announcer.
	TTL = 30
	// MinTTL is the shortest lease etcd grants reliably.
	MinTTL = 5
	// SvDir holds the service trees (Debian's runit layout).
	SvDir = "/etc/sv"
	// ServiceDir is the directory runsvdir watches.
	ServiceDir = "/etc/service"
	// LogDir holds the svlogd directories of the services.
	LogDir = "/var/log/rundock"
)

// BinDir is where the rendered scripts find rundock and announcer. A variable, not a
// constant, so a distribution package sets its own at link time (make deb:
// -X github.com/rundock/rundock/internal/defaults.BinDir=/usr/bin).
var BinDir = "/usr/local/bin"
