package upstreams

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/rundock/rundock/internal/skydns"
)

// TestBuild_Records feeds one hostile or odd record at a time next to a good one: the bad
// one is skipped with a warning that names its key, value and why, and the good one is
// still rendered.
func TestBuild_Records(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	// The good record of each case is 127.0.0.1, so every allow list holds 127.0.0.0/8.
	ula := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	everything := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	tests := []struct {
		name   string
		allow  []netip.Prefix
		value  string
		server string // the server address rendered; "" when the record is skipped
		why    string // substring of the warning when skipped
	}{
		{name: "ok", value: `{"host":"10.0.0.9","port":80,"ttl":60}`, server: "10.0.0.9:80"},
		{name: "ipv6", value: `{"host":"FD00::9","port":80,"ttl":60}`, server: "[fd00::9]:80"},
		{name: "bounds", value: `{"host":"10.0.0.9","port":80,"priority":65535,"weight":65535,"ttl":60}`, server: "10.0.0.9:80"},
		{name: "ErrMetadata", value: `{"host":"169.254.169.254","port":80,"priority":1,"ttl":60}`, why: "link-local"},
		{name: "ErrLoopback", value: `{"host":"127.0.0.1","port":80,"ttl":60}`, why: "loopback"},
		{name: "ErrLoopback6", value: `{"host":"::1","port":80,"ttl":60}`, why: "loopback"},
		{name: "ErrMappedLoopback", value: `{"host":"::ffff:127.0.0.1","port":80,"ttl":60}`, why: "loopback"},
		{name: "ErrLinkLocal6", value: `{"host":"fe80::1","port":80,"ttl":60}`, why: "link-local"},
		{name: "ErrZone", value: `{"host":"fe80::1%eth0","port":80,"ttl":60}`, why: "zone"},
		{name: "ErrUnspecified", value: `{"host":"0.0.0.0","port":80,"ttl":60}`, why: "unspecified"},
		{name: "ErrUnspecified6", value: `{"host":"::","port":80,"ttl":60}`, why: "unspecified"},
		{name: "ErrMulticast", value: `{"host":"224.0.0.1","port":80,"ttl":60}`, why: "multicast"},
		{name: "ErrBroadcast", value: `{"host":"255.255.255.255","port":80,"ttl":60}`, why: "broadcast"},
		{name: "ErrHex", value: `{"host":"0x7f.1","port":80,"ttl":60}`, why: "not an IP address"},
		{name: "ErrDecimal", value: `{"host":"2130706433","port":80,"ttl":60}`, why: "not an IP address"},
		{name: "ErrOctal", value: `{"host":"010.0.0.1","port":80,"ttl":60}`, why: "not an IP address"},
		{name: "ErrHostName", value: `{"host":"does-not-exist.invalid","port":80,"ttl":60}`, why: "not an IP address"},
		{name: "ErrNegativePriority", value: `{"host":"10.0.0.9","port":80,"priority":-1,"ttl":60}`, why: "priority -1"},
		{name: "ErrBigPriority", value: `{"host":"10.0.0.9","port":80,"priority":65536,"ttl":60}`, why: "priority 65536"},
		{name: "ErrNegativeWeight", value: `{"host":"10.0.0.9","port":80,"weight":-5,"ttl":60}`, why: "weight -5"},
		{name: "ErrHugeWeight", value: `{"host":"10.0.0.9","port":80,"weight":9223372036854775807,"ttl":60}`, why: "weight 9223372036854775807"},
		{name: "loopback allowed", allow: loopback, value: `{"host":"127.0.0.2","port":80,"ttl":60}`, server: "127.0.0.2:80"},
		{name: "ErrOutsideAllowList", allow: loopback, value: `{"host":"10.0.0.9","port":80,"ttl":60}`, why: "not in allow_networks"},
		{name: "ErrUnspecifiedAllowed", allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, value: `{"host":"0.0.0.0","port":80,"ttl":60}`, why: "unspecified"},
		{name: "ula allowed", allow: ula, value: `{"host":"fd12:3456::7","port":8080,"ttl":60}`, server: "[fd12:3456::7]:8080"},
		{name: "loopback6 allowed", allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, value: `{"host":"::1","port":80,"ttl":60}`, server: "[::1]:80"},
		{name: "ErrOutsideAllowList6", allow: ula, value: `{"host":"2001:db8::1","port":80,"ttl":60}`, why: "not in allow_networks (127.0.0.0/8, fd00::/8)"},
		{name: "ErrMappedOutsideAllowList6", allow: ula, value: `{"host":"::ffff:10.0.0.1","port":80,"ttl":60}`, why: "host 10.0.0.1 is not in allow_networks"},
		{name: "ErrZoneAllowed", allow: everything, value: `{"host":"fd00::1%eth0","port":80,"ttl":60}`, why: "zone"},
		{name: "ErrUnspecified6Allowed", allow: everything, value: `{"host":"::","port":80,"ttl":60}`, why: "unspecified"},
		{name: "ErrMulticast6Allowed", allow: everything, value: `{"host":"ff02::1","port":80,"ttl":60}`, why: "multicast"},
		{name: "ErrBracketed", value: `{"host":"[fd00::1]","port":80,"ttl":60}`, why: "not an IP address"},
		{name: "ErrHostPort6", value: `{"host":"[fd00::1]:80","port":80,"ttl":60}`, why: "not an IP address"},
		{name: "ErrInject6", allow: everything, value: `{"host":"fd00::1; include /etc/passwd","port":80,"ttl":60}`, why: "not an IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{AllowNetworks: tt.allow}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			good := `{"host":"10.0.0.1","port":8080,"ttl":60}`
			if tt.allow != nil {
				good = `{"host":"127.0.0.1","port":8080,"ttl":60}`
			}
			kvs := map[string][]byte{key(t, "web", "good"): []byte(good), key(t, "web", "x"): []byte(tt.value)}
			d, skipped, err := c.Build(skydns.DefaultPrefix, domain, kvs)
			if err != nil {
				t.Fatal(err)
			}
			var addrs []string
			for _, s := range d.Upstreams[0].Servers {
				addrs = append(addrs, s.Addr)
			}
			want := 1
			if tt.server != "" {
				want = 2
				if !strings.Contains(strings.Join(addrs, " "), tt.server) {
					t.Errorf("servers %v, want %s among them", addrs, tt.server)
				}
			}
			if len(addrs) != want {
				t.Fatalf("servers %v, want %d (skipped: %v)", addrs, want, skipped)
			}
			if tt.server != "" {
				if len(skipped) != 0 {
					t.Errorf("skipped %v, want none", skipped)
				}
				return
			}
			if len(skipped) != 1 {
				t.Fatalf("skipped %v, want one", skipped)
			}
			s := skipped[0]
			if s.Key != key(t, "web", "x") || s.Value != tt.value || !strings.Contains(s.Why, tt.why) {
				t.Errorf("skipped %+v, want key %s, value %s and a reason with %q", s, key(t, "web", "x"), tt.value, tt.why)
			}
		})
	}
}

