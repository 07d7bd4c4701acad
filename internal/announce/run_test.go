package announce

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rundock/rundock/internal/container"
	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/testenv"
)

// These tests run the announcer's loop against a real embedded etcd. Docker is bypassed:
// either the container is not watched (IgnoreContainer) or its states come through the
// States test seam.

const (
	idA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	idB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	idC = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
)

// logBuf collects an announcer's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// running is an announcer started by a test.
type running struct {
	a    *Announcer
	log  *logBuf
	stop func() // cancels Run and waits for it; safe to call twice
}

// start runs an announcer for cfg (instance n1 of influxdb on etcd at endpoint); it is
// stopped when the test ends and its log shown when the test failed.
func start(t *testing.T, endpoint string, mod func(*Config)) *running {
	t.Helper()
	lb := &logBuf{}
	cfg := Config{Name: "influxdb", Port: 8086, Instance: "n1", Host: "127.0.0.10", TTL: 5,
		Etcd: Etcd{Endpoints: []string{endpoint}}, IgnoreContainer: true,
		Logger: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	mod(&cfg)
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	r := &running{a: a, log: lb, stop: func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(3 * time.Second):
				t.Error("Run did not return within 3s of the cancel")
			}
		})
	}}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() || os.Getenv("RDLOG") != "" {
			t.Logf("announcer log:\n%s", lb.String())
		}
	})
	return r
}

// kv returns the value and lease at key ("" when absent).
func kv(t *testing.T, cli *clientv3.Client, key string) (string, clientv3.LeaseID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatalf("cannot get %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0
	}
	return string(resp.Kvs[0].Value), clientv3.LeaseID(resp.Kvs[0].Lease)
}

// within polls cond every 2 ms for up to d and returns how long it took; it fails the
// test when cond never held.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	begin := time.Now()
	for !cond() {
		if time.Since(begin) > d {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(begin)
}

// stays fails the test if cond stops holding during d.
func stays(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if !cond() {
			t.Fatalf("%s: no longer true", what)
		}
	}
}

