package upstreams

import (
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

const domain = "s.prod.example.com"

func key(t *testing.T, name, inst string) string {
	t.Helper()
	k, err := skydns.InstanceKey(skydns.DefaultPrefix, domain, name, inst)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func intp(i int) *int { return &i }

func TestRender_Golden(t *testing.T) {
	tests := []struct {
		name   string
		config Config
		kvs    map[string]string
	}{
		{name: "all-services", kvs: map[string]string{
			key(t, "web", "host-b"):                   `{"host":"10.0.0.2","port":8081,"weight":3,"ttl":60}`,
			key(t, "web", "host-a"):                   `{"host":"10.0.0.1","port":8080,"ttl":60}`,
			key(t, "grafana", "host-a"):               `{"host":"fd00::1","port":3000,"ttl":60}`,
			"/skydns/com/example/prod/s/web/deeper/x": `{"host":"10.9.9.9","port":1,"ttl":60}`,
			"/skydns/com/example/prod/other/web/x":    `{"host":"10.9.9.9","port":1,"ttl":60}`,
		}},
		{name: "listed-services-with-settings", config: Config{
			UpstreamName: "up_{{.Name}}",
			Defaults:     Settings{Keepalive: 16, MaxFails: intp(1), FailTimeout: "5s"},
			ServiceMap: map[string]Entry{
				"web":   {Settings: Settings{Balance: "least_conn", Extra: []string{"keepalive_timeout 60s"}}},
				"api":   {Settings: Settings{Keepalive: 4}},
				"cache": {Settings: Settings{Balance: "hash $request_uri consistent", Port: 11211}},
			},
		}, kvs: map[string]string{
			key(t, "web", "a"):     `{"host":"10.0.0.1","port":8080,"priority":10,"ttl":60}`,
			key(t, "web", "b"):     `{"host":"10.0.0.2","port":8080,"priority":20,"ttl":60}`,
			key(t, "cache", "a"):   `{"host":"10.0.0.5","priority":20,"ttl":60}`,
			key(t, "cache", "b"):   `{"host":"10.0.0.6","priority":10,"ttl":60}`,
			key(t, "ignored", "a"): `{"host":"10.0.0.7","port":1,"ttl":60}`,
		}},
		{name: "bad-records-skipped", kvs: map[string]string{
			key(t, "web", "ok"):       `{"host":"10.0.0.1","port":8080,"ttl":60}`,
			key(t, "web", "dup"):      `{"host":"10.0.0.1","port":8080,"ttl":60}`,
			key(t, "web", "noport"):   `{"host":"10.0.0.3","ttl":60}`,
			key(t, "web", "inject"):   `{"host":"10.0.0.4; include /etc/passwd","port":80,"ttl":60}`,
			key(t, "web", "notjson"):  `host=10.0.0.5`,
			key(t, "web", "hostname"): `{"host":"backend-1.example.net","port":80,"ttl":60}`,
			key(t, "web", "unknown"):  `{"host":"does-not-exist.invalid","port":80,"ttl":60}`,
			key(t, "web", "metadata"): `{"host":"169.254.169.254","port":80,"priority":1,"ttl":60}`,
			key(t, "web", "loopback"): `{"host":"127.0.0.1","port":80,"ttl":60}`,
			key(t, "web", "hex"):      `{"host":"0x7f.1","port":80,"ttl":60}`,
			key(t, "web", "decimal"):  `{"host":"2130706433","port":80,"ttl":60}`,
			key(t, "web", "prio"):     `{"host":"10.0.0.8","port":80,"priority":-1,"ttl":60}`,
			key(t, "web", "weight"):   `{"host":"10.0.0.9","port":80,"weight":9223372036854775807,"ttl":60}`,
		}},
		{name: "canary-and-named-port", config: Config{
			Defaults: Settings{Keepalive: 8},
			ServiceMap: map[string]Entry{
				"web":         {},
				"web_canary":  {Service: "web", Tags: []string{"canary"}},
				"web_metrics": {Service: "web", PortName: "metrics"},
				"api_canary":  {Service: "api", Tags: []string{"canary", "eu"}},
			},
		}, kvs: map[string]string{
			key(t, "web", "a"):                 `{"host":"10.0.0.1","port":8080,"ttl":60,"group":"web"}`,
			key(t, "web", "b"):                 `{"host":"10.0.0.2","port":8080,"ttl":60,"group":"web"}`,
			key(t, "web", "c"):                 `{"host":"10.0.0.3","port":8080,"ttl":60,"group":"web"}`,
			portKey(t, "web", "metrics", "a"):  `{"host":"10.0.0.1","port":9100,"ttl":60,"group":"_metrics._tcp.web"}`,
			portKey(t, "web", "metrics", "b"):  `{"host":"10.0.0.2","port":9100,"ttl":60,"group":"_metrics._tcp.web"}`,
			portKey(t, "web", "metrics", "lo"): `{"host":"127.0.0.1","port":9100,"ttl":60,"group":"_metrics._tcp.web"}`,
			textKey(t, "web", "a"):             `{"text":"instance=a image=web:2 tags=canary","ttl":60,"group":"web"}`,
			textKey(t, "web", "b"):             `{"text":"instance=b image=web:1; include /etc/passwd; tags=stable","ttl":60,"group":"web"}`,
			textKey(t, "web", "c"):             `{"text":"instance=c image=web:2\n}\nserver 6.6.6.6:80;\n tags=canary","ttl":60,"group":"web"}`,
			key(t, "api", "a"):                 `{"host":"10.0.1.1","port":80,"ttl":60,"group":"api"}`,
			textKey(t, "api", "a"):             `{"text":"instance=a tags=canary","ttl":60,"group":"api"}`,
		}},
		{name: "allow-networks", config: Config{AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}},
			kvs: map[string]string{
				key(t, "web", "a"):     `{"host":"127.0.0.2","port":8080,"ttl":60}`,
				key(t, "web", "b"):     `{"host":"fd00::2","port":8080,"weight":2,"ttl":60}`,
				key(t, "web", "c"):     `{"host":"10.0.0.3","port":8080,"ttl":60}`,
				key(t, "web", "d"):     `{"host":"0.0.0.0","port":8080,"ttl":60}`,
				key(t, "api", "a"):     `{"host":"::ffff:127.0.0.3","port":9000,"ttl":60}`,
				key(t, "api", "local"): `{"host":"169.254.169.254","port":80,"ttl":60}`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.config.Validate(); err != nil {
				t.Fatal(err)
			}
			kvs := map[string][]byte{}
			for k, v := range tt.kvs {
				kvs[k] = []byte(v)
			}
			d, warnings, err := tt.config.Build(skydns.DefaultPrefix, domain, kvs)
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
			var lines []string
			for _, w := range warnings {
				lines = append(lines, w.String())
			}
			got := string(out) + "\n# warnings:\n# " + strings.Join(lines, "\n# ") + "\n"
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update once to create it)", err)
			}
			if got != string(want) {
				t.Errorf("render differs from %s:\n%s", golden, Diff(golden, "got", want, []byte(got)))
			}
		})
	}
}

