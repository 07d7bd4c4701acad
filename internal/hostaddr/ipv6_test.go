package hostaddr

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// testdata/ipv6_route is /proc/net/ipv6_route of a host with two IPv6 default routes
// (eth0 metric 0x400, eth1 metric 0x800), the kernel's unreachable ::/0 on lo (reject,
// metric 0), and a default route on eth2 that is not up (flags 0x2).
func TestParseIPv6Route(t *testing.T) {
	f, err := os.Open("testdata/ipv6_route")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tests := []struct {
		name, in, want, err string
	}{
		{name: "lowest metric, reject and down skipped", want: "eth0"},
		{name: "none", in: "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0\n"},
		{name: "empty", in: " "},
		{name: "ErrFields", in: "00000000000000000000000000000000 00 eth0\n", err: "line 1: 3 fields"},
		{name: "ErrMetric", in: "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 zz 00000001 00000000 00000003 eth0\n", err: "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			var err error
			if tt.in == "" {
				got, err = ParseIPv6Route(f)
			} else {
				got, err = ParseIPv6Route(strings.NewReader(tt.in))
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

var (
	eth0v6  = Link{Index: 2, Name: "eth0", Up: true, Addrs: ips("192.0.2.2", "fe80::2", "2001:db8::2", "fd00::2")}
	eth1ULA = Link{Index: 9, Name: "eth1", Up: true, Addrs: ips("10.0.0.5", "fe80::9", "fd12:3456::9")}
	eth1Dn6 = Link{Index: 9, Name: "eth1", Up: false, Addrs: ips("fd12:3456::9")}
	dockULA = Link{Index: 3, Name: "docker0", Up: true, Addrs: ips("172.17.0.1", "fd00:dead::1")}
	loULA   = Link{Index: 1, Name: "lo", Up: true, Loopback: true, Addrs: ips("127.0.0.1", "::1", "fd00::99")}
	eth3v4  = Link{Index: 13, Name: "eth3", Up: true, Addrs: ips("10.0.0.7", "::ffff:10.0.0.8", "fe80::7")}
	eth4ULA = Link{Index: 14, Name: "eth4", Up: true, Addrs: ips("fd99::4", "fc00::4")}
	eth5FC  = Link{Index: 15, Name: "eth5", Up: true, Addrs: ips("fc00::5")}
)

func TestHost_IPv6(t *testing.T) {
	tests := []struct {
		name    string
		host    Host
		private bool
		iface   string
		want    string
		wantErr error
	}{
		{name: "public: default route interface", host: Host{Links: []Link{lo, eth1ULA, eth0v6}, Default6: "eth0"}, want: "2001:db8::2"},
		{name: "public: named", host: Host{Links: []Link{eth0v6, eth1ULA}, Default6: "eth0"}, iface: "eth1", want: "fd12:3456::9"},
		{name: "public: ErrNoDefaultRoute6", host: Host{Links: []Link{eth0v6}, DefaultIndex: 2}, wantErr: ErrNoDefaultRoute6},
		{name: "public: ErrNoAddress6 on the route's interface", host: Host{Links: []Link{eth3v4}, Default6: "eth3"}, wantErr: ErrNoAddress6},
		{name: "public: ErrNoInterface named", host: Host{Links: []Link{eth0v6}, Default6: "eth0"}, iface: "wg9", wantErr: ErrNoInterface},
		{name: "public: ErrNoInterface route", host: Host{Links: []Link{eth0v6}, Default6: "gone0"}, wantErr: ErrNoInterface},
		{name: "private: first ULA, not the public one", private: true, host: Host{Links: []Link{loULA, dockULA, eth1ULA, eth0v6}, Default6: "eth0"}, want: "fd12:3456::9"},
		{name: "private: ULA on the default interface", private: true, host: Host{Links: []Link{eth0v6}, Default6: "eth0"}, want: "fd00::2"},
		{name: "private: fc00::/8 is not fd00::/8", private: true, host: Host{Links: []Link{eth5FC, eth4ULA}}, want: "fd99::4"},
		{name: "private: down, loopback, docker skipped, public fallback", private: true, host: Host{Links: []Link{loULA, dockULA, eth1Dn6, eth5FC}, Default6: "eth5"}, want: "fc00::5"},
		{name: "private: named", private: true, host: Host{Links: []Link{eth0v6, eth1ULA}}, iface: "eth0", want: "2001:db8::2"},
		{name: "private: ErrNoDefaultRoute6", private: true, host: Host{Links: []Link{eth3v4, eth5FC}, DefaultIndex: 13}, wantErr: ErrNoDefaultRoute6},
		{name: "private: ErrNoAddress6 named (mapped IPv4 is not IPv6)", private: true, host: Host{Links: []Link{eth3v4}}, iface: "eth3", wantErr: ErrNoAddress6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel := tt.host.Public6
			if tt.private {
				sel = tt.host.Private6
			}
			got, err := sel(tt.iface)
			check(t, got, err, tt.want, tt.wantErr)
		})
	}
}

// TestReal6 reads this host's IPv6 routes and addresses; where there is an IPv6 default
// route with a global address, Public6 is one of that interface's addresses; where there is
// none, Public6 says so (ErrNoDefaultRoute6).
func TestReal6(t *testing.T) {
	h, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := h.Public6("")
	if h.Default6 == "" {
		if !errors.Is(err, ErrNoDefaultRoute6) {
			t.Fatalf("no IPv6 default route, but Public6 = %v, %v", pub, err)
		}
		t.Logf("no IPv6 default route here: Public6 refuses with %v", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	named, err := h.Public6(h.Default6)
	if err != nil || !pub.Equal(named) {
		t.Fatalf("Public6(\"\") = %s, but the default-route interface %s has %s (%v)", pub, h.Default6, named, err)
	}
	priv, err := h.Private6("")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("public6 %s (via %s), private6 %s", pub, h.Default6, priv)
}
