package upstreams

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// TestParseConfig_ManyServices parses a config of 200k services, and refuses one with a
// duplicate among them. yaml.v3's decoding compared every key with every other (100k keys
// took 44 s, 200k several minutes); ParseConfig must stay linear.
func TestParseConfig_ManyServices(t *testing.T) {
	const n = 200_000
	var b strings.Builder
	b.WriteString("services:\n")
	for i := range n {
		fmt.Fprintf(&b, "  s%d: {}\n", i)
	}
	c, err := ParseConfig([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ServiceMap) != n {
		t.Fatalf("%d services, want %d", len(c.ServiceMap), n)
	}
	b.WriteString("  s7: {port: 1}\n")
	if _, err := ParseConfig([]byte(b.String())); err == nil || !strings.Contains(err.Error(), `services has the key "s7" twice (first at line 9)`) {
		t.Fatalf("duplicate key: %v", err)
	}
}

// TestParseConfig_Text: a YAML number where text goes keeps its text, integers are read
// as decimal text (keepalive: 010 is 10, not octal 8), and the shapes are checked.
func TestParseConfig_Text(t *testing.T) {
	c, err := ParseConfig([]byte("upstream_name: up_{{.Name}}\ndefaults: {keepalive: 010, max_fails: 0, fail_timeout: 10, port: 08080, extra: [keepalive_requests 0100]}\nservices:\n  web: &w {balance: least_conn}\n  api: *w\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Defaults
	if d.Keepalive != 10 || d.MaxFails == nil || *d.MaxFails != 0 || d.FailTimeout != "10" || d.Port != 8080 || strings.Join(d.Extra, ",") != "keepalive_requests 0100" {
		t.Errorf("defaults %+v", d)
	}
	if c.ServiceMap["api"].Balance != "least_conn" || c.UpstreamName != "up_{{.Name}}" {
		t.Errorf("config %+v", c)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"defaults: {keepalive: 0x10}\n", `defaults.keepalive "0x10" is not a decimal integer`},
		{"defaults: {keepalive: [1]}\n", "defaults.keepalive must be text"},
		{"defaults: [1]\n", "defaults must be a map"},
		{"services: {web: {balance: least_conn, balance: ip_hash}}\n", `services.web has the key "balance" twice`},
		{"services: {web: {colour: red}}\n", `services.web has the unknown key "colour"`},
		{"colour: red\n", `unknown key "colour"`},
		{"- a\n", "the config must be a map"},
	} {
		if _, err := ParseConfig([]byte(tt.yaml)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want one containing %q", tt.yaml, err, tt.want)
		}
	}
}

// TestConfig_Examples loads the example configs: the integration tests and the demo use
// them with instances on loopback, so each must allow 127.0.0.0/8 explicitly.
func TestConfig_Examples(t *testing.T) {
	for _, p := range []string{"../../examples/nginx/upstreams.yml", "../../examples/demo/nginx/upstreams.yml"} {
		c, err := LoadConfig(p)
		if err != nil {
			t.Fatal(err)
		}
		if why := c.checkAddr(netip.MustParseAddr("127.0.0.2")); why != "" {
			t.Errorf("%s: %s", p, why)
		}
		if why := c.checkAddr(netip.MustParseAddr("169.254.169.254")); why == "" {
			t.Errorf("%s allows 169.254.169.254", p)
		}
	}
}
