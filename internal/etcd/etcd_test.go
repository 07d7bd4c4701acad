package etcd_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rundock/rundock/internal/etcd"
	"github.com/rundock/rundock/internal/testenv"
)

// server is a real etcd the tests run against: the embedded one (the version in go.mod)
// and Debian's 3.4 binary.
type server struct {
	name  string
	start func(t *testing.T) string // returns the endpoint
}

var servers = []server{
	{"embedded", func(t *testing.T) string { return testenv.StartEtcd(t).Endpoint }},
	{"etcd3.4", func(t *testing.T) string { return testenv.StartEtcdBinary(t).Endpoint }},
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// each runs fn against every server, with this package's client and the official one
// (which checks what this one wrote, and writes what it reads).
func each(t *testing.T, fn func(t *testing.T, c *etcd.Client, ref *clientv3.Client)) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			ep := s.start(t)
			ref := testenv.EtcdClient(t, ep)
			if _, err := ref.Put(ctxT(t, 10*time.Second), "/ready", "1"); err != nil {
				t.Fatalf("etcd not ready: %v", err)
			}
			c, err := etcd.New(etcd.Config{Endpoints: []string{ep}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			fn(t, c, ref)
		})
	}
}

func TestKV(t *testing.T) {
	each(t, func(t *testing.T, c *etcd.Client, ref *clientv3.Client) {
		ctx := ctxT(t, 20*time.Second)
		g, err := ref.Grant(ctx, 30)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Put(ctx, "/kv/a", "va", etcd.LeaseID(g.ID)); err != nil {
			t.Fatal(err)
		}
		if _, err := ref.Put(ctx, "/kv/b", "vb"); err != nil {
			t.Fatal(err)
		}
		if _, err := ref.Put(ctx, "/kv0", "outside"); err != nil { // prefixEnd of /kv/ is /kv0
			t.Fatal(err)
		}
		r, err := ref.Get(ctx, "/kv/a")
		if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "va" || r.Kvs[0].Lease != int64(g.ID) {
			t.Fatalf("official client reads /kv/a: %v %v", r, err)
		}

		tests := []struct {
			name  string
			get   func() (*etcd.RangeResponse, error)
			want  []string // key=value
			lease int64    // of the first key
		}{
			{name: "single", get: func() (*etcd.RangeResponse, error) { return c.Get(ctx, "/kv/a") }, want: []string{"/kv/a=va"}, lease: int64(g.ID)},
			{name: "prefix", get: func() (*etcd.RangeResponse, error) { return c.GetPrefix(ctx, "/kv/") }, want: []string{"/kv/a=va", "/kv/b=vb"}, lease: int64(g.ID)},
			{name: "empty", get: func() (*etcd.RangeResponse, error) { return c.Get(ctx, "/kv/none") }},
			{name: "empty prefix", get: func() (*etcd.RangeResponse, error) { return c.GetPrefix(ctx, "/none/") }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r, err := tt.get()
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, kv := range r.Kvs {
					got = append(got, string(kv.Key)+"="+string(kv.Value))
				}
				if strings.Join(got, " ") != strings.Join(tt.want, " ") || r.Count != int64(len(tt.want)) || r.Header.Revision == 0 {
					t.Fatalf("got %v (count %d, revision %d), want %v", got, r.Count, r.Header.Revision, tt.want)
				}
				if len(r.Kvs) > 0 && (r.Kvs[0].Lease != tt.lease || r.Kvs[0].ModRevision == 0 || r.Kvs[0].Version != 1) {
					t.Fatalf("first key: %+v, want lease %x", r.Kvs[0], tt.lease)
				}
			})
		}

		a, _ := c.Get(ctx, "/kv/a")
		rev := a.Kvs[0].ModRevision
		txns := []struct {
			name    string
			cmps    []etcd.Cmp
			ok      bool
			wantA   string
			wantErr bool
		}{
			{name: "failure branch reads", cmps: []etcd.Cmp{etcd.ModRevisionIs("/kv/a", rev+100), etcd.LeaseIs("/kv/a", etcd.LeaseID(g.ID))}, wantA: "va"},
			{name: "failure on lease", cmps: []etcd.Cmp{etcd.ModRevisionIs("/kv/a", rev), etcd.LeaseIs("/kv/a", 0)}, wantA: "va"},
			{name: "success branch writes", cmps: []etcd.Cmp{etcd.ModRevisionIs("/kv/a", rev), etcd.LeaseIs("/kv/a", etcd.LeaseID(g.ID))}, ok: true, wantA: "new"},
			{name: "absent key compares as zero", cmps: []etcd.Cmp{etcd.ModRevisionIs("/kv/absent", 0), etcd.LeaseIs("/kv/absent", 0)}, ok: true, wantA: "new"},
		}
		for _, tt := range txns {
			t.Run("Txn/"+tt.name, func(t *testing.T) {
				then := []etcd.Op{etcd.OpPut("/kv/a", "new", 0), etcd.OpDelete("/kv/gone")}
				if strings.HasPrefix(tt.name, "absent") {
					then = []etcd.Op{etcd.OpGet("/kv/a")}
				}
				r, err := c.Txn(ctx, tt.cmps, then, []etcd.Op{etcd.OpGet("/kv/a"), etcd.OpGet("/kv/absent")})
				if err != nil {
					t.Fatal(err)
				}
				if r.Succeeded != tt.ok || len(r.Responses) != 2 && !(tt.ok && len(then) == 1) {
					t.Fatalf("succeeded %v with %d answers, want %v", r.Succeeded, len(r.Responses), tt.ok)
				}
				if !tt.ok {
					if r.Responses[0].Range == nil || len(r.Responses[0].Range.Kvs) != 1 || string(r.Responses[0].Range.Kvs[0].Value) != tt.wantA ||
						r.Responses[1].Range == nil || len(r.Responses[1].Range.Kvs) != 0 {
						t.Fatalf("else branch answers: %+v %+v", r.Responses[0], r.Responses[1])
					}
				} else if len(then) == 2 && (r.Responses[0].Put == nil || r.Responses[1].Delete == nil) {
					t.Fatalf("then branch answers: %+v %+v", r.Responses[0], r.Responses[1])
				}
				got, err := ref.Get(ctx, "/kv/a")
				if err != nil || string(got.Kvs[0].Value) != tt.wantA {
					t.Fatalf("/kv/a after the txn: %v %v, want %q", got, err, tt.wantA)
				}
			})
		}

		d, err := c.Delete(ctx, "/kv/b")
		if err != nil || d.Deleted != 1 {
			t.Fatalf("Delete: %+v %v", d, err)
		}
		if d, err := c.Delete(ctx, "/kv/b"); err != nil || d.Deleted != 0 {
			t.Fatalf("Delete again: %+v %v", d, err)
		}
		if r, err := ref.Get(ctx, "/kv/b"); err != nil || len(r.Kvs) != 0 {
			t.Fatalf("/kv/b after Delete: %v %v", r, err)
		}
	})
}

