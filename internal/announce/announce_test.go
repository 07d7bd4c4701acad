package announce

import (
	"errors"
	"strings"
	"testing"

	"github.com/rundock/rundock/internal/container"
	"github.com/rundock/rundock/internal/skydns"
)

func base() Config {
	return Config{Name: "influxdb", Port: 8086, Instance: "node-back-1"}
}

func TestNew_KeyAndRecord(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		host    string
		wantKey string
		wantRec string
	}{
		{name: "defaults", mod: func(*Config) {}, host: "10.0.0.5",
			wantKey: "/skydns/com/example/prod/s/influxdb/node-back-1",
			wantRec: `{"host":"10.0.0.5","port":8086,"ttl":30,"group":"influxdb"}`},
		{name: "dns-ttl and srv fields", mod: func(c *Config) { c.TTL, c.DNSTTL, c.Priority, c.Weight = 10, 60, 10, 50 }, host: "10.0.0.5",
			wantKey: "/skydns/com/example/prod/s/influxdb/node-back-1",
			wantRec: `{"host":"10.0.0.5","port":8086,"priority":10,"weight":50,"ttl":60,"group":"influxdb"}`},
		{name: "dns-ttl defaults to ttl", mod: func(c *Config) { c.TTL = 5 }, host: "192.0.2.2",
			wantKey: "/skydns/com/example/prod/s/influxdb/node-back-1",
			wantRec: `{"host":"192.0.2.2","port":8086,"ttl":5,"group":"influxdb"}`},
		{name: "domain, prefix and case", mod: func(c *Config) {
			c.Domain, c.Prefix, c.Name, c.Instance = "svc.Example.org.", "/dns/", "Web", "Host-A"
		}, host: "10.1.1.1",
			wantKey: "/dns/org/example/svc/web/host-a",
			wantRec: `{"host":"10.1.1.1","port":8086,"ttl":30,"group":"web"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mod(&c)
			a, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			if a.Key() != tt.wantKey {
				t.Errorf("key %s, want %s", a.Key(), tt.wantKey)
			}
			if got := a.Record(tt.host).Encode(); got != tt.wantRec {
				t.Errorf("record %s, want %s", got, tt.wantRec)
			}
		})
	}
}

// TestNew_NamedPortsAndMeta: each named port is a record of its own at the port's key,
// with the instance's address and the port's group; the metadata is a TXT record without
// a host.
func TestNew_NamedPortsAndMeta(t *testing.T) {
	c := base()
	c.NamedPorts = []NamedPort{{"metrics", 9100}, {"admin", 9901}}
	c.Meta = skydns.Meta{Image: "registry.example/influxdb:2.7", Tags: []string{"canary"}}
	a, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"/skydns/com/example/prod/s/influxdb/_tcp/_metrics/node-back-1",
		"/skydns/com/example/prod/s/influxdb/_tcp/_admin/node-back-1", "/skydns/com/example/prod/s/influxdb/_txt/node-back-1"}
	wantVals := []string{`{"host":"10.0.0.5","port":9100,"ttl":30,"group":"_metrics._tcp.influxdb"}`,
		`{"host":"10.0.0.5","port":9901,"ttl":30,"group":"_admin._tcp.influxdb"}`,
		`{"ttl":30,"text":"instance=node-back-1 image=registry.example/influxdb:2.7 tags=canary","group":"influxdb"}`}
	if got := a.Keys(); strings.Join(got, " ") != strings.Join(wantKeys, " ") {
		t.Errorf("keys %q, want %q", got, wantKeys)
	}
	if got := a.Extra(a.Record("10.0.0.5"), ""); strings.Join(got, " ") != strings.Join(wantVals, " ") {
		t.Errorf("values\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantVals, "\n"))
	}
	// Dual stack: the address records and the named port's become one per family.
	c = base()
	c.Host, c.Host6, c.NamedPorts = "10.0.0.5", "FD00:0::5", []NamedPort{{"metrics", 9100}}
	a, err = New(c)
	if err != nil {
		t.Fatal(err)
	}
	const s = "/skydns/com/example/prod/s/influxdb/"
	if got, want := a.Key(), s+"node-back-1/ipv4"; got != want {
		t.Errorf("dual-stack key %s, want %s", got, want)
	}
	wantKeys = []string{s + "node-back-1/ipv6", s + "_tcp/_metrics/node-back-1/ipv4", s + "_tcp/_metrics/node-back-1/ipv6"}
	wantVals = []string{`{"host":"fd00::5","port":8086,"ttl":30,"group":"influxdb"}`,
		`{"host":"10.0.0.5","port":9100,"ttl":30,"group":"_metrics._tcp.influxdb"}`,
		`{"host":"fd00::5","port":9100,"ttl":30,"group":"_metrics._tcp.influxdb"}`}
	if got := a.Keys(); strings.Join(got, " ") != strings.Join(wantKeys, " ") {
		t.Errorf("dual-stack keys %q, want %q", got, wantKeys)
	}
	h6, err := a.host6()
	if err != nil || h6 != "fd00::5" {
		t.Fatalf("host6 = %q, %v; want fd00::5 (canonical)", h6, err)
	}
	if got := a.Extra(a.Record("10.0.0.5"), h6); strings.Join(got, " ") != strings.Join(wantVals, " ") {
		t.Errorf("dual-stack values\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantVals, "\n"))
	}

	a, err = New(base())
	if err != nil || len(a.Keys()) != 0 {
		t.Fatalf("no named ports or metadata: keys %q, %v; want none", a.Keys(), err)
	}
}

func TestNew_Defaults(t *testing.T) {
	a, err := New(Config{Name: "web", Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	c := a.Config()
	if c.Domain != DefaultDomain || c.Prefix != "/skydns" || c.AnnounceAs != AsPrivate || c.Container != "web" ||
		c.TTL != DefaultTTL || c.DNSTTL != DefaultTTL || len(c.Etcd.Endpoints) != 1 || c.Etcd.Endpoints[0] != DefaultEndpoint {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if c.Instance == "" || c.Instance != strings.ToLower(c.Instance) || strings.Contains(c.Instance, ".") {
		t.Fatalf("instance %q is not the lowercased short host name", c.Instance)
	}
}

func TestNew_Errors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string // part of the message: the offending value or the fix
	}{
		{"no name", func(c *Config) { c.Name = "" }, "--name"},
		{"bad name", func(c *Config) { c.Name = "in_flux" }, `"in_flux"`},
		{"bad instance", func(c *Config) { c.Instance = "node.1" }, `"node.1"`},
		{"port zero", func(c *Config) { c.Port = 0 }, "port 0"},
		{"port high", func(c *Config) { c.Port = 65536 }, "port 65536"},
		{"announce-as", func(c *Config) { c.AnnounceAs = "lan" }, `"lan": use public, private, container, public6, private6 or container6`},
		{"container without watch", func(c *Config) { c.AnnounceAs, c.IgnoreContainer = AsContainer, true }, "--watch-container"},
		{"ttl too short", func(c *Config) { c.TTL = 4 }, "ttl 4"},
		{"negative dns-ttl", func(c *Config) { c.DNSTTL = -1 }, "dns-ttl -1"},
		{"priority", func(c *Config) { c.Priority = 70000 }, "priority 70000"},
		{"weight", func(c *Config) { c.Weight = -1 }, "weight -1"},
		{"container name", func(c *Config) { c.Container = "a b" }, `"a b"`},
		{"published port", func(c *Config) { c.PublishedPort = "80/sctp" }, `"80/sctp"`},
		{"published port range", func(c *Config) { c.PublishedPort = "70000" }, `"70000/tcp"`},
		{"published port unwatched", func(c *Config) { c.PublishedPort, c.IgnoreContainer = "80", true }, "--watch-container"},
		{"host", func(c *Config) { c.Host = "not a host" }, `"not a host"`},
		{"host bracketed ipv6", func(c *Config) { c.Host = "[fd00::5]" }, `"[fd00::5]" is neither an IP address nor a host name: pass e.g. --host 10.0.0.5, --host fd00::5`},
		{"host ipv6 with port", func(c *Config) { c.Host = "[fd00::5]:80" }, `"[fd00::5]:80"`},
		{"host ipv6 zone", func(c *Config) { c.Host = "fe80::1%eth0" }, `"fe80::1%eth0"`},
		{"cert without key", func(c *Config) { c.Etcd.Cert = "/c.pem" }, "--key"},
		{"user without password", func(c *Config) { c.Etcd.User = "root" }, "--password-file"},
		{"endpoint scheme", func(c *Config) { c.Etcd.Endpoints = []string{"127.0.0.1:2379"} }, `"127.0.0.1:2379"`},
		{"named port name", func(c *Config) { c.NamedPorts = []NamedPort{{"met_rics", 9100}} }, `named port "met_rics": use 1 to 15`},
		{"named port number only", func(c *Config) { c.NamedPorts = []NamedPort{{"9100", 9100}} }, `named port "9100"`},
		{"named port twice", func(c *Config) { c.NamedPorts = []NamedPort{{"metrics", 9100}, {"metrics", 9101}} }, "given twice"},
		{"named port range", func(c *Config) { c.NamedPorts = []NamedPort{{"metrics", 0}} }, "metrics=0 out of range"},
		{"named port with start-first", func(c *Config) { c.NamedPorts, c.PublishedPort = []NamedPort{{"metrics", 9100}}, "80" }, "start-first"},
		{"tag", func(c *Config) { c.Meta.Tags = []string{"can ary"} }, `tag "can ary"`},
		{"host6 ipv4", func(c *Config) { c.Host6 = "10.0.0.6" }, `host6 "10.0.0.6" is not an IPv6 address`},
		{"announce-as6", func(c *Config) { c.AnnounceAs6 = "private" }, `announce-as6 "private": use public6 or private6`},
		{"dual with ipv6 host", func(c *Config) { c.Host, c.Host6 = "fd00::1", "fd00::2" }, `host "fd00::1" with --host6`},
		{"dual with container", func(c *Config) { c.AnnounceAs, c.AnnounceAs6 = AsContainer, AsPrivate6 }, `announce-as "container" with --host6`},
		{"dual with start-first", func(c *Config) { c.Host6, c.PublishedPort = "fd00::2", "80" }, "start-first"},
		{"image with a space", func(c *Config) { c.Meta.Image = "web:1 tags=x" }, `image "web:1 tags=x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mod(&c)
			_, err := New(c)
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not name %s", err, tt.want)
			}
		})
	}
}

