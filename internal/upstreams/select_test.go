package upstreams

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/testenv"
)

func portKey(t testing.TB, name, port, inst string) string {
	t.Helper()
	k, err := skydns.PortKey(skydns.DefaultPrefix, domain, name, port, inst)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func textKey(t testing.TB, name, inst string) string {
	t.Helper()
	k, err := skydns.TextKey(skydns.DefaultPrefix, domain, name, inst)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// meta is the value of an instance's metadata record, as the announcer writes it.
func meta(inst string, tags ...string) string {
	return skydns.Record{Text: skydns.MetaText(inst, skydns.Meta{Image: "web:1", Tags: tags}), TTL: 60, Group: "web"}.Encode()
}

// serversByUpstream is each upstream's server addresses, in rendering order.
func serversByUpstream(d Data) map[string][]string {
	out := map[string][]string{}
	for _, u := range d.Upstreams {
		out[u.Name] = []string{}
		for _, s := range u.Servers {
			out[u.Name] = append(out[u.Name], s.Addr)
		}
	}
	return out
}

func build(t *testing.T, c Config, kvs map[string]string) (Data, []Skipped) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	b := map[string][]byte{}
	for k, v := range kvs {
		b[k] = []byte(v)
	}
	d, skipped, err := c.Build(skydns.DefaultPrefix, domain, b)
	if err != nil {
		t.Fatal(err)
	}
	return d, skipped
}

// TestBuild_Select: port_name takes an upstream's servers from the named port's records
// and tags keeps the instances whose metadata lists every tag; the main records and the
// metadata of other upstreams do not leak in, and with no services listed nothing but the
// main records counts.
func TestBuild_Select(t *testing.T) {
	web := func(inst, host string, port int) (string, string) {
		return key(t, "web", inst), skydns.Record{Host: host, Port: port, TTL: 60, Group: "web"}.Encode()
	}
	metrics := func(inst, host string, port int) (string, string) {
		return portKey(t, "web", "metrics", inst), skydns.Record{Host: host, Port: port, TTL: 60, Group: skydns.PortGroup("web", "metrics")}.Encode()
	}
	kv := func(pairs ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(pairs); i += 2 {
			m[pairs[i]] = pairs[i+1]
		}
		return m
	}
	merge := func(ms ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			maps.Copy(out, m)
		}
		return out
	}
	pair := func(k, v string) map[string]string { return kv(k, v) }
	// Five instances of web, their metrics ports and metadata: a canary, b canary+eu,
	// c eu, d no metadata, e metadata without tags.
	fleet := merge(
		pair(web("a", "10.0.0.1", 8080)), pair(web("b", "10.0.0.2", 8080)), pair(web("c", "10.0.0.3", 8080)),
		pair(web("d", "10.0.0.4", 8080)), pair(web("e", "10.0.0.5", 8080)),
		pair(metrics("a", "10.0.0.1", 9100)), pair(metrics("b", "10.0.0.2", 9100)), pair(metrics("c", "10.0.0.3", 9100)),
		kv(textKey(t, "web", "a"), meta("a", "canary"), textKey(t, "web", "b"), meta("b", "canary", "eu"),
			textKey(t, "web", "c"), meta("c", "eu"), textKey(t, "web", "e"), meta("e")),
		kv(portKey(t, "web", "admin", "a"), `{"host":"10.0.0.1","port":9000,"ttl":60}`),
	)
	all := []string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.4:8080", "10.0.0.5:8080"}
	tests := []struct {
		name    string
		config  Config
		kvs     map[string]string
		want    map[string][]string // upstream name → servers
		skipped []string            // substrings of the skipped records' keys and reasons, in order
	}{
		{name: "unlisted: main records only", kvs: fleet,
			want: map[string][]string{"docker_web": all}},
		{name: "unlisted: a service without a valid record gets no upstream, as before",
			kvs:     merge(fleet, kv(key(t, "api", "lo"), `{"host":"127.0.0.1","port":80,"ttl":60}`)),
			want:    map[string][]string{"docker_web": all},
			skipped: []string{"api/lo: host 127.0.0.1 is a loopback address"}},
		{name: "port_name picks the named port", config: Config{ServiceMap: map[string]Entry{
			"web": {}, "web_metrics": {Service: "web", PortName: "metrics"}}}, kvs: fleet,
			want: map[string][]string{"docker_web": all, "docker_web_metrics": {"10.0.0.1:9100", "10.0.0.2:9100", "10.0.0.3:9100"}}},
		{name: "port_name on the service's own key", config: Config{ServiceMap: map[string]Entry{
			"web": {PortName: "admin"}}}, kvs: fleet,
			want: map[string][]string{"docker_web": {"10.0.0.1:9000"}}},
		{name: "port_name without records is down", config: Config{ServiceMap: map[string]Entry{
			"web_debug": {Service: "web", PortName: "debug"}}}, kvs: fleet,
			want: map[string][]string{"docker_web_debug": {}}},
		{name: "tags", config: Config{ServiceMap: map[string]Entry{
			"web":           {},
			"web_canary":    {Service: "web", Tags: []string{"canary"}},
			"web_canary_eu": {Service: "web", Tags: []string{"eu", "canary"}},
			"web_us":        {Service: "web", Tags: []string{"us"}},
		}}, kvs: fleet, want: map[string][]string{
			"docker_web":           all,
			"docker_web_canary":    {"10.0.0.1:8080", "10.0.0.2:8080"},
			"docker_web_canary_eu": {"10.0.0.2:8080"},
			"docker_web_us":        {},
		}},
		{name: "tags and port_name", config: Config{ServiceMap: map[string]Entry{
			"web_eu_metrics": {Service: "web", PortName: "metrics", Tags: []string{"eu"}}}}, kvs: fleet,
			want: map[string][]string{"docker_web_eu_metrics": {"10.0.0.2:9100", "10.0.0.3:9100"}}},
		{name: "tags of another service do not count", config: Config{ServiceMap: map[string]Entry{
			"api_canary": {Service: "api", Tags: []string{"canary"}}}},
			kvs:  merge(fleet, kv(key(t, "api", "a"), `{"host":"10.0.1.1","port":80,"ttl":60}`)),
			want: map[string][]string{"docker_api_canary": {}}},
		{name: "named port records are checked like main ones", config: Config{ServiceMap: map[string]Entry{
			"web_metrics": {Service: "web", PortName: "metrics"}}},
			kvs: merge(
				pair(metrics("a", "10.0.0.1", 9100)), pair(metrics("lo", "127.0.0.1", 9100)),
				pair(metrics("meta", "169.254.169.254", 80)), pair(metrics("name", "metrics.example.net", 9100)),
				pair(metrics("noport", "10.0.0.2", 0)), pair(metrics("dup", "10.0.0.1", 9100)),
				kv(portKey(t, "web", "metrics", "json"), `{"host":"10.0.0.3"`)),
			want: map[string][]string{"docker_web_metrics": {"10.0.0.1:9100"}},
			skipped: []string{
				"_metrics/dup: address 10.0.0.1:9100 is announced by " + portKey(t, "web", "metrics", "a"),
				"_metrics/json: cannot decode",
				"_metrics/lo: host 127.0.0.1 is a loopback address",
				"_metrics/meta: host 169.254.169.254 is a link-local address",
				`_metrics/name: host "metrics.example.net" is not an IP address`,
				"_metrics/noport: port 0 is not 1-65535 (a record of the named port metrics carries the port",
			}},
		{name: "allow_networks applies to named ports", config: Config{
			AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			ServiceMap:    map[string]Entry{"web": {PortName: "metrics"}}},
			kvs:     merge(pair(metrics("lo", "127.0.0.2", 9100)), pair(metrics("a", "10.0.0.1", 9100))),
			want:    map[string][]string{"docker_web": {"127.0.0.2:9100"}},
			skipped: []string{"_metrics/a: host 10.0.0.1 is not in allow_networks"}},
		{name: "bad metadata: the instance is in no tagged upstream", config: Config{ServiceMap: map[string]Entry{
			"web": {}, "web_canary": {Service: "web", Tags: []string{"canary"}}}},
			kvs: merge(pair(web("a", "10.0.0.1", 8080)), pair(web("b", "10.0.0.2", 8080)), pair(web("c", "10.0.0.3", 8080)),
				pair(web("d", "10.0.0.4", 8080)),
				kv(textKey(t, "web", "a"), `{"text":"instance=a tags=canary"`, // not JSON
					textKey(t, "web", "b"), meta("a", "canary"), // names another instance
					textKey(t, "web", "c"), `{"host":"10.0.0.3","ttl":60}`,
					textKey(t, "web", "d"), `{"text":"tags=canary","ttl":60}`)), // no instance= is fine
			want: map[string][]string{"docker_web": {"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.4:8080"}, "docker_web_canary": {"10.0.0.4:8080"}},
			skipped: []string{
				"_txt/a: cannot decode",
				`_txt/b: metadata names the instance "a", its key "b"`,
				"_txt/c: metadata record has no text",
			}},
		{name: "a record two upstreams skip is reported once", config: Config{ServiceMap: map[string]Entry{
			"web": {}, "web_lc": {Service: "web", Settings: Settings{Balance: "least_conn"}}}},
			kvs:     merge(pair(web("a", "10.0.0.1", 8080)), pair(web("lo", "127.0.0.1", 8080))),
			want:    map[string][]string{"docker_web": {"10.0.0.1:8080"}, "docker_web_lc": {"10.0.0.1:8080"}},
			skipped: []string{"web/lo: host 127.0.0.1 is a loopback address"}},
		{name: "upstream_name sees the key and the service", config: Config{UpstreamName: "{{.Service}}__{{.Name}}", ServiceMap: map[string]Entry{
			"web": {}, "web_canary": {Service: "web", Tags: []string{"canary"}}}}, kvs: fleet,
			want: map[string][]string{"web__web": all, "web__web_canary": {"10.0.0.1:8080", "10.0.0.2:8080"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, skipped := build(t, tt.config, tt.kvs)
			if got := serversByUpstream(d); !maps.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("upstreams %v, want %v", got, tt.want)
			}
			var got []string
			for _, s := range skipped {
				got = append(got, s.String())
			}
			ok := len(got) == len(tt.skipped)
			for i := 0; ok && i < len(got); i++ {
				ok = strings.Contains(got[i], tt.skipped[i])
			}
			if !ok {
				t.Errorf("skipped:\n%s\nwant, in order, lines containing:\n%s", strings.Join(got, "\n"), strings.Join(tt.skipped, "\n"))
			}
		})
	}
}

