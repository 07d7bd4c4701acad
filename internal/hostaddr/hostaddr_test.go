package hostaddr

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

func ips(s ...string) []net.IP {
	var out []net.IP
	for _, a := range s {
		out = append(out, net.ParseIP(a))
	}
	return out
}

var (
	lo      = Link{Index: 1, Name: "lo", Up: true, Loopback: true, Addrs: ips("127.0.0.1")}
	eth0Pub = Link{Index: 2, Name: "eth0", Up: true, Addrs: ips("192.0.2.2")}
	docker0 = Link{Index: 3, Name: "docker0", Up: true, Addrs: ips("172.17.0.1")}
	br      = Link{Index: 4, Name: "br-1a2b3c", Up: true, Addrs: ips("172.18.0.1")}
	veth    = Link{Index: 5, Name: "veth12ab", Up: true, Addrs: ips("10.9.9.9")}
	virbr   = Link{Index: 6, Name: "virbr0", Up: true, Addrs: ips("192.168.122.1")}
	cni     = Link{Index: 7, Name: "cni0", Up: true, Addrs: ips("10.88.0.1")}
	flannel = Link{Index: 8, Name: "flannel.1", Up: true, Addrs: ips("10.244.0.0")}
	eth1    = Link{Index: 9, Name: "eth1", Up: true, Addrs: ips("fe80::1", "10.0.0.5", "10.0.0.6")}
	eth1Dn  = Link{Index: 9, Name: "eth1", Up: false, Addrs: ips("10.0.0.5")}
	ens4    = Link{Index: 10, Name: "ens4", Up: true, Addrs: ips("169.254.3.3", "192.168.1.20")}
	eth0Prv = Link{Index: 2, Name: "eth0", Up: true, Addrs: ips("10.1.2.3")}
	noAddr  = Link{Index: 11, Name: "wg0", Up: true}
	v6only  = Link{Index: 12, Name: "eth2", Up: true, Addrs: ips("2001:db8::1")}
)