func TestLease(t *testing.T) {
	each(t, func(t *testing.T, c *etcd.Client, ref *clientv3.Client) {
		ctx := ctxT(t, 30*time.Second)
		g, err := c.Grant(ctx, 5)
		if err != nil || g.ID == 0 || g.TTL != 5 {
			t.Fatalf("Grant: %+v %v", g, err)
		}
		ttl, err := ref.TimeToLive(ctx, clientv3.LeaseID(g.ID))
		if err != nil || ttl.GrantedTTL != 5 {
			t.Fatalf("official TimeToLive of the granted lease: %+v %v", ttl, err)
		}
		if r, err := c.KeepAliveOnce(ctx, g.ID); err != nil || r.ID != g.ID || r.TTL != 5 {
			t.Fatalf("KeepAliveOnce: %+v %v", r, err)
		}
		if r, err := c.TimeToLive(ctx, g.ID); err != nil || r.GrantedTTL != 5 || r.TTL <= 0 || r.TTL > 5 {
			t.Fatalf("TimeToLive: %+v %v", r, err)
		}

		kctx, stop := context.WithCancel(ctx)
		ch := c.KeepAlive(kctx, g.ID, g.TTL)
		time.Sleep(7 * time.Second) // past the TTL
		if r, err := c.TimeToLive(ctx, g.ID); err != nil || r.TTL <= 0 {
			t.Fatalf("lease after 7 s of KeepAlive: %+v %v", r, err)
		}
		if r, ok := <-ch; !ok || r.TTL != 5 {
			t.Fatalf("KeepAlive answer: %+v %v", r, ok)
		}
		stop()
		waitClosed(t, ch, 2*time.Second, "KeepAlive channel after its ctx ended")

		// Revoked behind its back: the channel closes at the next renewal.
		ch = c.KeepAlive(ctx, g.ID, g.TTL)
		if _, err := c.Revoke(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, ch, 4*time.Second, "KeepAlive channel after a revoke")
		if r, err := c.TimeToLive(ctx, g.ID); err != nil || r.TTL != -1 {
			t.Fatalf("TimeToLive of a revoked lease: %+v %v, want TTL -1", r, err)
		}
		if _, err := c.Revoke(ctx, g.ID); !errors.Is(err, etcd.ErrLeaseNotFound) {
			t.Fatalf("Revoke twice: %v, want ErrLeaseNotFound", err)
		}
		if _, err := c.KeepAliveOnce(ctx, g.ID); !errors.Is(err, etcd.ErrLeaseNotFound) {
			t.Fatalf("KeepAliveOnce of a revoked lease: %v, want ErrLeaseNotFound", err)
		}
	})
}