// writeAtomic writes a state file as rundock does: a temp file renamed into place.
func writeAtomic(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func figure(t *testing.T, what string, ds []time.Duration) {
	lo, hi, sum := ds[0], ds[0], time.Duration(0)
	for _, d := range ds {
		lo, hi, sum = min(lo, d), max(hi, d), sum+d
	}
	t.Logf("FIGURE %s: n=%d min=%s mean=%s max=%s", what, len(ds), lo.Round(100*time.Microsecond),
		(sum / time.Duration(len(ds))).Round(100*time.Microsecond), hi.Round(100*time.Microsecond))
}

const want = `{"host":"127.0.0.10","port":8086,"ttl":5,"group":"influxdb"}`

// TestRun_Maintenance: the maintenance file withdraws the record within the poll (no
// signal), keeps it withdrawn, survives an announcer restart, and its removal brings the
// record back.
func TestRun_Maintenance(t *testing.T) {
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	dir := filepath.Join(t.TempDir(), "docker-web", ".rundock") // does not exist yet
	r := start(t, e.Endpoint, func(c *Config) { c.StateDir = dir })
	key := r.a.Key()
	present := func() bool { v, _ := kv(t, cli, key); return v == want }
	absent := func() bool { v, _ := kv(t, cli, key); return v == "" }
	within(t, 5*time.Second, "announced", present)

	writeAtomic(t, dir, MaintenanceFile, "db upgrade, ticket 42\nsecond line ignored\n")
	d := within(t, 1500*time.Millisecond, "withdrawn by the maintenance file (poll)", absent)
	t.Logf("FIGURE maintenance file (no signal) to record gone: %s", d.Round(time.Millisecond))
	stays(t, 1500*time.Millisecond, "stays withdrawn in maintenance", absent)
	if l := r.log.String(); !strings.Contains(l, `msg="entering maintenance, record withheld"`) || !strings.Contains(l, `reason="db upgrade, ticket 42"`) {
		t.Fatalf("log lacks the entering-maintenance line with its reason:\n%s", l)
	}

	// An announcer restarted in maintenance never announces.
	r.stop()
	r = start(t, e.Endpoint, func(c *Config) { c.StateDir = dir })
	stays(t, 1500*time.Millisecond, "restarted announcer keeps maintenance", absent)

	if err := os.Remove(filepath.Join(dir, MaintenanceFile)); err != nil {
		t.Fatal(err)
	}
	d = within(t, 1500*time.Millisecond, "back after the maintenance file went", present)
	t.Logf("FIGURE maintenance file removed (no signal) to record back: %s", d.Round(time.Millisecond))
	if l := r.log.String(); !strings.Contains(l, `msg="leaving maintenance"`) {
		t.Fatalf("log lacks the leaving-maintenance line:\n%s", l)
	}
}

// TestRun_Drain: a drain file naming the running container withdraws at once on the
// reload signal; a container with another ID is announced although the drain file stays.
func TestRun_Drain(t *testing.T) {
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	dir := t.TempDir()
	states := make(chan container.State)
	reload := make(chan struct{})
	r := start(t, e.Endpoint, func(c *Config) {
		c.StateDir, c.IgnoreContainer, c.States, c.Reload = dir, false, states, reload
	})
	key := r.a.Key()
	present := func() bool { v, _ := kv(t, cli, key); return v == want }
	absent := func() bool { v, _ := kv(t, cli, key); return v == "" }
	up := func(id string) container.State {
		return container.State{ID: id, Exists: true, Running: true, Reason: "running"}
	}

	time.Sleep(300 * time.Millisecond)
	if !absent() {
		t.Fatal("announced before the container's state is known")
	}
	states <- up(idA)
	within(t, 5*time.Second, "announced", present)

	// A drain file naming another container changes nothing.
	writeAtomic(t, dir, DrainFile, idC+"\n")
	reload <- struct{}{}
	stays(t, 1200*time.Millisecond, "announced while the drain file names another container", present)

	// control/t's sequence: write the drain file, sv 1, then stop later.
	var ds []time.Duration
	for i := range 5 {
		id := idA
		if i%2 == 1 {
			id = idB
		}
		writeAtomic(t, dir, DrainFile, id+"\n")
		begin := time.Now()
		reload <- struct{}{}
		within(t, time.Second, "withdrawn on the reload signal", absent)
		ds = append(ds, time.Since(begin))
		stays(t, 300*time.Millisecond, "withheld while draining", absent)
		// The drained container stops; a new one (the other ID) starts and is announced
		// although the drain file still names the old one.
		states <- container.State{ID: id, Exists: true, Reason: "event die"}
		next := idB
		if id == idB {
			next = idA
		}
		states <- up(next)
		within(t, time.Second, "new container announced despite the stale drain file", present)
	}
	figure(t, "reload signal (SIGUSR1 path) to record gone", ds)
	for _, d := range ds {
		if d >= holdPoll {
			t.Fatalf("withdrawn %s after the signal: that is the poll, not the signal", d)
		}
	}
	l := r.log.String()
	if !strings.Contains(l, `msg="draining container, record withheld"`) || !strings.Contains(l, "container_id="+idA) ||
		!strings.Contains(l, `msg="drain over"`) {
		t.Fatalf("log lacks the drain lines:\n%s", l)
	}

	// A drain file that is not a container ID is ignored with a warning.
	writeAtomic(t, dir, DrainFile, "not-an-id\n")
	reload <- struct{}{}
	stays(t, 300*time.Millisecond, "announced with a garbled drain file", present)
	if l := r.log.String(); !strings.Contains(l, "drain file does not hold a container ID") {
		t.Fatalf("log lacks the garbled drain warning:\n%s", l)
	}
}

// TestRun_HealDelete: a record deleted by a plain client Delete is back within a second.
func TestRun_HealDelete(t *testing.T) {
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	r := start(t, e.Endpoint, func(*Config) {})
	key := r.a.Key()
	within(t, 5*time.Second, "announced", func() bool { v, _ := kv(t, cli, key); return v == want })
	ctx := context.Background()
	var ds []time.Duration
	for range 10 {
		_, lease := kv(t, cli, key)
		begin := time.Now()
		if _, err := cli.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		within(t, time.Second, "record back within 1s of a delete", func() bool {
			v, l := kv(t, cli, key)
			return v == want && l == lease
		})
		ds = append(ds, time.Since(begin))
	}
	figure(t, "client Delete to record back (same lease)", ds)
	if l := r.log.String(); !strings.Contains(l, `msg="record changed by someone else, restoring"`) || !strings.Contains(l, "event=DELETE") {
		t.Fatalf("log lacks the restoring line:\n%s", l)
	}
}

// TestRun_HealOverwrite: a record overwritten (no lease, or another value on its own
// lease) is restored under the announcer's lease.
func TestRun_HealOverwrite(t *testing.T) {
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	r := start(t, e.Endpoint, func(*Config) {})
	key := r.a.Key()
	within(t, 5*time.Second, "announced", func() bool { v, _ := kv(t, cli, key); return v == want })
	_, lease := kv(t, cli, key)
	ctx := context.Background()
	restored := func() bool { v, l := kv(t, cli, key); return v == want && l == lease }

	begin := time.Now()
	if _, err := cli.Put(ctx, key, `{"host":"10.6.6.6","port":1}`); err != nil { // on no lease
		t.Fatal(err)
	}
	within(t, time.Second, "restored after an overwrite on no lease", restored)
	t.Logf("FIGURE client Put (no lease) to record restored: %s", time.Since(begin).Round(100*time.Microsecond))

	if _, err := cli.Put(ctx, key, `{"host":"10.7.7.7","port":2}`, clientv3.WithLease(lease)); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "restored after an overwrite on its own lease", restored)
	if l := r.log.String(); !strings.Contains(l, `value="{\"host\":\"10.6.6.6\",\"port\":1}"`) || !strings.Contains(l, "by=\"no lease (a hand-written value)\"") {
		t.Fatalf("log does not say what overwrote the record:\n%s", l)
	}
}

