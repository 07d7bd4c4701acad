package testenv

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// NetNS is a network namespace that stands for another host with IPv6 only: one veth link
// to this host, Host (this side) and Addr (its side) in a ULA /64, a default route via
// Host, and no IPv4 address but loopback's. (Loopback keeps 127.0.0.1 as on a real
// IPv6-only host: without it Go's probe for IPv4-mapped sockets fails and a server on
// ":PORT" listens on 0.0.0.0 only, unreachable over IPv6.)
type NetNS struct {
	Name string
	Host string // this host's address on the link, e.g. fd00:6:1a2b::1
	Addr string // the namespace's address, e.g. fd00:6:1a2b::2
}

// StartIPv6Host creates the namespace (removed when the test ends). Its interface is
// eth0, so address discovery treats it as a host's own interface (veth* would be
// skipped as a container's).
func StartIPv6Host(t testing.TB) *NetNS {
	t.Helper()
	Need(t, "ip")
	id := fmt.Sprintf("%04x", time.Now().UnixNano()&0xffff)
	// Canonical spellings (fd00:6:1b6::1, not fd00:6:01b6::1), as CoreDNS answers them.
	n := &NetNS{Name: "rdtest6-" + id, Host: netip.MustParseAddr("fd00:6:" + id + "::1").String(),
		Addr: netip.MustParseAddr("fd00:6:" + id + "::2").String()}
	hostIf := "rd6-" + id
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", n.Name)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", hostIf).Run()
		exec.Command("ip", "netns", "del", n.Name).Run()
	})
	run("link", "add", hostIf, "type", "veth", "peer", "name", "rd6p-"+id)
	run("link", "set", "rd6p-"+id, "netns", n.Name, "name", "eth0")
	run("addr", "add", n.Host+"/64", "dev", hostIf, "nodad")
	run("link", "set", hostIf, "up")
	in := func(args ...string) { t.Helper(); run(append([]string{"-n", n.Name}, args...)...) }
	in("link", "set", "lo", "up")
	in("addr", "add", n.Addr+"/64", "dev", "eth0", "nodad")
	in("link", "set", "eth0", "up")
	in("-6", "route", "add", "default", "via", n.Host)
	return n
}

// Command returns cmd run inside the namespace.
func (n *NetNS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}