func TestConfig_AllowNetworks(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []netip.Prefix
		err  string
	}{
		{name: "list", yaml: "allow_networks: [10.0.0.0/8, 127.0.0.0/8, 'fd00::/8']\n",
			want: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}},
		{name: "ErrNotCIDR", yaml: "allow_networks: [10.0.0.1]\n", err: `allow_networks "10.0.0.1": write a network`},
		{name: "ErrHostBits", yaml: "allow_networks: [10.0.0.1/8]\n", err: `write "10.0.0.0/8"`},
		{name: "ErrNotList", yaml: "allow_networks: 10.0.0.0/8\n", err: "allow_networks must be a list"},
		{name: "ErrNumeric", yaml: "allow_networks: [2130706433/8]\n", err: `"2130706433/8"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.yaml))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(c.AllowNetworks) != len(tt.want) {
				t.Fatalf("got %v, want %v", c.AllowNetworks, tt.want)
			}
			for i := range tt.want {
				if c.AllowNetworks[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", c.AllowNetworks, tt.want)
				}
			}
		})
	}
}

// TestWatcher_LogSkipped: a skipped record is logged with its key, its value (cut when
// long) and why, one line each.
func TestWatcher_LogSkipped(t *testing.T) {
	var buf bytes.Buffer
	w := &Watcher{Log: slog.New(slog.NewTextHandler(&buf, nil))}
	w.logSkipped([]Skipped{
		{Key: "/skydns/x/web/a", Value: `{"host":"169.254.169.254","port":80}`, Why: "host 169.254.169.254 is a link-local address"},
		{Key: "/skydns/x/web/b", Value: strings.Repeat("x", 1000), Why: "cannot decode"},
	})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `key=/skydns/x/web/a value="{\"host\":\"169.254.169.254\",\"port\":80}" why="host 169.254.169.254 is a link-local address"`) ||
		!strings.Contains(lines[1], strings.Repeat("x", maxLoggedValue)+"...") || strings.Contains(lines[1], strings.Repeat("x", maxLoggedValue+1)) {
		t.Fatalf("log:\n%s", buf.String())
	}
}
