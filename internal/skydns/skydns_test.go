package skydns

import (
	"errors"
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