// TestRun_WithdrawalNotFought: while withheld on purpose (maintenance, container down)
// or after TERM, a record someone else writes is left alone and a delete stays a delete.
func TestRun_WithdrawalNotFought(t *testing.T) {
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	dir := t.TempDir()
	states := make(chan container.State)
	r := start(t, e.Endpoint, func(c *Config) { c.StateDir, c.IgnoreContainer, c.States = dir, false, states })
	key := r.a.Key()
	ctx := context.Background()
	states <- container.State{ID: idA, Exists: true, Running: true}
	within(t, 5*time.Second, "announced", func() bool { v, _ := kv(t, cli, key); return v == want })

	const hand = `{"host":"10.9.9.9","port":9}`
	byHand := func() bool { v, _ := kv(t, cli, key); return v == hand }
	absent := func() bool { v, _ := kv(t, cli, key); return v == "" }

	// Maintenance: withdrawn; a hand-written record is not deleted, and not replaced.
	writeAtomic(t, dir, MaintenanceFile, "testing\n")
	within(t, 1500*time.Millisecond, "withdrawn for maintenance", absent)
	if _, err := cli.Put(ctx, key, hand); err != nil {
		t.Fatal(err)
	}
	stays(t, 1500*time.Millisecond, "hand-written record left alone in maintenance", byHand)
	if l := r.log.String(); !strings.Contains(l, "left alone") {
		t.Fatalf("log does not mention the record left alone:\n%s", l)
	}
	if _, err := cli.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	stays(t, 1500*time.Millisecond, "deleted record stays deleted in maintenance", absent)
	os.Remove(filepath.Join(dir, MaintenanceFile))
	within(t, 1500*time.Millisecond, "back after maintenance", func() bool { v, _ := kv(t, cli, key); return v == want })

	// Container down: withdrawn, not re-announced on a delete.
	states <- container.State{ID: idA, Exists: true, Reason: "event die"}
	within(t, time.Second, "withdrawn when the container died", absent)
	if _, err := cli.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	stays(t, 1200*time.Millisecond, "not re-announced while the container is down", absent)

	// TERM: withdrawn, and a record written afterwards is no announcer's business.
	states <- container.State{ID: idB, Exists: true, Running: true}
	within(t, time.Second, "announced again", func() bool { v, _ := kv(t, cli, key); return v == want })
	_, lease := kv(t, cli, key)
	r.stop()
	if !absent() {
		t.Fatal("record still there after the announcer stopped")
	}
	if ttl, err := cli.TimeToLive(ctx, lease); err != nil || ttl.TTL != -1 {
		t.Fatalf("lease %x after stop: TTL %v, %v; want revoked", lease, ttl.TTL, err)
	}
}

