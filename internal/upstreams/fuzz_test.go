package upstreams

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/testenv"
)

// nginxCheck runs the real nginx -t on a configuration that includes upstreams inside
// http {}, with every path nginx writes (pid, logs, temp directories) in a temp directory.
func nginxCheck(t testing.TB, upstreams []byte) error {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "up.conf"), upstreams, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("nginx", "-t", "-q", "-p", dir, "-c", nginxConf(t, dir, filepath.Join(dir, "up.conf"))).CombinedOutput()
	if err != nil {
		return &nginxError{err: err, out: string(out)}
	}
	return nil
}

// nginxConf writes dir/nginx.conf, which includes the file include inside http {} and
// keeps every path nginx writes in dir, and returns its path.
func nginxConf(t testing.TB, dir, include string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("error_log " + dir + "/error.log;\npid " + dir + "/nginx.pid;\nevents {}\nhttp {\n  access_log off;\n")
	for _, p := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		b.WriteString("  " + p + "_temp_path " + dir + "/" + p + ";\n")
	}
	b.WriteString("  include " + include + ";\n}\n")
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

type nginxError struct {
	err error
	out string
}

func (e *nginxError) Error() string { return e.err.Error() + ": " + e.out }

// fuzzConfigs are the configurations FuzzRender renders records with: the records are
// the hostile input, the config is the operator's.
var fuzzConfigs = []Config{
	{},
	{Defaults: Settings{Balance: "least_conn", Keepalive: 16, MaxFails: intp(1), FailTimeout: "5s", Port: 8080}},
	{Defaults: Settings{Balance: "hash $remote_addr consistent"}, ServiceMap: map[string]Entry{"web": {}, "api": {Settings: Settings{Port: 9000}}}},
	{AllowNetworks: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}},
	{UpstreamName: "up_{{.Name}}", Defaults: Settings{Balance: "random two least_conn", MaxFails: intp(0)}},
	{ServiceMap: map[string]Entry{
		"web": {}, "web_canary": {Service: "web", Tags: []string{"canary"}}, "web_metrics": {Service: "web", PortName: "metrics"},
		"api_canary_metrics": {Service: "api", PortName: "metrics", Tags: []string{"canary"}},
	}},
	{UpstreamName: "up_{{.Service}}_{{.Name}}", AllowNetworks: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
		Defaults: Settings{Balance: "least_conn"}, ServiceMap: map[string]Entry{
			"web-canary": {Service: "web", Tags: []string{"canary", "eu"}}, "grafana": {PortName: "metrics"}, "web": {PortName: "metrics", Tags: []string{"canary"}},
		}},
}

// FuzzRender checks the property that matters when etcd holds hostile records: whatever
// two records say, under whatever name and instance, as instance, named-port and metadata
// records, the rendered upstreams pass the real nginx -t, every server rendered is an
// address the config allows, a named-port upstream holds only that port's records and a
// tagged one only instances with metadata.
func FuzzRender(f *testing.F) {
	testenv.Need(f, "nginx")
	f.Add(uint8(0), "web", "a", []byte(`{"host":"10.0.0.1","port":8080,"ttl":60}`), []byte(`{"host":"10.0.0.2","port":8080,"priority":20,"weight":3,"ttl":60}`))
	f.Add(uint8(1), "web", "b", []byte(`{"host":"fd00::1","ttl":60}`), []byte(`{"host":"does-not-exist.invalid","port":80,"ttl":60}`))
	f.Add(uint8(2), "api", "c", []byte(`{"host":"169.254.169.254","port":80,"priority":1,"ttl":60}`), []byte(`{"host":"10.0.0.4; include /etc/passwd","port":80}`))
	f.Add(uint8(3), "web", "d", []byte(`{"host":"0x7f.1","port":80,"weight":9223372036854775807}`), []byte(`{"host":"127.0.0.1","port":65535,"priority":65535,"weight":65535}`))
	f.Add(uint8(4), "grafana", "e", []byte(`{"host":"::ffff:10.0.0.1","port":1}`), []byte(`{"host":"fe80::1%eth0","port":80}`))
	f.Add(uint8(5), "web", "a", []byte(`{"host":"10.0.0.1","port":8080,"ttl":60}`), []byte(`{"text":"instance=a image=web:2 tags=canary","ttl":60,"group":"web"}`))
	f.Add(uint8(5), "api", "b", []byte(`{"host":"10.0.0.2","port":9100,"ttl":60,"group":"_metrics._tcp.api"}`), []byte(`{"text":"instance=b tags=canary\n}\nserver 6.6.6.6:80;\n{","ttl":60}`))
	f.Add(uint8(6), "web", "c", []byte(`{"host":"10.0.0.3","port":80,"text":"instance=c-2 tags=canary,eu"}`), []byte(`{"host":"10.0.0.3","port":80,"text":"instance=c tags=eu,canary; include /etc/passwd;"}`))
	f.Add(uint8(6), "grafana", "d", []byte(`{"host":"fd00::4","port":3000}`), []byte(`{"text":"instance=d\" tags=\"canary\" image={{.Name}} $host"}`))
	f.Fuzz(func(t *testing.T, cfg uint8, name, instance string, rec1, rec2 []byte) {
		c := fuzzConfigs[int(cfg)%len(fuzzConfigs)]
		base := strings.TrimSuffix(key(t, "x", "y"), "x/y")
		kvs := map[string][]byte{
			base + name + "/" + instance:                  rec1,
			base + name + "/" + instance + "-2":           rec2,
			base + "web/fixed":                            rec2,
			base + name + "/_tcp/_metrics/" + instance:    rec1,
			base + name + "/_tcp/_metrics/fixed":          rec2,
			base + name + "/_txt/" + instance:             rec2,
			base + name + "/_txt/" + instance + "-2":      rec1,
			base + "web/_txt/fixed":                       rec1,
			base + "web/_tcp/_metrics/" + instance + "-2": rec2,
		}
		d, _, err := c.Build(skydns.DefaultPrefix, domain, kvs)
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := NewTemplate("built-in", DefaultTemplate)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Render(tmpl, d)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range d.Upstreams {
			for _, s := range u.Servers {
				ap, err := netip.ParseAddrPort(s.Addr)
				if err != nil || ap.Port() == 0 || c.checkAddr(ap.Addr()) != "" {
					t.Fatalf("rendered server %q, which the config does not allow (%v)", s.Addr, err)
				}
				if n, port, inst, ok := skydns.SplitPortKey(skydns.DefaultPrefix, domain, s.key); u.PortName != "" && (!ok || n != u.Service || port != u.PortName || inst != s.Instance) {
					t.Fatalf("upstream %s of port %s rendered the record %s", u.Name, u.PortName, s.key)
				}
				if n, inst, ok := skydns.SplitKey(skydns.DefaultPrefix, domain, s.key); u.PortName == "" && (!ok || n != u.Service || inst != s.Instance) {
					t.Fatalf("upstream %s of service %s rendered the record %s", u.Name, u.Service, s.key)
				}
				if tk, err := skydns.TextKey(skydns.DefaultPrefix, domain, u.Service, s.Instance); len(u.Tags) > 0 && (err != nil || kvs[tk] == nil) {
					t.Fatalf("tagged upstream %s rendered %s, which has no metadata", u.Name, s.key)
				}
			}
		}
		if err := nginxCheck(t, out); err != nil {
			t.Fatalf("nginx -t rejects the rendering of %q and %q: %v\n%s", rec1, rec2, err, out)
		}
	})
}
