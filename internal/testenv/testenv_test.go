package testenv

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestEtcdAndCoreDNS(t *testing.T) {
	e := StartEtcd(t)
	dns := StartCoreDNS(t, "s.prod.example.com", e.Endpoint)
	c := EtcdClient(t, e.Endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, "/skydns/com/example/prod/s/web/h1", `{"host":"10.1.2.3","port":8080,"ttl":30}`); err != nil {
		t.Fatal(err)
	}
	if got := dns.Dig(t, "web.s.prod.example.com", "A"); len(got) != 1 || got[0] != "10.1.2.3" {
		t.Fatalf("A = %v, want [10.1.2.3]", got)
	}
	e.Restart(t)
	if _, err := c.Get(ctx, "/skydns", clientv3.WithPrefix()); err != nil {
		t.Fatalf("get after restart: %v", err)
	}
}