// TestBuild_MetadataRemoved: an instance whose metadata goes away leaves the tagged
// upstream at the next build and stays in the untagged one; the tagged upstream, left
// without instances, still renders (down).
func TestBuild_MetadataRemoved(t *testing.T) {
	c := Config{ServiceMap: map[string]Entry{"web": {}, "web_canary": {Service: "web", Tags: []string{"canary"}}}}
	kvs := map[string]string{
		key(t, "web", "a"):     `{"host":"10.0.0.1","port":8080,"ttl":60}`,
		textKey(t, "web", "a"): meta("a", "canary"),
	}
	steps := []struct {
		name string
		edit func()
		want []string // docker_web_canary's servers
	}{
		{name: "tagged", edit: func() {}, want: []string{"10.0.0.1:8080"}},
		{name: "metadata removed", edit: func() { delete(kvs, textKey(t, "web", "a")) }, want: []string{}},
		{name: "metadata back without the tag", edit: func() { kvs[textKey(t, "web", "a")] = meta("a", "stable") }, want: []string{}},
		{name: "tag back", edit: func() { kvs[textKey(t, "web", "a")] = meta("a", "stable", "canary") }, want: []string{"10.0.0.1:8080"}},
	}
	for _, st := range steps {
		st.edit()
		got := serversByUpstream(func() Data { d, _ := build(t, c, kvs); return d }())
		if !slices.Equal(got["docker_web_canary"], st.want) || !slices.Equal(got["docker_web"], []string{"10.0.0.1:8080"}) {
			t.Errorf("%s: upstreams %v, want docker_web_canary %v and docker_web [10.0.0.1:8080]", st.name, got, st.want)
		}
	}
}