func TestHost_Private(t *testing.T) {
	tests := []struct {
		name    string
		host    Host
		iface   string
		want    string
		wantErr error
	}{
		{name: "this machine: only bridges are private, fall back to default route",
			host: Host{Links: []Link{lo, eth0Pub, docker0}, DefaultIndex: 2}, want: "192.0.2.2"},
		{name: "private on a second NIC beats the public default",
			host: Host{Links: []Link{lo, eth0Pub, docker0, eth1}, DefaultIndex: 2}, want: "10.0.0.5"},
		{name: "every container bridge and veth is skipped",
			host: Host{Links: []Link{lo, docker0, br, veth, virbr, cni, flannel, eth0Pub}, DefaultIndex: 2}, want: "192.0.2.2"},
		{name: "down link is skipped",
			host: Host{Links: []Link{lo, eth0Pub, eth1Dn}, DefaultIndex: 2}, want: "192.0.2.2"},
		{name: "link-local is skipped, 192.168 taken",
			host: Host{Links: []Link{lo, eth0Pub, ens4}, DefaultIndex: 2}, want: "192.168.1.20"},
		{name: "default route interface with a private address",
			host: Host{Links: []Link{lo, eth0Prv}, DefaultIndex: 2}, want: "10.1.2.3"},
		{name: "loopback is never private",
			host: Host{Links: []Link{lo}}, wantErr: ErrNoDefaultRoute},
		{name: "named interface wins over the rule",
			host: Host{Links: []Link{lo, eth0Pub, eth1}, DefaultIndex: 2}, iface: "eth0", want: "192.0.2.2"},
		{name: "named bridge is allowed when asked for",
			host: Host{Links: []Link{lo, eth0Pub, docker0}, DefaultIndex: 2}, iface: "docker0", want: "172.17.0.1"},
		{name: "named interface missing",
			host: Host{Links: []Link{lo, eth0Pub}, DefaultIndex: 2}, iface: "eth9", wantErr: ErrNoInterface},
		{name: "named interface without IPv4",
			host: Host{Links: []Link{lo, eth0Pub, v6only}, DefaultIndex: 2}, iface: "eth2", wantErr: ErrNoAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.host.Private(tt.iface)
			check(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestHost_Public(t *testing.T) {
	tests := []struct {
		name    string
		host    Host
		iface   string
		want    string
		wantErr error
	}{
		{name: "default route interface",
			host: Host{Links: []Link{lo, docker0, eth1, eth0Pub}, DefaultIndex: 2}, want: "192.0.2.2"},
		{name: "default route via second NIC",
			host: Host{Links: []Link{lo, eth0Pub, eth1}, DefaultIndex: 9}, want: "10.0.0.5"},
		{name: "no default route",
			host: Host{Links: []Link{lo, eth0Pub}}, wantErr: ErrNoDefaultRoute},
		{name: "default route interface has no IPv4",
			host: Host{Links: []Link{lo, noAddr}, DefaultIndex: 11}, wantErr: ErrNoAddress},
		{name: "named interface",
			host: Host{Links: []Link{lo, eth0Pub, eth1}, DefaultIndex: 2}, iface: "eth1", want: "10.0.0.5"},
		{name: "named interface has no address",
			host: Host{Links: []Link{lo, noAddr}, DefaultIndex: 2}, iface: "wg0", wantErr: ErrNoAddress},
		{name: "named interface missing",
			host: Host{Links: []Link{lo}}, iface: "eth0", wantErr: ErrNoInterface},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.host.Public(tt.iface)
			check(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func check(t *testing.T, got net.IP, err error, want string, wantErr error) {
	t.Helper()
	if wantErr != nil {
		if !errors.Is(err, wantErr) {
			t.Fatalf("got %v, %v; want error %v", got, err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if got.String() != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if n := len(got); (n != net.IPv4len) != strings.Contains(want, ":") {
		t.Fatalf("got a %d-byte IP, want the 4-byte form for IPv4 and the 16-byte one for IPv6", n)
	}
}

func TestDefaultIndex(t *testing.T) {
	_, dst, _ := net.ParseCIDR("10.0.0.0/8")
	_, zero, _ := net.ParseCIDR("0.0.0.0/0")
	tests := []struct {
		name   string
		routes []netlink.Route
		want   int
	}{
		{name: "none", routes: []netlink.Route{{LinkIndex: 3, Dst: dst}}, want: 0},
		{name: "nil dst is default", routes: []netlink.Route{{LinkIndex: 3, Dst: dst}, {LinkIndex: 2}}, want: 2},
		{name: "0.0.0.0/0 is default", routes: []netlink.Route{{LinkIndex: 4, Dst: zero}}, want: 4},
		{name: "lowest metric wins", routes: []netlink.Route{{LinkIndex: 4, Priority: 600}, {LinkIndex: 5, Priority: 100}}, want: 5},
		{name: "other tables ignored", routes: []netlink.Route{{LinkIndex: 4, Table: 100}, {LinkIndex: 6, Table: 254}}, want: 6},
		{name: "multipath", routes: []netlink.Route{{MultiPath: []*netlink.NexthopInfo{{LinkIndex: 7}}}}, want: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultIndex(tt.routes); got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
}

// TestReal runs the netlink calls on this host and checks them against what `ip route`
// knows: the public address is on the default route's interface, and Private returns a
// host address that is not on a container bridge.
func TestReal(t *testing.T) {
	h, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if h.DefaultIndex == 0 {
		t.Fatal("this host has no IPv4 default route; the test needs one")
	}
	pub, err := Public("")
	if err != nil {
		t.Fatal(err)
	}
	link, err := netlink.LinkByIndex(h.DefaultIndex)
	if err != nil {
		t.Fatal(err)
	}
	named, err := Public(link.Attrs().Name)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(named) {
		t.Fatalf("Public(\"\") = %s, but the default-route interface %s has %s", pub, link.Attrs().Name, named)
	}
	priv, err := Private("")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range h.Links {
		for _, a := range l.Addrs {
			if a.Equal(priv) && (skipped(l.Name) || l.Loopback) {
				t.Fatalf("Private() = %s from %s, a skipped interface", priv, l.Name)
			}
		}
	}
	eligible := false // does this host have a private address outside the skipped links?
	for _, l := range h.Links {
		for _, a := range l.Addrs {
			eligible = eligible || (l.Up && !l.Loopback && !skipped(l.Name) && isGlobal4(a) && a.IsPrivate())
		}
	}
	if !eligible && !priv.Equal(pub) {
		t.Fatalf("Private() = %s: no eligible private address here, so want the public fallback %s", priv, pub)
	}
	if eligible && !priv.IsPrivate() {
		t.Fatalf("Private() = %s: not private although this host has a private address", priv)
	}
	t.Logf("public %s (via %s), private %s", pub, link.Attrs().Name, priv)
	if _, err := Private("rdtest-no-such-if"); !errors.Is(err, ErrNoInterface) {
		t.Fatalf("Private(missing) = %v, want ErrNoInterface", err)
	}
	if _, err := Public("lo"); !errors.Is(err, ErrNoAddress) {
		t.Fatalf("Public(lo) = %v, want ErrNoAddress (loopback is not global)", err)
	}
}

// TestLookup: each kind selects what the Host method of that name selects on this host,
// and an unknown kind is refused naming it and the kinds there are.
func TestLookup(t *testing.T) {
	h, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for kind, sel := range map[string]func(string) (net.IP, error){
		"public": h.Public, "private": h.Private, "public6": h.Public6, "private6": h.Private6,
	} {
		want, wantErr := sel("")
		got, err := Lookup(kind, "")
		if !got.Equal(want) || (err == nil) != (wantErr == nil) {
			t.Errorf("Lookup(%q) = %v, %v; the Host method gives %v, %v", kind, got, err, want, wantErr)
		}
	}
	if _, err := Lookup("public7", ""); err == nil || !strings.Contains(err.Error(), `"public7"`) || !strings.Contains(err.Error(), "private6") {
		t.Errorf("Lookup(public7) = %v, want an error naming it and the kinds", err)
	}
}
