package skydns

import (
	"errors"
	"strings"
	"testing"
)

func TestInstanceKey(t *testing.T) {
	tests := []struct {
		name, domain, svc, instance string
		want                        string
		err                         error
	}{
		{name: "original layout", domain: "s.prod.example.com", svc: "influxdb", instance: "node-back-1", want: "/skydns/com/example/prod/s/influxdb/node-back-1"},
		{name: "lowercased", domain: "S.Prod.Example.COM", svc: "Web", instance: "Host-1", want: "/skydns/com/example/prod/s/web/host-1"},
		{name: "trailing dot", domain: "s.example.com.", svc: "web", instance: "h", want: "/skydns/com/example/s/web/h"},
		{name: "ErrBadName", domain: "s.example.com", svc: "we b", instance: "h", err: ErrBadLabel},
		{name: "ErrBadInstance", domain: "s.example.com", svc: "web", instance: "a/b", err: ErrBadLabel},
		{name: "ErrEmptyLabel", domain: "s..example.com", svc: "web", instance: "h", err: ErrBadLabel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := InstanceKey(DefaultPrefix, tt.domain, tt.svc, tt.instance)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("key = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSplitKey(t *testing.T) {
	name, inst, ok := SplitKey("/skydns", "s.prod.example.com", "/skydns/com/example/prod/s/web/host-1")
	if !ok || name != "web" || inst != "host-1" {
		t.Fatalf("SplitKey = %q %q %v", name, inst, ok)
	}
	for _, k := range []string{"/skydns/com/example/prod/s/web", "/skydns/com/example/prod/s/web/a/b", "/other/web/h"} {
		if _, _, ok := SplitKey("/skydns", "s.prod.example.com", k); ok {
			t.Errorf("SplitKey(%q) ok, want not", k)
		}
	}
}

func TestRecord_AlwaysWritesTTL(t *testing.T) {
	got := Record{Host: "10.0.0.1", Port: 8086}.Encode()
	if want := `{"host":"10.0.0.1","port":8086,"ttl":0}`; got != want {
		t.Fatalf("Encode = %s, want %s", got, want)
	}
	r, err := Decode([]byte(`{"host":"10.0.0.1","port":8086,"ttl":30,"weight":5}`))
	if err != nil || r.Port != 8086 || r.TTL != 30 || r.Weight != 5 {
		t.Fatalf("Decode = %+v, %v", r, err)
	}
	if _, err := Decode([]byte(`{"port":1}`)); err == nil {
		t.Fatal("Decode of a record without host succeeded")
	}
}

func TestNamedPortAndTextKeys(t *testing.T) {
	const p, d = "/skydns", "s.prod.example.com"
	k, err := PortKey(p, d, "Web", "Metrics", "Host-1")
	if want := "/skydns/com/example/prod/s/web/_tcp/_metrics/host-1"; err != nil || k != want {
		t.Fatalf("PortKey = %q, %v; want %q", k, err, want)
	}
	if name, port, inst, ok := SplitPortKey(p, d, k); !ok || name != "web" || port != "metrics" || inst != "host-1" {
		t.Fatalf("SplitPortKey = %q %q %q %v", name, port, inst, ok)
	}
	tk, err := TextKey(p, d, "web", "host-1")
	if want := "/skydns/com/example/prod/s/web/_txt/host-1"; err != nil || tk != want {
		t.Fatalf("TextKey = %q, %v; want %q", tk, err, want)
	}
	if name, inst, ok := SplitTextKey(p, d, tk); !ok || name != "web" || inst != "host-1" {
		t.Fatalf("SplitTextKey = %q %q %v", name, inst, ok)
	}
	// Neither is an instance key, and an instance key is neither.
	for _, key := range []string{k, tk} {
		if _, _, ok := SplitKey(p, d, key); ok {
			t.Errorf("SplitKey(%q) ok, want not", key)
		}
	}
	if _, _, _, ok := SplitPortKey(p, d, "/skydns/com/example/prod/s/web/host-1"); ok {
		t.Error("SplitPortKey of an instance key ok")
	}
	if _, _, ok := SplitTextKey(p, d, "/skydns/com/example/prod/s/web/host-1"); ok {
		t.Error("SplitTextKey of an instance key ok")
	}
	for _, bad := range []string{"", "9100", "-m", "metrics-and-more-x", "a_b", "m/x"} {
		if _, err := PortKey(p, d, "web", bad, "h"); !errors.Is(err, ErrBadLabel) {
			t.Errorf("PortKey port %q: err = %v, want ErrBadLabel", bad, err)
		}
	}
}

func TestMetaText(t *testing.T) {
	m := Meta{Image: "registry.example/web:1.2", Tags: []string{"canary", "eu"}}
	text := MetaText("Host-1", m)
	if want := "instance=host-1 image=registry.example/web:1.2 tags=canary,eu"; text != want {
		t.Fatalf("MetaText = %q, want %q", text, want)
	}
	inst, got := ParseMeta(text + " future=x")
	if inst != "host-1" || got.Image != m.Image || strings.Join(got.Tags, ",") != "canary,eu" {
		t.Fatalf("ParseMeta = %q %+v", inst, got)
	}
	if text := MetaText("h", Meta{}); text != "instance=h" {
		t.Fatalf("MetaText without metadata = %q", text)
	}
	if _, err := Decode([]byte(`{"text":"instance=h","ttl":5,"group":"web"}`)); err != nil {
		t.Fatalf("Decode of a TXT record: %v", err)
	}
}

func TestSplitFamilyKey(t *testing.T) {
	const p, d = "/skydns", "s.prod.example.com"
	k, _ := InstanceKey(p, d, "web", "h1")
	for key, want := range map[string]string{k: "", FamilyKey(k, FamilyIPv4): "ipv4", FamilyKey(k, FamilyIPv6): "ipv6"} {
		name, inst, fam, ok := SplitFamilyKey(p, d, key)
		if !ok || name != "web" || inst != "h1" || fam != want {
			t.Errorf("SplitFamilyKey(%q) = %q %q %q %v, want family %q", key, name, inst, fam, ok, want)
		}
	}
	for _, key := range []string{k + "/ipv5", k + "/ipv4/x", "/skydns/com/example/prod/s/web/_txt/h1", "/skydns/com/example/prod/s/web/_tcp/_m/h1"} {
		if _, _, _, ok := SplitFamilyKey(p, d, key); ok {
			t.Errorf("SplitFamilyKey(%q) ok, want not", key)
		}
	}
}