func TestHost(t *testing.T) {
	up := container.State{Exists: true, Running: true, IP: "172.17.0.9"}
	tests := []struct {
		name    string
		mod     func(*Config)
		st      container.State
		want    string
		wantErr bool
	}{
		{name: "explicit host wins", mod: func(c *Config) { c.Host, c.AnnounceAs = "10.9.9.9", AsContainer }, st: up, want: "10.9.9.9"},
		{name: "explicit ipv6 host", mod: func(c *Config) { c.Host = "fd00::5" }, st: up, want: "fd00::5"},
		{name: "ipv6 host canonical", mod: func(c *Config) { c.Host = "FD00:0:0::0005" }, st: up, want: "fd00::5"},
		{name: "global ipv6 host", mod: func(c *Config) { c.Host = "2001:db8:1::10" }, st: up, want: "2001:db8:1::10"},
		{name: "host name kept", mod: func(c *Config) { c.Host = "Backend-1.example.net" }, st: up, want: "Backend-1.example.net"},
		{name: "container ip", mod: func(c *Config) { c.AnnounceAs = AsContainer }, st: up, want: "172.17.0.9"},
		{name: "container without ip", mod: func(c *Config) { c.AnnounceAs = AsContainer }, st: container.State{Exists: true, Running: true}, wantErr: true},
		{name: "missing interface", mod: func(c *Config) { c.PrivateInterface = "rdtest-none0" }, st: up, wantErr: true},
		{name: "private6 missing interface", mod: func(c *Config) { c.AnnounceAs, c.PrivateInterface = AsPrivate6, "rdtest-none0" }, st: up, wantErr: true},
		{name: "public6 on lo (::1 is not global)", mod: func(c *Config) { c.AnnounceAs, c.PublicInterface = AsPublic6, "lo" }, st: up, wantErr: true},
		{name: "explicit host wins over public6", mod: func(c *Config) { c.Host, c.AnnounceAs = "fd00::7", AsPublic6 }, st: up, want: "fd00::7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mod(&c)
			a, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.host(tt.st)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("got %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
