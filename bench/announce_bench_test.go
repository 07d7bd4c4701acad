package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/rundock/rundock/internal/apply"
	"github.com/rundock/rundock/internal/lease"
	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/testenv"
)

// influxdb is the original invocation, as the Ansible module receives it (strings).
func influxdb(name, svDir string) map[string]any {
	return map[string]any{
		"state": "present", "name": name, "image": "tutum/influxdb:latest",
		"args":     "--volumes-from data.influxdb -p $PRIVATE_IP:8083:8083",
		"announce": "8086", "port": "8086",
		"sv_dir": svDir, "service_dir": svDir + "/service", "log_dir": svDir + "/log",
	}
}

// BenchmarkSpecFromMap parses and validates the original influxdb invocation, as the
// Ansible module receives it (every value a string).
func BenchmarkSpecFromMap(b *testing.B) {
	m := influxdb("influxdb", "/etc/sv")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := spec.FromMap(m, "host-1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender renders the influxdb service's runit tree in memory.
func BenchmarkRender(b *testing.B) {
	s, err := spec.FromMap(influxdb("influxdb", "/etc/sv"), "host-1")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := render.Render(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyPresent writes a tree to disk (new: a new service each iteration) or
// compares it with the identical tree there (unchanged), through the engine the CLI
// and the module share. Both read the container state from the real Docker engine.
func BenchmarkApplyPresent(b *testing.B) {
	ctx := context.Background()
	var dir string // each case its own sv_dir: apply reads the record keys of every tree in it
	one := func(name string) {
		s, err := spec.FromMap(influxdb(name, dir), "host-1")
		if err != nil {
			b.Fatal(err)
		}
		t, err := apply.Render(s)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := apply.Apply(ctx, s, t, apply.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("name=new", func(b *testing.B) {
		dir = b.TempDir()
		i := 0
		for b.Loop() {
			i++
			one(fmt.Sprintf("rdbench-new-%d", i))
		}
	})
	b.Run("name=unchanged", func(b *testing.B) {
		dir = b.TempDir()
		one("rdbench-same")
		for b.Loop() {
			one("rdbench-same")
		}
	})
}

// BenchmarkRecord builds and parses a SkyDNS record and its key.
func BenchmarkRecord(b *testing.B) {
	r := skydns.Record{Host: "10.0.0.1", Port: 8086, TTL: 30}
	b.Run("name=encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = r.Encode()
		}
	})
	v := []byte(r.Encode())
	b.Run("name=decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := skydns.Decode(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("name=key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := skydns.InstanceKey(skydns.DefaultPrefix, "s.prod.example.com", "influxdb", "host-1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLease measures the announcer's etcd operations against an embedded etcd on
// loopback: announce (grant + put + start keep-alive) followed by withdraw (delete +
// revoke), as on every container start and stop; and one keep-alive round trip.
func BenchmarkLease(b *testing.B) {
	e := testenv.StartEtcd(b)
	c := testenv.WireClient(b, e.Endpoint)
	ctx := context.Background()
	key, _ := skydns.InstanceKey(skydns.DefaultPrefix, "s.prod.example.com", "bench", "host-1")
	value := skydns.Record{Host: "10.0.0.1", Port: 8086, TTL: 30}.Encode()
	b.Run("op=announce+withdraw", func(b *testing.B) {
		for b.Loop() {
			h := &lease.Holder{Client: c, Key: key, TTL: 30}
			if err := h.Put(ctx, value); err != nil {
				b.Fatal(err)
			}
			if err := h.Withdraw(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=keepalive", func(b *testing.B) {
		g, err := c.Grant(ctx, 30)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := c.KeepAliveOnce(ctx, g.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
