package spec

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestFromMap_Refused holds values that once slipped through: each must be refused with a
// message naming the option, the value and the fix.
func TestFromMap_Refused(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		kind error
		want []string
	}{
		// TLS and auth over http:// (the client drops TLS, the password travels in clear).
		{"ErrCACertOverHTTP", map[string]any{"etcd_cacert": "/ca.pem", "etcd_endpoints": "https://a:2379,http://b:2379"}, ErrBadValue,
			[]string{"option etcd_endpoints", `"http://b:2379" is plain http, but etcd_cacert is set`, `use "https://b:2379"`}},
		{"ErrCertOverDefaultEndpoint", map[string]any{"etcd_cert": "/c.pem", "etcd_key": "/k.pem"}, ErrBadValue,
			[]string{"option etcd_endpoints", `"http://127.0.0.1:2379"`, "etcd_cert, etcd_key", `"https://127.0.0.1:2379"`}},
		{"ErrUserOverHTTP", map[string]any{"etcd_user": "web", "etcd_password_file": "/pw", "etcd_endpoints": "http://e:2379"}, ErrBadValue,
			[]string{"option etcd_endpoints", `"http://e:2379"`, "etcd_user", `"https://e:2379"`}},
		// Blocked flags with a placeholder in the value.
		{"ErrArgsNamePlaceholder", map[string]any{"args": "--name=$PRIVATE_IP"}, ErrBadArgs, []string{"option args", "--name=$PRIVATE_IP"}},
		{"ErrArgsNamePlaceholderQuoted", map[string]any{"args": `"--name=web-${PUBLIC_IP}"`}, ErrBadArgs, []string{"option args", "--name=web-$PUBLIC_IP"}},
		{"ErrArgsRestartPlaceholder", map[string]any{"args": "-e A=1 --restart=$ANNOUNCE_IP"}, ErrBadArgs, []string{"option args", "--restart=$ANNOUNCE_IP"}},
		{"ErrArgsNameGlued", map[string]any{"args": "--name$PRIVATE_IP"}, ErrBadArgs, []string{"option args", "--name$PRIVATE_IP"}},
		{"ErrArgsDetachPlaceholder", map[string]any{"args": "-d$PRIVATE_IP"}, ErrBadArgs, []string{"option args", "-d$PRIVATE_IP", "detaches"}},
		// Only container:NAME takes a colon.
		{"ErrNetworkColon", map[string]any{"network": "bridge:--privileged"}, ErrBadValue, []string{"option network", `"bridge:--privileged"`, "container:NAME"}},
		{"ErrNetworkHostColon", map[string]any{"network": "host:x"}, ErrBadValue, []string{"option network", `"host:x"`}},
		{"ErrNetworkContainerEmpty", map[string]any{"network": "container:"}, ErrBadValue, []string{"option network", `"container:"`}},
		{"ErrNetworkContainerTwoColons", map[string]any{"network": "container:a:b"}, ErrBadValue, []string{"option network", `"container:a:b"`}},
		// Invisible format characters.
		{"ErrBidiOverride", map[string]any{"env": map[string]any{"GREETING": "hello\u202edlrow"}}, ErrBadValue, []string{"option env", "U+202E", "invisible"}},
		{"ErrZeroWidthSpace", map[string]any{"image": "nginx\u200b"}, ErrBadValue, []string{"option image", "U+200B"}},
		{"ErrZeroWidthJoinerArgs", map[string]any{"args": "-e A=\u200d1"}, ErrBadValue, []string{"option args", "U+200D"}},
		{"ErrBOMInCommand", map[string]any{"command": []any{"\ufeffserve"}}, ErrBadValue, []string{"option command", "U+FEFF"}},
		{"ErrKelvinHostname", map[string]any{"hostname": "\u212aube"}, ErrBadValue, []string{"option hostname"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]any{"name": "web", "image": "nginx"}
			for k, v := range tt.in {
				m[k] = v
			}
			_, err := FromMap(m, "h")
			if err == nil {
				t.Fatalf("FromMap(%v) succeeded; want an error", tt.in)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %q is not %v", err, tt.kind)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestFromMap_Accepted are the neighbours of the refused values, which must still work.
func TestFromMap_Accepted(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
	}{
		{"TLSOverHTTPS", map[string]any{"etcd_cacert": "/ca.pem", "etcd_cert": "/c.pem", "etcd_key": "/k.pem", "etcd_endpoints": "https://a:2379,https://b:2379"}},
		{"UserOverHTTPS", map[string]any{"etcd_user": "web", "etcd_password_file": "/pw", "etcd_endpoints": "https://a:2379"}},
		{"PlainHTTP", map[string]any{"etcd_endpoints": "http://a:2379"}},
		{"PlaceholderValue", map[string]any{"args": "--label ip=$PRIVATE_IP -e HOST=$PUBLIC_IP --add-host=self:$PRIVATE_IP"}},
		{"PlaceholderWord", map[string]any{"args": "-e X $PRIVATE_IP"}},
		{"NetworkContainer", map[string]any{"network": "container:db"}},
		{"NetworkName", map[string]any{"network": "my-net.1"}},
		{"VisibleUnicode", map[string]any{"env": map[string]any{"GREETING": "grüß dich, 世界"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]any{"name": "web", "image": "nginx"}
			for k, v := range tt.in {
				m[k] = v
			}
			if _, err := FromMap(m, "h"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestFromMap_HostNameNotALabel: a host named my_host runs services that do not announce;
// one that announces is told to set instance, with the host name in the message.
func TestFromMap_HostNameNotALabel(t *testing.T) {
	for _, host := range []string{"my_host", "my_host.example.com", "\u212aube"} {
		s, err := FromMap(map[string]any{"name": "web", "image": "nginx"}, host)
		if err != nil {
			t.Fatalf("host %q, no announce: %v", host, err)
		}
		if s.Hostname != "web" || s.Instance != "" {
			t.Errorf("host %q: hostname %q, instance %q; want web and none", host, s.Hostname, s.Instance)
		}
		_, err = FromMap(map[string]any{"name": "web", "image": "nginx", "announce": 80}, host)
		if err == nil || !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "option instance") ||
			!strings.Contains(err.Error(), fmt.Sprintf("%q", strings.Split(host, ".")[0])) || !strings.Contains(err.Error(), "set instance") {
			t.Errorf("host %q, announce: error %v; want one naming the host name and saying to set instance", host, err)
		}
		if _, err := FromMap(map[string]any{"name": "web", "image": "nginx", "announce": 80, "instance": "back-1"}, host); err != nil {
			t.Errorf("host %q, announce with instance: %v", host, err)
		}
	}
	if err := checkHostnameErr("my_host"); err != nil {
		t.Error(err)
	}
}

// checkHostnameErr: a hostname set by hand is still checked, whatever the host is called.
func checkHostnameErr(host string) error {
	_, err := FromMap(map[string]any{"name": "web", "image": "nginx", "hostname": "a_b"}, host)
	if err == nil || !strings.Contains(err.Error(), "option hostname") {
		return fmt.Errorf("hostname a_b on host %s: error %v, want one about hostname", host, err)
	}
	return nil
}

// TestParseYAML_NumbersKeepText: a YAML number where text goes keeps the text it was
// written as; integers read that text as decimal, as YAML 1.2 does.
func TestParseYAML_NumbersKeepText(t *testing.T) {
	in := "name: web\nimage: nginx\nannounce: 0080\nenv:\n  UMASK: 0755\n  HEX: 0x1F\n  VERSION: 1.10\n  BIG: 12345678901234567890\n  EXP: 1e3\n  EMPTY: ~\n" +
		"user: 0001\ncommand: [serve, 010]\nports: [8080:80]\n"
	ss, err := ParseYAML([]byte(in), "h")
	if err != nil {
		t.Fatal(err)
	}
	s := ss[0]
	want := map[string]string{"UMASK": "0755", "HEX": "0x1F", "VERSION": "1.10", "BIG": "12345678901234567890", "EXP": "1e3", "EMPTY": ""}
	for k, v := range want {
		if s.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, s.Env[k], v)
		}
	}
	if s.User != "0001" || strings.Join(s.Command, " ") != "serve 010" || s.Announce != 80 {
		t.Errorf("user %q, command %q, announce %d; want 0001, [serve 010], 80", s.User, s.Command, s.Announce)
	}
	if _, err := ParseYAML([]byte("name: web\nimage: nginx\nenv: {ON: true}\n"), "h"); err == nil || !strings.Contains(err.Error(), "boolean true") {
		t.Errorf("env with a YAML boolean: error %v, want one saying to quote it", err)
	}
}

func TestParseYAML_Aliases(t *testing.T) {
	in := "- &base\n  name: a\n  image: nginx\n  env: &env {A: 1}\n- <<: *base\n  name: b\n  env: *env\n"
	ss, err := ParseYAML([]byte(in), "h")
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 || ss[1].Name != "b" || ss[1].Image != "nginx" || ss[1].Env["A"] != "1" {
		t.Fatalf("got %+v", ss)
	}
	// a billion laughs: ten levels of ten aliases each
	var b strings.Builder
	b.WriteString("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	if _, err := ParseYAML([]byte(b.String()), "h"); err == nil || !strings.Contains(err.Error(), "expands to more than") {
		t.Fatalf("alias bomb: %v", err)
	}
}

// TestParseYAML_ManyKeys parses services with 200k env keys, and refuses one with a
// duplicate among them. yaml.v3's decoding compared every key with every other (100k keys
// took 44 s, 200k several minutes); this must stay linear.
func TestParseYAML_ManyKeys(t *testing.T) {
	const n = 200_000
	var b strings.Builder
	b.WriteString("name: web\nimage: nginx\nenv:\n")
	for i := range n {
		fmt.Fprintf(&b, "  K%d: v\n", i)
	}
	ss, err := ParseYAML([]byte(b.String()), "h")
	if err != nil {
		t.Fatal(err)
	}
	if len(ss[0].Env) != n {
		t.Fatalf("%d env keys, want %d", len(ss[0].Env), n)
	}
	b.WriteString("  K7: again\n")
	if _, err := ParseYAML([]byte(b.String()), "h"); err == nil || !strings.Contains(err.Error(), `mapping key "K7" already defined at line 11`) {
		t.Fatalf("duplicate key: %v", err)
	}
}
