package lease

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rundock/rundock/internal/etcdclient"
	"github.com/rundock/rundock/internal/testenv"
)

func setup(t *testing.T) (*clientv3.Client, *Holder) {
	t.Helper()
	e := testenv.StartEtcd(t)
	// the announcer's client: its keepalive settings are what the holder is tuned against
	cli, err := etcdclient.New(etcdclient.Config{Endpoints: []string{e.Endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, &Holder{Client: cli, Key: "/skydns/test/x", TTL: 5}
}

func get(t *testing.T, cli *clientv3.Client, key string) (string, clientv3.LeaseID) {
	t.Helper()
	resp, err := cli.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0
	}
	return string(resp.Kvs[0].Value), clientv3.LeaseID(resp.Kvs[0].Lease)
}

func TestHolder_PutWithdraw(t *testing.T) {
	cli, h := setup(t)
	ctx := context.Background()
	if err := h.Put(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	id := h.ID()
	if err := h.Put(ctx, "b"); err != nil { // same lease, new value
		t.Fatal(err)
	}
	if v, l := get(t, cli, h.Key); v != "b" || l != id || id == 0 {
		t.Fatalf("got %q on lease %x, want \"b\" on %x", v, l, id)
	}
	time.Sleep(6 * time.Second) // past the TTL: the keepalive must have renewed it
	if v, _ := get(t, cli, h.Key); v != "b" {
		t.Fatal("key expired although the keepalive runs")
	}
	if err := h.Withdraw(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := get(t, cli, h.Key); v != "" || h.ID() != 0 || h.Lost() != nil {
		t.Fatalf("after Withdraw: value %q, lease %x", v, h.ID())
	}
	ttl, err := cli.TimeToLive(ctx, id)
	if err != nil || ttl.TTL != -1 {
		t.Fatalf("lease %x: TTL %d, %v; want revoked", id, ttl.TTL, err)
	}
	if err := h.Withdraw(ctx); err != nil { // nothing held: still fine
		t.Fatal(err)
	}
}

func TestHolder_Lost(t *testing.T) {
	cli, h := setup(t)
	ctx := context.Background()
	if err := h.Put(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Revoke(ctx, h.ID()); err != nil { // what an expiry looks like to the holder
		t.Fatal(err)
	}
	select {
	case <-h.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("Lost not closed after the lease was revoked")
	}
	h.Drop()
	if err := h.Put(ctx, "again"); err != nil {
		t.Fatal(err)
	}
	if v, l := get(t, cli, h.Key); v != "again" || l != h.ID() {
		t.Fatalf("after a new Put: %q on %x", v, l)
	}
}
