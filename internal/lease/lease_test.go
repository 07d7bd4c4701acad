package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/etcd"
	"github.com/rundock/rundock/internal/etcdclient"
	"github.com/rundock/rundock/internal/testenv"
)

func setup(t *testing.T) (*etcd.Client, *Holder) {
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

func get(t *testing.T, cli *etcd.Client, key string) (string, etcd.LeaseID) {
	t.Helper()
	resp, err := cli.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0
	}
	return string(resp.Kvs[0].Value), etcd.LeaseID(resp.Kvs[0].Lease)
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

// TestHolder_OwnKeyOnly: a key on another live lease is never replaced nor deleted; a
// key on no lease (hand-written) is replaced by Put but not deleted by Withdraw.
func TestHolder_OwnKeyOnly(t *testing.T) {
	cli, h := setup(t)
	ctx := context.Background()
	other, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, h.Key, "theirs", other.ID); err != nil {
		t.Fatal(err)
	}
	err = h.Put(ctx, "mine")
	var held *HeldError
	if !errors.Is(err, ErrHeld) || !errors.As(err, &held) || held.Lease != other.ID || held.Value != "theirs" {
		t.Fatalf("Put over another live lease: %v, want a HeldError naming lease %x", err, other.ID)
	}
	if v, l := get(t, cli, h.Key); v != "theirs" || l != other.ID {
		t.Fatalf("after Put: %q on %x, want the other's record untouched", v, l)
	}
	if err := h.Put(ctx, "mine"); !errors.Is(err, ErrHeld) { // and not on the second try either
		t.Fatalf("second Put: %v, want ErrHeld", err)
	}
	if err := h.Withdraw(ctx); err != nil {
		t.Fatal(err)
	}
	if v, l := get(t, cli, h.Key); v != "theirs" || l != other.ID {
		t.Fatalf("after Withdraw: %q on %x, want the other's record untouched", v, l)
	}

	// The other lease goes: the key is free again.
	if _, err := cli.Revoke(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.Put(ctx, "mine"); err != nil {
		t.Fatal(err)
	}
	if v, l := get(t, cli, h.Key); v != "mine" || l != h.ID() {
		t.Fatalf("after the other lease went: %q on %x", v, l)
	}

	// A hand-written value on no lease: replaced by Put, left alone by Withdraw.
	if _, err := cli.Put(ctx, h.Key, "by hand", 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Put(ctx, "mine"); err != nil {
		t.Fatal(err)
	}
	if v, l := get(t, cli, h.Key); v != "mine" || l != h.ID() {
		t.Fatalf("hand-written value not replaced: %q on %x", v, l)
	}
	if _, err := cli.Put(ctx, h.Key, "by hand", 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Withdraw(ctx); err != nil {
		t.Fatal(err)
	}
	if v, l := get(t, cli, h.Key); v != "by hand" || l != 0 {
		t.Fatalf("Withdraw deleted a value that is not on its lease: %q on %x", v, l)
	}
}

// TestHolder_FormerLease: a key left on a lease the holder dropped (a put whose answer was
// lost, a lease etcd restored after a restart) is still the holder's: Put moves it to the
// new lease, Withdraw deletes it.
func TestHolder_FormerLease(t *testing.T) {
	cli, h := setup(t)
	ctx := context.Background()
	if err := h.Put(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	old := h.ID()
	h.Drop()
	if !h.Owns(old) || h.Owns(0) {
		t.Fatalf("Owns(%x) = false after Drop, or Owns(0) = true", old)
	}
	// Make the holder's view stale, as a lost answer does: the key changes on the old lease.
	if _, err := cli.Put(ctx, h.Key, "a2", old); err != nil {
		t.Fatal(err)
	}
	if err := h.Put(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if v, l := get(t, cli, h.Key); v != "b" || l != h.ID() || l == old {
		t.Fatalf("after Put on a new lease: %q on %x (old %x)", v, l, old)
	}
	cur := h.ID()
	h.Drop()
	if err := h.Withdraw(ctx); err != nil { // no current lease: the key is on a dropped one
		t.Fatal(err)
	}
	if v, _ := get(t, cli, h.Key); v != "" {
		t.Fatalf("Withdraw left %q on the dropped lease %x", v, cur)
	}
	if h.Rev() == 0 {
		t.Fatal("Rev still 0 after answers from etcd")
	}
}

// TestHolder_Adopt: before its first Put, a holder adopts a key on another live lease
// holding exactly its value (its own previous run, killed); after it, never.
func TestHolder_Adopt(t *testing.T) {
	cli, h := setup(t)
	ctx := context.Background()
	prev, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, h.Key, "same", prev.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.Put(ctx, "same"); err != nil {
		t.Fatalf("first Put over an identical record: %v", err)
	}
	if v, l := get(t, cli, h.Key); v != "same" || l != h.ID() || h.Adopted() != prev.ID {
		t.Fatalf("after adoption: %q on %x, Adopted %x; want it on %x adopted from %x", v, l, h.Adopted(), h.ID(), prev.ID)
	}
	// Another live lease puts the same value back: no second adoption, no fight.
	if _, err := cli.Put(ctx, h.Key, "same", prev.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.Put(ctx, "same"); !errors.Is(err, ErrHeld) {
		t.Fatalf("Put after the first one over another live lease: %v, want ErrHeld", err)
	}
	if _, l := get(t, cli, h.Key); l != prev.ID {
		t.Fatalf("the other lease's record was taken: now on %x", l)
	}
}

// TestHolder_Extra: the extra keys go with Key, in one transaction: all written under the
// one lease, none when another live lease holds any of them, all gone on Withdraw, and one
// deleted by hand is put back by the next Put.
func TestHolder_Extra(t *testing.T) {
	cli, h := setup(t)
	h.Extra = []string{"/skydns/test/_tcp/_metrics/x", "/skydns/test/_txt/x"}
	ctx := context.Background()
	if err := h.Put(ctx, "main", "metrics", "text"); err != nil {
		t.Fatal(err)
	}
	for i, k := range append([]string{h.Key}, h.Extra...) {
		if v, l := get(t, cli, k); v != []string{"main", "metrics", "text"}[i] || l != h.ID() {
			t.Fatalf("%s = %q on %x, want it on lease %x", k, v, l, h.ID())
		}
	}
	if _, err := cli.Delete(ctx, h.Extra[0]); err != nil {
		t.Fatal(err)
	}
	if err := h.Put(ctx, "main", "metrics", "text"); err != nil {
		t.Fatal(err)
	}
	if v, _ := get(t, cli, h.Extra[0]); v != "metrics" {
		t.Fatalf("deleted extra key after Put = %q, want it back", v)
	}
	if err := h.Withdraw(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range append([]string{h.Key}, h.Extra...) {
		if v, _ := get(t, cli, k); v != "" {
			t.Fatalf("%s = %q after Withdraw, want it gone", k, v)
		}
	}

	other, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, h.Extra[1], "theirs", other.ID); err != nil {
		t.Fatal(err)
	}
	err = h.Put(ctx, "main", "metrics", "text")
	var held *HeldError
	if !errors.As(err, &held) || held.Key != h.Extra[1] || held.Lease != other.ID {
		t.Fatalf("Put with an extra key on another live lease: %v, want a HeldError naming %s", err, h.Extra[1])
	}
	for _, k := range []string{h.Key, h.Extra[0]} {
		if v, _ := get(t, cli, k); v != "" {
			t.Fatalf("%s = %q after a refused Put, want nothing written", k, v)
		}
	}
	if v, l := get(t, cli, h.Extra[1]); v != "theirs" || l != other.ID {
		t.Fatalf("the other's key = %q on %x, want it untouched", v, l)
	}
}
