package etcd_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/etcd"
	"github.com/rundock/rundock/internal/testenv"
)

// TestFailover_Refused: the first endpoint refuses connections; reads and writes go to
// the second.
func TestFailover_Refused(t *testing.T) {
	e := testenv.StartEtcd(t)
	down := fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t))
	c := testenv.WireClient(t, down, e.Endpoint)
	ctx := ctxT(t, 10*time.Second)
	if _, err := c.Put(ctx, "/f", "v", 0); err != nil {
		t.Fatalf("Put with the first endpoint down: %v", err)
	}
	if r, err := c.Get(ctx, "/f"); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("Get: %+v %v", r, err)
	}
	if c.Endpoint() != e.Endpoint {
		t.Fatalf("endpoint in use %s, want %s", c.Endpoint(), e.Endpoint)
	}
}

// TestFailover_Cluster: a three-member cluster loses the member the client uses, first
// killed, then cut off (a proxy in front of it stops forwarding without closing
// anything, as a partition does): the lease stays alive through the others, reads
// work, and a watch ends (to be re-established by its owner).
func TestFailover_Cluster(t *testing.T) {
	for _, cut := range []bool{false, true} {
		t.Run(map[bool]string{false: "killed", true: "cut off"}[cut], func(t *testing.T) {
			m := testenv.StartEtcdCluster(t, 3)
			first := m[0].Endpoint
			var p *freezer
			if cut {
				p = newFreezer(t, m[0].Endpoint)
				first = p.url
			}
			c := testenv.WireClient(t, first, m[1].Endpoint, m[2].Endpoint)
			ctx := ctxT(t, 60*time.Second)
			g, err := c.Grant(ctx, 5)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Put(ctx, "/f", "v", g.ID); err != nil {
				t.Fatal(err)
			}
			ka := c.KeepAlive(ctx, g.ID, g.TTL)
			w := c.Watch(ctx, "/f", etcd.WatchOptions{RequireLeader: true})
			time.Sleep(500 * time.Millisecond)
			if c.Endpoint() != first {
				t.Fatalf("endpoint %s before the loss, want %s", c.Endpoint(), first)
			}
			lost := time.Now()
			if cut {
				p.freeze()
			} else {
				m[0].Stop()
			}
			// Reads work again within a short per-call timeout, retried.
			for {
				rctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
				_, err := c.Get(rctx, "/f")
				cancel()
				if err == nil {
					break
				}
				if time.Since(lost) > 10*time.Second {
					t.Fatalf("no read within 10 s of the loss: %v", err)
				}
			}
			t.Logf("read again after %s, on %s", time.Since(lost).Round(time.Millisecond), c.Endpoint())
			select {
			case wr, ok := <-w:
				if ok && wr.Err() == nil {
					t.Fatalf("watch answered %+v, want its end", wr)
				}
				t.Logf("watch ended after %s: %v", time.Since(lost).Round(time.Millisecond), wr.Err())
			case <-time.After(10 * time.Second):
				t.Fatal("watch on the lost member did not end within 10 s")
			}
			// Two TTLs: the lease must have been renewed through another member.
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				select {
				case _, ok := <-ka:
					if !ok {
						t.Fatalf("KeepAlive ended %s after the loss", time.Since(lost).Round(time.Millisecond))
					}
				case <-time.After(100 * time.Millisecond):
				}
			}
			if r, err := c.TimeToLive(ctx, g.ID); err != nil || r.TTL <= 0 {
				t.Fatalf("lease after the loss: %+v %v", r, err)
			}
		})
	}
}

// freezer is a TCP proxy to a real member that can stop forwarding without closing
// anything: what a client sees of a member cut off by a partition.
type freezer struct {
	url    string
	mu     sync.Mutex
	frozen chan struct{}
	conns  []net.Conn
}

func newFreezer(t *testing.T, target string) *freezer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{url: "http://" + l.Addr().String(), frozen: make(chan struct{})}
	host := target[len("http://"):]
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", host)
			if err != nil {
				in.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, in, out)
			f.mu.Unlock()
			go f.pipe(out, in)
			go f.pipe(in, out)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			c.Close()
		}
	})
	return f
}

func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-f.frozen:
			io.Copy(io.Discard, src) // swallow everything, answer nothing
			return
		default:
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *freezer) freeze() { close(f.frozen) }