// TestBuild_HostileMetadata: whatever an instance's metadata says, none of it reaches
// the rendering, which the real nginx accepts; a tag that is there still selects.
func TestBuild_HostileMetadata(t *testing.T) {
	testenv.Need(t, "nginx")
	const marker = "EVIL"
	tests := []struct {
		name, text string
		canary     bool // whether a is in docker_web_canary
	}{
		{name: "spaces", text: "instance=a tags=canary image=EVIL x y z", canary: true},
		{name: "quotes", text: `instance=a image="EVIL" tags='canary'`},
		{name: "semicolon", text: "instance=a tags=canary;server EVIL:80;"},
		{name: "braces", text: "instance=a tags=canary image=} server 6.6.6.6:80; upstream EVIL {", canary: true},
		{name: "newlines", text: "instance=a\ntags=canary\n}\nserver 6.6.6.6:80; # EVIL\n", canary: true},
		{name: "hostile tag", text: "instance=a tags=canary,}EVIL{,$EVIL,../EVIL", canary: true},
		{name: "huge", text: "instance=a tags=canary image=" + strings.Repeat(marker, 1<<18), canary: true},
		{name: "huge tag list", text: "instance=a tags=" + strings.Repeat("EVIL,", 1<<17) + "canary", canary: true},
		{name: "nul and control", text: "instance=a tags=canary\x00EVIL\x1b[2J"},
		{name: "not utf-8", text: "instance=a tags=canary image=\xff\xfeEVIL", canary: true},
	}
	c := Config{ServiceMap: map[string]Entry{"web": {}, "web_canary": {Service: "web", Tags: []string{"canary"}}}}
	tmpl, err := NewTemplate("built-in", DefaultTemplate)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kvs := map[string]string{
				key(t, "web", "a"):     `{"host":"10.0.0.1","port":8080,"ttl":60}`,
				textKey(t, "web", "a"): skydns.Record{Text: tt.text, TTL: 60, Group: "web"}.Encode(),
			}
			d, _ := build(t, c, kvs)
			want := []string{}
			if tt.canary {
				want = []string{"10.0.0.1:8080"}
			}
			if got := serversByUpstream(d)["docker_web_canary"]; !slices.Equal(got, want) {
				t.Errorf("docker_web_canary %v, want %v", got, want)
			}
			out, err := Render(tmpl, d)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(out), marker) || strings.Contains(string(out), "6.6.6.6") || len(out) > 1024 {
				t.Fatalf("metadata reached the rendering (%d bytes):\n%.2000s", len(out), out)
			}
			if err := nginxCheck(t, out); err != nil {
				t.Fatalf("nginx -t: %v\n%s", err, out)
			}
		})
	}
}