// TestRun_SecondAnnouncer: two announcers for one key (two services configured alike,
// issue 13 point 4). The second finds the key on the first's live lease and leaves it
// alone; stopping it does not delete the first's record. When the first stops, the second
// takes the key.
func TestRun_SecondAnnouncer(t *testing.T) {
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	first := start(t, e.Endpoint, func(*Config) {})
	key := first.a.Key()
	within(t, 5*time.Second, "first announced", func() bool { v, _ := kv(t, cli, key); return v == want })
	_, lease := kv(t, cli, key)
	firstHolds := func() bool { v, l := kv(t, cli, key); return v == want && l == lease }

	const second = `{"host":"127.0.0.11","port":8086,"ttl":5,"group":"influxdb"}`
	r2 := start(t, e.Endpoint, func(c *Config) { c.Host = "127.0.0.11" })
	within(t, 3*time.Second, "second logs the key as held", func() bool {
		return strings.Contains(r2.log.String(), "record key held by another live lease")
	})
	stays(t, 1500*time.Millisecond, "first's record untouched while the second runs", firstHolds)
	if l := r2.log.String(); !strings.Contains(l, "key="+key) {
		t.Fatalf("the held error does not name the key:\n%s", l)
	}
	r2.stop()
	stays(t, 1500*time.Millisecond, "first's record untouched after the second stopped", firstHolds)

	// The other way round: the second runs again, the first stops; the key is free and
	// the second takes it at once (its watch sees the delete).
	r2 = start(t, e.Endpoint, func(c *Config) { c.Host = "127.0.0.11" })
	within(t, 3*time.Second, "second waits", func() bool {
		return strings.Contains(r2.log.String(), "record key held by another live lease")
	})
	begin := time.Now()
	first.stop()
	within(t, time.Second, "second takes the key once the first withdrew", func() bool { v, _ := kv(t, cli, key); return v == second })
	t.Logf("FIGURE first announcer stopped to second's record in: %s", time.Since(begin).Round(time.Millisecond))
	// The first one's record reappearing is not fought either way: both are done.
	r2.stop()
	if v, _ := kv(t, cli, key); v != "" {
		t.Fatalf("after both stopped: %q", v)
	}
}

// TestRun_HealAfterOutage: the watch on the key survives an etcd restart shorter than the
// TTL (the client resumes it) and is re-established after one longer than the TTL (lease
// lost, new lease): a delete is undone within a second after both.
func TestRun_HealAfterOutage(t *testing.T) {
	e := testenv.StartEtcd(t)
	r := start(t, e.Endpoint, func(*Config) {})
	key := r.a.Key()
	for _, outage := range []time.Duration{time.Second, 6 * time.Second} { // TTL 5 s
		cli := testenv.EtcdClient(t, e.Endpoint)
		within(t, 10*time.Second, "announced", func() bool { v, _ := kv(t, cli, key); return v == want })
		_, before := kv(t, cli, key)
		e.Stop()
		time.Sleep(outage)
		e.Restart(t)
		cli = testenv.EtcdClient(t, e.Endpoint) // a fresh client: see the integration test
		within(t, 10*time.Second, "announced after the restart", func() bool {
			v, l := kv(t, cli, key)
			return v == want && (outage < 5*time.Second || l != before)
		})
		// The announcer's client reconnects with gRPC's backoff (about 1 s after a short
		// outage); until then no write of the announcer's could land either.
		time.Sleep(1500 * time.Millisecond)
		if _, err := cli.Delete(context.Background(), key); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		within(t, time.Second, "record back within 1s of a delete after an outage", func() bool { v, _ := kv(t, cli, key); return v == want })
		t.Logf("FIGURE outage %s: delete to record back: %s", outage, time.Since(begin).Round(100*time.Microsecond))
	}
	if l := r.log.String(); !strings.Contains(l, "lease lost") {
		t.Fatalf("log lacks the lease lost line:\n%s", l)
	}
}