// TestRender_GoldenPassesNginx checks every golden file with the real nginx: what the
// built-in template renders is a valid configuration, including the down-only upstream.
func TestRender_GoldenPassesNginx(t *testing.T) {
	testenv.Need(t, "nginx")
	goldens, _ := filepath.Glob("testdata/*.golden")
	if len(goldens) == 0 {
		t.Fatal("no golden files")
	}
	for _, g := range goldens {
		t.Run(filepath.Base(g), func(t *testing.T) {
			b, err := os.ReadFile(g)
			if err != nil {
				t.Fatal(err)
			}
			if err := nginxCheck(t, b); err != nil {
				t.Fatalf("nginx -t rejects %s: %v", g, err)
			}
		})
	}
}

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // substring of the error; "" for no error
	}{
		{name: "ok", yaml: "defaults: {keepalive: 8, max_fails: 2, fail_timeout: 10s}\nservices:\n  web: {balance: least_conn}\n"},
		{name: "empty", yaml: ""},
		{name: "ErrBadBalance", yaml: "services:\n  web: {balance: 'least_conn; include x'}\n", want: `balance "least_conn; include x"`},
		{name: "ErrUnknownBalance", yaml: "defaults: {balance: fastest}\n", want: `balance "fastest"`},
		{name: "ErrBadTimeout", yaml: "defaults: {fail_timeout: soon}\n", want: `fail_timeout "soon"`},
		{name: "ErrBadService", yaml: "services:\n  Web_1: {}\n", want: `service "Web_1"`},
		{name: "ErrExtraBrace", yaml: "defaults: {extra: ['} server {']}\n", want: "extra"},
		{name: "ErrUnknownField", yaml: "defaults: {keep_alive: 3}\n", want: "keep_alive"},
		{name: "ErrNegativeKeepalive", yaml: "defaults: {keepalive: -1}\n", want: "keepalive -1"},
		{name: "canary", yaml: "services:\n  web: {}\n  web_canary: {service: web, tags: [canary]}\n  web-metrics: {service: web, port_name: metrics}\n"},
		{name: "ErrBadPortName", yaml: "services:\n  web: {port_name: Metrics}\n", want: `services.web.port_name "Metrics" is not a port name (use 1 to 15 lowercase letters`},
		{name: "ErrLongPortName", yaml: "services:\n  web: {port_name: metrics-and-more}\n", want: `port_name "metrics-and-more"`},
		{name: "ErrNumericPortName", yaml: "services:\n  web: {port_name: 8080}\n", want: `port_name "8080" is not a port name`},
		{name: "ErrPortNameUnderscore", yaml: "services:\n  web: {port_name: _metrics}\n", want: `port_name "_metrics"`},
		{name: "ErrPortAndPortName", yaml: "services:\n  web: {port: 80, port_name: metrics}\n", want: `services.web has port 80 and port_name "metrics"`},
		{name: "ErrBadTag", yaml: "services:\n  web_canary: {service: web, tags: [Canary]}\n", want: `services.web_canary.tags "Canary" is not a tag`},
		{name: "ErrTagWithComma", yaml: "services:\n  web_canary: {service: web, tags: ['canary,eu']}\n", want: `tags "canary,eu"`},
		{name: "ErrTagsNotList", yaml: "services:\n  web_canary: {service: web, tags: canary}\n", want: "services.web_canary.tags must be a list"},
		{name: "ErrBadServiceValue", yaml: "services:\n  web_canary: {service: web_1}\n", want: `services.web_canary.service "web_1" is not a DNS label`},
		{name: "ErrLabelNeedsService", yaml: "services:\n  web_canary: {tags: [canary]}\n", want: `service "web_canary" is not a DNS label (use 1 to 63 lowercase letters, digits and '-', not starting or ending with '-'): an upstream named otherwise says which service it takes, e.g. web_canary: {service: web}`},
		{name: "ErrBadUpstream", yaml: "services:\n  'web canary': {service: web}\n", want: `upstream "web canary" (a key under services) is not a name`},
		{name: "ErrUpstreamUnderscoreEdge", yaml: "services:\n  _web: {service: web}\n", want: `upstream "_web"`},
		{name: "ErrUpstreamUpper", yaml: "services:\n  Web_Canary: {service: web}\n", want: `upstream "Web_Canary"`},
		{name: "ErrUpstreamBrace", yaml: "services:\n  'web{': {service: web}\n", want: `upstream "web{"`},
		{name: "ErrPortNameInDefaults", yaml: "defaults: {port_name: metrics}\n", want: `defaults has the key "port_name", which picks the records of one upstream: set it in an entry under services`},
		{name: "ErrTagsInDefaults", yaml: "defaults: {tags: [canary]}\n", want: `defaults has the key "tags"`},
		{name: "ErrUnknownEntryKey", yaml: "services:\n  web: {tag: canary}\n", want: `services.web has the unknown key "tag" (use service, port_name, tags, balance`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.yml")
			os.WriteFile(p, []byte(tt.yaml), 0o644)
			_, err := LoadConfig(p)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestBuild_ErrBadUpstreamName(t *testing.T) {
	c := Config{UpstreamName: "docker {{.Name}}"}
	_, _, err := c.Build(skydns.DefaultPrefix, domain, map[string][]byte{key(t, "web", "a"): []byte(`{"host":"10.0.0.1","port":1,"ttl":1}`)})
	if err == nil || !strings.Contains(err.Error(), `"docker web"`) {
		t.Fatalf("error %v, want one naming \"docker web\"", err)
	}
}

// TestDiff compares Diff with GNU patch: applying the diff to old must give new.
func TestDiff(t *testing.T) {
	testenv.Need(t, "patch")
	tests := []struct{ name, old, new string }{
		{name: "equal", old: "a\nb\n", new: "a\nb\n"},
		{name: "from-empty", old: "", new: "a\nb\n"},
		{name: "to-empty", old: "a\nb\n", new: ""},
		{name: "middle", old: "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", new: "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n"},
		{name: "two-hunks", old: strings.Repeat("x\n", 3) + "a\n" + strings.Repeat("y\n", 10) + "b\n" + strings.Repeat("z\n", 3), new: strings.Repeat("x\n", 3) + "A\n" + strings.Repeat("y\n", 10) + "B\nB2\n" + strings.Repeat("z\n", 3)},
		{name: "append", old: "a\nb\nc\n", new: "a\nb\nc\nd\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Diff("old", "new", []byte(tt.old), []byte(tt.new))
			if tt.old == tt.new {
				if d != "" {
					t.Fatalf("diff of equal inputs: %q", d)
				}
				return
			}
			dir := t.TempDir()
			f := filepath.Join(dir, "f")
			os.WriteFile(f, []byte(tt.old), 0o644)
			cmd := exec.Command("patch", "-s", f)
			cmd.Stdin = strings.NewReader(d)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("patch rejects the diff: %v\n%s\n%s", err, out, d)
			}
			got, _ := os.ReadFile(f)
			if string(got) != tt.new {
				t.Fatalf("patched = %q, want %q\ndiff:\n%s", got, tt.new, d)
			}
		})
	}
}