// TestBuild_ErrDuplicateName: two upstreams whose names nginx cannot tell apart (it
// compares them without case) fail the build, naming both and the fix.
func TestBuild_ErrDuplicateName(t *testing.T) {
	for _, tmpl := range []string{"docker_{{.Service}}", "{{if eq .Name \"web\"}}WEB{{else}}web{{end}}"} {
		c := Config{UpstreamName: tmpl, ServiceMap: map[string]Entry{"web": {}, "web_canary": {Service: "web", Tags: []string{"canary"}}}}
		_, _, err := c.Build(skydns.DefaultPrefix, domain, nil)
		if err == nil || !strings.Contains(err.Error(), "upstreams web and web_canary both get the name") || !strings.Contains(err.Error(), "upstream_name") {
			t.Errorf("%s: error %v, want one naming web, web_canary and upstream_name", tmpl, err)
		}
	}
}

// TestParseConfig_Entries reads service, port_name and tags next to the settings, and the
// old form (a service's own key) unchanged.
func TestParseConfig_Entries(t *testing.T) {
	c, err := ParseConfig([]byte(`defaults: {keepalive: 8}
services:
  web: {balance: least_conn}
  web_canary: {service: web, tags: [canary, eu], keepalive: 2}
  web_metrics:
    service: web
    port_name: metrics
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Entry{
		"web":         {Settings: Settings{Balance: "least_conn"}},
		"web_canary":  {Service: "web", Tags: []string{"canary", "eu"}, Settings: Settings{Keepalive: 2}},
		"web_metrics": {Service: "web", PortName: "metrics"},
	}
	if len(c.ServiceMap) != len(want) {
		t.Fatalf("entries %+v, want %+v", c.ServiceMap, want)
	}
	for l, w := range want {
		g := c.ServiceMap[l]
		if g.Service != w.Service || g.PortName != w.PortName || !slices.Equal(g.Tags, w.Tags) || g.Balance != w.Balance || g.Keepalive != w.Keepalive {
			t.Errorf("%s: %+v, want %+v", l, g, w)
		}
	}
	if s := c.settings("web_canary"); s.Keepalive != 2 {
		t.Errorf("web_canary settings %+v, want keepalive 2 over the defaults' 8", s)
	}
	if s := c.settings("web_metrics"); s.Keepalive != 8 {
		t.Errorf("web_metrics settings %+v, want the defaults' keepalive 8", s)
	}
}

// TestBuild_DualStack: a dual-stack instance (records INSTANCE/ipv4 and INSTANCE/ipv6, and
// the same below a named port) is one server, of the family the settings choose (ipv4 by
// default), beside single-stack instances of either family; listed or not.
func TestBuild_DualStack(t *testing.T) {
	rec := func(host string, port int) string {
		return skydns.Record{Host: host, Port: port, TTL: 60, Group: "web"}.Encode()
	}
	kvs := map[string]string{
		skydns.FamilyKey(key(t, "web", "a"), skydns.FamilyIPv4): rec("10.0.0.1", 80),
		skydns.FamilyKey(key(t, "web", "a"), skydns.FamilyIPv6): rec("fd00::1", 80),
		key(t, "web", "b"): rec("10.0.0.2", 80),
		key(t, "web", "c"): rec("fd00::3", 80),
		skydns.FamilyKey(portKey(t, "web", "metrics", "a"), skydns.FamilyIPv4): rec("10.0.0.1", 9100),
		skydns.FamilyKey(portKey(t, "web", "metrics", "a"), skydns.FamilyIPv6): rec("fd00::1", 9100),
	}
	six := "ipv6"
	tests := []struct {
		name string
		c    Config
		want map[string][]string
	}{
		{"unlisted", Config{},
			map[string][]string{"docker_web": {"10.0.0.1:80", "10.0.0.2:80", "[fd00::3]:80"}}},
		{"ipv6 by default", Config{Defaults: Settings{Family: six}},
			map[string][]string{"docker_web": {"10.0.0.2:80", "[fd00::1]:80", "[fd00::3]:80"}}},
		{"per entry", Config{ServiceMap: map[string]Entry{"web": {}, "web6": {Service: "web", Settings: Settings{Family: six}},
			"metrics": {Service: "web", PortName: "metrics"}}},
			map[string][]string{"docker_web": {"10.0.0.1:80", "10.0.0.2:80", "[fd00::3]:80"},
				"docker_web6":    {"10.0.0.2:80", "[fd00::1]:80", "[fd00::3]:80"},
				"docker_metrics": {"10.0.0.1:9100"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, skipped := build(t, tt.c, kvs)
			if got := serversByUpstream(d); !maps.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("servers %v, want %v (skipped %v)", got, tt.want, skipped)
			}
		})
	}
	if err := (&Config{Defaults: Settings{Family: "6"}}).Validate(); err == nil || !strings.Contains(err.Error(), `family "6": use ipv4 or ipv6`) {
		t.Errorf("family 6: %v, want an error naming the value and the fix", err)
	}
}