// TestRun_AdoptPreviousRun: an announcer killed without withdrawing leaves its record on a
// lease that lives up to the TTL; the next run adopts that identical record at once
// instead of waiting. A twin announcing the same value adopts it too, but only once at its
// start: the two do not fight, and stopping either never deletes the other's live record
// for longer than the other's watch takes to put it back.
func TestRun_AdoptPreviousRun(t *testing.T) {
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	ctx := context.Background()
	prev, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, e.Endpoint, func(*Config) {})
	key := r.a.Key()
	r.stop()
	if _, err := cli.Put(ctx, key, want, clientv3.WithLease(prev.ID)); err != nil { // the killed run's record
		t.Fatal(err)
	}
	r = start(t, e.Endpoint, func(*Config) {})
	within(t, time.Second, "previous run's record adopted", func() bool {
		v, l := kv(t, cli, key)
		return v == want && l != prev.ID && l != 0
	})
	// The record is in etcd a moment before the announcer has its answer and logs it.
	within(t, time.Second, "adoption logged", func() bool {
		l := r.log.String()
		return strings.Contains(l, "adopted the identical record") && strings.Contains(l, fmt.Sprintf("from_lease=%x", prev.ID))
	})

	// A twin with the same value adopts it once; the first stands by and logs it.
	twin := start(t, e.Endpoint, func(*Config) {})
	within(t, 3*time.Second, "first sees the key held", func() bool {
		return strings.Contains(r.log.String(), "record key held by another live lease")
	})
	_, twinLease := kv(t, cli, key)
	stays(t, 1500*time.Millisecond, "no fight: the key stays on the twin's lease", func() bool {
		v, l := kv(t, cli, key)
		return v == want && l == twinLease
	})
	twin.stop() // deletes its own record; the first puts it back at once
	within(t, time.Second, "first announcer's record back after the twin stopped", func() bool {
		v, l := kv(t, cli, key)
		return v == want && l != twinLease && l != 0
	})
}

// TestRun_PublishedPort: with PublishedPort the record's port is the host port the
// container publishes (update start-first moves a container between two host ports), and
// a container that publishes none is not announced.
func TestRun_PublishedPort(t *testing.T) {
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	states := make(chan container.State)
	r := start(t, e.Endpoint, func(c *Config) {
		c.IgnoreContainer, c.States, c.PublishedPort = false, states, "8086"
	})
	key := r.a.Key()
	is := func(v string) func() bool {
		return func() bool { got, _ := kv(t, cli, key); return got == v }
	}
	up := func(id string, port int) container.State {
		return container.State{ID: id, Exists: true, Running: true, HostPort: port, Reason: "running"}
	}
	states <- up(idA, 18086)
	within(t, 5*time.Second, "announced on the published port 18086", is(`{"host":"127.0.0.10","port":18086,"ttl":5,"group":"influxdb"}`))
	states <- up(idB, 18087)
	within(t, 5*time.Second, "announced on the new container's port 18087", is(`{"host":"127.0.0.10","port":18087,"ttl":5,"group":"influxdb"}`))
	states <- up(idC, 0)
	within(t, 5*time.Second, "withdrawn while no port is published", is(""))
	stays(t, 500*time.Millisecond, "withheld while no port is published", is(""))
}