// TestLease_Expires: a lease nobody renews expires, and a KeepAlive that cannot reach
// etcd for the lease's TTL closes its channel.
func TestLease_Expires(t *testing.T) {
	e := testenv.StartEtcd(t)
	c := testenv.WireClient(t, e.Endpoint)
	ctx := ctxT(t, 30*time.Second)
	g, err := c.Grant(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	ch := c.KeepAlive(ctx, g.ID, g.TTL)
	<-ch
	e.Stop()
	start := time.Now()
	waitClosed(t, ch, 8*time.Second, "KeepAlive channel with etcd down")
	if d := time.Since(start); d < 3*time.Second {
		t.Fatalf("KeepAlive gave up after %s, before the lease's TTL", d)
	}
}

func waitClosed[T any](t *testing.T, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("%s: not closed within %s", what, d)
		}
	}
}

func TestWatch(t *testing.T) {
	each(t, func(t *testing.T, c *etcd.Client, ref *clientv3.Client) {
		ctx := ctxT(t, 30*time.Second)
		p1, err := ref.Put(ctx, "/w/a", "1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ref.Put(ctx, "/w/b", "2"); err != nil {
			t.Fatal(err)
		}
		if _, err := ref.Delete(ctx, "/w/a"); err != nil {
			t.Fatal(err)
		}
		if _, err := ref.Put(ctx, "/wx", "outside"); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			key  string
			o    etcd.WatchOptions
			want []string
		}{
			{name: "prefix from a revision", key: "/w/", o: etcd.WatchOptions{Prefix: true, Rev: p1.Header.Revision, RequireLeader: true},
				want: []string{"PUT /w/a=1", "PUT /w/b=2", "DELETE /w/a="}},
			{name: "key from a revision", key: "/w/a", o: etcd.WatchOptions{Rev: p1.Header.Revision},
				want: []string{"PUT /w/a=1", "DELETE /w/a="}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wctx, cancel := context.WithCancel(ctx)
				defer cancel()
				ch := c.Watch(wctx, tt.key, tt.o)
				var got []string
				for len(got) < len(tt.want) {
					select {
					case wr, ok := <-ch:
						if !ok || wr.Err() != nil {
							t.Fatalf("watch ended: %v", wr.Err())
						}
						for _, ev := range wr.Events {
							got = append(got, ev.Type.String()+" "+string(ev.Kv.Key)+"="+string(ev.Kv.Value))
						}
					case <-time.After(5 * time.Second):
						t.Fatalf("got %v, want %v", got, tt.want)
					}
				}
				if strings.Join(got, ",") != strings.Join(tt.want, ",") {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			})
		}

		t.Run("new events, cancel on ctx", func(t *testing.T) {
			wctx, cancel := context.WithCancel(ctx)
			ch := c.Watch(wctx, "/w/", etcd.WatchOptions{Prefix: true, RequireLeader: true})
			time.Sleep(200 * time.Millisecond) // the watch is created
			l, _ := ref.Grant(ctx, 30)
			if _, err := ref.Put(ctx, "/w/c", "3", clientv3.WithLease(l.ID)); err != nil {
				t.Fatal(err)
			}
			select {
			case wr := <-ch:
				if len(wr.Events) != 1 || wr.Events[0].Kv.Lease != int64(l.ID) || wr.Events[0].Kv.ModRevision != wr.Header.Revision {
					t.Fatalf("answer %+v", wr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no event for a new put")
			}
			cancel()
			waitClosed(t, ch, 2*time.Second, "watch channel after its ctx ended")
		})

		t.Run("ErrCompacted", func(t *testing.T) {
			r, err := ref.Put(ctx, "/w/d", "4")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ref.Compact(ctx, r.Header.Revision); err != nil {
				t.Fatal(err)
			}
			ch := c.Watch(ctx, "/w/", etcd.WatchOptions{Prefix: true, Rev: p1.Header.Revision})
			select {
			case wr, ok := <-ch:
				if !ok || !wr.Canceled || !errors.Is(wr.Err(), etcd.ErrCompacted) || wr.CompactRevision != r.Header.Revision {
					t.Fatalf("watch of a compacted revision: %+v %v, want ErrCompacted", wr, wr.Err())
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no answer")
			}
			waitClosed(t, ch, 2*time.Second, "watch channel after a compaction")
		})
	})
}

// TestClose: Close stops the watches and keepalives and leaves no goroutine behind;
// it may be called twice.
func TestClose(t *testing.T) {
	e := testenv.StartEtcd(t)
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	c, err := etcd.New(etcd.Config{Endpoints: []string{e.Endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	g, err := c.Grant(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	ka := c.KeepAlive(context.Background(), g.ID, g.TTL)
	w := c.Watch(context.Background(), "/close", etcd.WatchOptions{RequireLeader: true})
	if _, err := c.Put(ctx, "/close", "x", 0); err != nil {
		t.Fatal(err)
	}
	<-w
	c.Close()
	c.Close()
	waitClosed(t, ka, time.Second, "KeepAlive channel after Close")
	waitClosed(t, w, time.Second, "watch channel after Close")
	if _, err := c.Get(ctx, "/close"); err == nil {
		t.Fatal("Get after Close worked")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