// TestRun_IPv6DNS: an explicit IPv6 host is written as given (canonical) and CoreDNS's
// etcd plugin answers it as AAAA, not A, for the service and the instance, with the port
// in SRV.
func TestRun_IPv6DNS(t *testing.T) {
	testenv.Need(t, "dig", "coredns")
	e := testenv.StartEtcd(t)
	dns := testenv.StartCoreDNS(t, DefaultDomain, e.Endpoint)
	cli := testenv.EtcdClient(t, e.Endpoint)
	r := start(t, e.Endpoint, func(c *Config) { c.Host = "FD00:0::0005" })
	within(t, 5*time.Second, "the record", func() bool { v, _ := kv(t, cli, r.a.Key()); return v != "" })
	if v, _ := kv(t, cli, r.a.Key()); !strings.Contains(v, `"host":"fd00::5"`) {
		t.Fatalf("record %s, want host fd00::5", v)
	}
	fqdn := "influxdb." + DefaultDomain
	for _, name := range []string{fqdn, "n1." + fqdn} {
		if got := dns.Dig(t, name, "AAAA"); len(got) != 1 || got[0] != "fd00::5" {
			t.Errorf("AAAA %s = %q, want [fd00::5]", name, got)
		}
		if got := dns.Dig(t, name, "A"); len(got) != 0 {
			t.Errorf("A %s = %q, want none", name, got)
		}
	}
	// A lone record: CoreDNS answers priority 10 and scales the weight to 100.
	if got, want := dns.Dig(t, fqdn, "SRV"), "10 100 8086 n1."+fqdn+"."; len(got) != 1 || got[0] != want {
		t.Errorf("SRV %s = %q, want [%q]", fqdn, got, want)
	}
}

// TestRun_NamedPortsAndMeta: the named port's record and the TXT record come and go with
// the instance record under its lease; each heals on its own within a second; another
// instance's records in the same subtree (seen by the subtree watch) are left alone.
func TestRun_NamedPortsAndMeta(t *testing.T) {
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	dir := filepath.Join(t.TempDir(), ".rundock")
	r := start(t, e.Endpoint, func(c *Config) {
		c.NamedPorts = []NamedPort{{"metrics", 9100}}
		c.Meta = skydns.Meta{Image: "influxdb:2.7", Tags: []string{"canary"}}
		c.StateDir = dir
	})
	key, extra := r.a.Key(), r.a.Keys()
	vals := []string{`{"host":"127.0.0.10","port":9100,"ttl":5,"group":"_metrics._tcp.influxdb"}`,
		`{"ttl":5,"text":"instance=n1 image=influxdb:2.7 tags=canary","group":"influxdb"}`}
	all := func(present bool) func() bool {
		return func() bool {
			v, l := kv(t, cli, key)
			if present != (v == want) {
				return false
			}
			for i, k := range extra {
				ev, el := kv(t, cli, k)
				if present != (ev == vals[i] && el == l) || !present && ev != "" {
					return false
				}
			}
			return true
		}
	}
	within(t, 5*time.Second, "instance, named port and TXT records announced on one lease", all(true))

	ctx := context.Background()
	other := "/skydns/com/example/prod/s/influxdb/_tcp/_metrics/n2"
	if _, err := cli.Put(ctx, other, `{"host":"127.0.0.11","port":9100}`); err != nil {
		t.Fatal(err)
	}
	for i, k := range extra {
		begin := time.Now()
		if _, err := cli.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
		within(t, time.Second, "extra record "+k+" back within 1s of a delete", func() bool { v, _ := kv(t, cli, k); return v == vals[i] })
		t.Logf("FIGURE client Delete of %s to record back: %s", k, time.Since(begin).Round(100*time.Microsecond))
	}
	if v, _ := kv(t, cli, other); v != `{"host":"127.0.0.11","port":9100}` {
		t.Fatalf("another instance's record = %q, want it untouched", v)
	}

	writeAtomic(t, dir, "maintenance", "test")
	within(t, 3*time.Second, "all three withdrawn in maintenance", all(false))
	if err := os.Remove(filepath.Join(dir, "maintenance")); err != nil {
		t.Fatal(err)
	}
	within(t, 3*time.Second, "all three back after maintenance", all(true))
	r.stop()
	if !all(false)() {
		t.Fatal("records left after the announcer stopped")
	}
}
