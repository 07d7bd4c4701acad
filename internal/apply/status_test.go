package apply

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rundock/rundock/internal/etcdclient"
	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/testenv"
)

// oneContainer is a container engine whose Inspect returns ct: these tests run no Docker.
type oneContainer struct {
	noContainers
	ct Container
}

func (o oneContainer) Inspect(context.Context, string) (Container, error) { return o.ct, nil }

// fakeSupervise makes dir look supervised by a runsv in state ("run", "down") wanted up:
// supervise/ok is a FIFO this test holds open for reading, as runsv does, and
// supervise/status is runsv's 20-byte record.
func fakeSupervise(t *testing.T, dir, state string, pid int) {
	t.Helper()
	sup := filepath.Join(dir, "supervise")
	if err := os.MkdirAll(sup, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(sup, "ok"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Open(filepath.Join(sup, "ok"), syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	b := make([]byte, 20)
	binary.BigEndian.PutUint64(b[0:8], uint64(4611686018427387914+time.Now().Add(-time.Minute).Unix()))
	binary.LittleEndian.PutUint32(b[12:16], uint32(pid))
	b[17] = 'u'
	if state == "run" {
		b[19] = 1
	}
	if err := os.WriteFile(filepath.Join(sup, "status"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// installAnnounced renders an announced service with the given etcd endpoints and writes
// its tree to a temp sv_dir.
func installAnnounced(t *testing.T, svDir, name string, extra map[string]any) spec.Service {
	t.Helper()
	m := map[string]any{"name": name, "image": "nginx:1.25", "announce": 8080, "port": 80, "domain": "example.com",
		"sv_dir": svDir, "service_dir": filepath.Join(filepath.Dir(svDir), "service"), "log_dir": filepath.Join(filepath.Dir(svDir), "log")}
	for k, v := range extra {
		if m[k] = v; v == nil {
			delete(m, k)
		}
	}
	svc, err := spec.FromMap(m, "host1")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := render.Render(svc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(svDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := safefs.CreateDir(svDir, tr.Dir, tr.Files); err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestEtcdFlags_RenderedScript(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A start-first announcer/run ends with "$@" (rundock's overrides for the new
	// container's announcer): it reads the same.
	for i, extra := range []map[string]any{{}, {"update": "start-first", "update_port": 8081}} {
		opts := map[string]any{
			"etcd_endpoints": "https://e1:2379,https://e2:2379", "etcd_cacert": "/etc/ssl/ca it's.pem",
			"etcd_cert": "/c.pem", "etcd_key": "/k.pem", "etcd_user": "web", "etcd_password_file": pw,
		}
		for k, v := range extra {
			opts[k] = v
		}
		svc := installAnnounced(t, filepath.Join(dir, fmt.Sprint("sv", i)), "web", opts)
		key, cfg, ok, err := announcerConfig(filepath.Join(svc.SvDir, render.Dir("web")))
		if err != nil || !ok {
			t.Fatalf("%v: announcerConfig: ok %v, %v", extra, ok, err)
		}
		want := etcdclient.Config{Endpoints: []string{"https://e1:2379", "https://e2:2379"}, CACert: "/etc/ssl/ca it's.pem",
			Cert: "/c.pem", Key: "/k.pem", User: "web", Password: "s3cret"}
		if !reflect.DeepEqual(cfg, want) {
			t.Errorf("%v: config %+v, want %+v", extra, cfg, want)
		}
		if wantKey, _ := render.RecordKey(svc); key != wantKey || key == "" {
			t.Errorf("%v: key %q, want %q", extra, key, wantKey)
		}
	}
}

func TestReadRecords(t *testing.T) {
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	ctx := context.Background()
	svDir := filepath.Join(t.TempDir(), "sv")
	leased := installAnnounced(t, svDir, "leased", map[string]any{"etcd_endpoints": e.Endpoint})
	forever := installAnnounced(t, svDir, "forever", map[string]any{"etcd_endpoints": e.Endpoint})
	missing := installAnnounced(t, svDir, "missing", map[string]any{"etcd_endpoints": e.Endpoint})
	down := installAnnounced(t, svDir, "down", map[string]any{"etcd_endpoints": fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t))})
	plain := installAnnounced(t, svDir, "plain", map[string]any{"announce": nil, "port": nil})

	lease, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := render.RecordKey(leased)
	if _, err := cli.Put(ctx, k, `{"host":"10.0.0.1","port":8080,"ttl":30}`, clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	k2, _ := render.RecordKey(forever)
	if _, err := cli.Put(ctx, k2, `{"host":"10.0.0.2","port":8080,"ttl":30}`); err != nil {
		t.Fatal(err)
	}

	svcs := []spec.Service{leased, forever, missing, down, plain}
	sts := make([]Status, len(svcs))
	for i := range sts {
		sts[i].Installed = true
	}
	start := time.Now()
	ReadRecords(ctx, svcs, sts)
	if took := time.Since(start); took > 2*recordTimeout {
		t.Errorf("ReadRecords took %s", took)
	}
	if r := sts[0].Record; r == nil || !r.Present || r.Host != "10.0.0.1" || r.Port != 8080 || r.LeaseTTL <= 0 || r.LeaseTTL > 30 || r.Error != "" {
		t.Errorf("leased: %+v", r)
	}
	if r := sts[1].Record; r == nil || !r.Present || r.LeaseTTL != -1 {
		t.Errorf("forever: %+v", r)
	}
	if r := sts[2].Record; r == nil || r.Present || r.Error != "" || r.Key == "" {
		t.Errorf("missing: %+v", r)
	}
	if r := sts[3].Record; r == nil || r.Present || !strings.Contains(r.Error, "etcd http://127.0.0.1:") {
		t.Errorf("down: %+v", r)
	}
	if r := sts[4].Record; r != nil {
		t.Errorf("plain (not announced): %+v", r)
	}
}

func TestStatus_CrashLoopsAndProblems(t *testing.T) {
	svDir := filepath.Join(t.TempDir(), "sv")
	svc := installAnnounced(t, svDir, "web", nil)
	root := filepath.Join(svDir, render.Dir("web"))
	fakeSupervise(t, root, "run", 123)
	fakeSupervise(t, filepath.Join(root, "announcer"), "run", 124)
	if err := os.WriteFile(filepath.Join(root, "supervise", failuresFile), []byte("4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(svc.ServiceDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(root, filepath.Join(svc.ServiceDir, render.Dir("web"))); err != nil {
		t.Fatal(err)
	}
	st, err := GetStatus(context.Background(), svc, oneContainer{ct: Container{ID: "abc", Status: "exited", Ref: "nginx:1.25"}})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Linked || st.Service.State != "run" || st.Service.PID != 123 || st.Announcer == nil || !st.Announcer.Supervised || st.CrashLoops != 4 {
		t.Fatalf("status %+v", st)
	}
	st.Record = &Record{Key: "/skydns/com/example/web/host1"}
	st.Deploy = &Deploy{Outcome: OutcomeRolledBack, Image: "nginx:1.26", RolledBackTo: "nginx:1.25", Reason: "web did not serve\nlog lines"}
	want := []string{
		"container not running (exited) (crash loop: 4 short runs in a row)",
		"no record /skydns/com/example/web/host1 in etcd while not in maintenance",
		"last deploy of nginx:1.26 rolled back (runs nginx:1.25 again): web did not serve",
	}
	if got := st.Problems(); !reflect.DeepEqual(got, want) {
		t.Errorf("problems\n%q\nwant\n%q", got, want)
	}
}

func TestStatus_Problems(t *testing.T) {
	up := func(s string) Status {
		var st Status
		st.Installed, st.Linked = true, true
		st.Service.Supervised, st.Service.State, st.Service.Want = true, "run", "up"
		st.Container, st.Running = s, true
		return st
	}
	tests := []struct {
		name string
		st   func() Status
		want []string
	}{
		{"ok", func() Status { return up("running") }, nil},
		{"NotInstalled", func() Status { return Status{} }, []string{"not installed"}},
		{"NotLinkedRunsNothing", func() Status { return Status{Installed: true} }, nil},
		{"NotSupervised", func() Status { s := up("running"); s.Service.Supervised = false; return s },
			[]string{"not supervised: no runsv runs the service (is runsvdir running?)"}},
		{"Unhealthy", func() Status { s := up("running,unhealthy"); s.Health = "unhealthy"; return s }, []string{"container unhealthy"}},
		{"StartingIsNoProblem", func() Status { s := up("running,starting"); s.Health = "starting"; return s }, nil},
		{"NoContainer", func() Status { s := up(""); s.Running = false; return s }, []string{"no container"}},
		{"RecordWithheld", func() Status {
			s := up("running")
			s.Maintenance, s.Record = true, &Record{Key: "/k"}
			return s
		}, nil},
		{"RecordUnknown", func() Status { s := up("running"); s.Record = &Record{Key: "/k", Error: "etcd down"}; return s },
			[]string{"cannot check the record /k: etcd down"}},
		{"RecordPresent", func() Status { s := up("running"); s.Record = &Record{Key: "/k", Present: true}; return s }, nil},
		{"DeployFailed", func() Status { s := up("running"); s.Deploy = &Deploy{Outcome: OutcomeFailed, Image: "x:1"}; return s },
			[]string{"last deploy of x:1 failed"}},
		{"DeployOK", func() Status { s := up("running"); s.Deploy = &Deploy{Outcome: OutcomeOK, Image: "x:1"}; return s }, nil},
		{"LeftoverNext", func() Status {
			s := up("running")
			s.Next = "running"
			s.Deploy = &Deploy{Outcome: OutcomeOK}
			return s
		},
			[]string{"a container NAME.next (running) runs beside the service, not supervised, left by an interrupted update start-first: apply again to finish or undo the update"}},
		{"NextDuringAnUpdate", func() Status {
			s := up("running")
			s.Next, s.Deploy = "running", &Deploy{Outcome: OutcomeDeploying}
			return s
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.st().Problems(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// laterContainer is a container engine whose container runs from a given time on.
type laterContainer struct {
	noContainers
	from time.Time
}

func (l laterContainer) Inspect(context.Context, string) (Container, error) {
	if time.Now().Before(l.from) {
		return Container{ID: "new", Status: "created"}, nil
	}
	return Container{ID: "new", Status: "running", Running: true}, nil
}

// TestProgress_WaitServing: the wait reports its step once, then at most once a second,
// with what it still waits for and its limit.
func TestProgress_WaitServing(t *testing.T) {
	var events []Event
	ctx := WithProgress(context.Background(), func(e Event) { events = append(events, e) })
	svc := spec.Service{Name: "web", WaitTimeout: 10}
	if _, err := waitServing(ctx, svc, t.TempDir(), laterContainer{from: time.Now().Add(2200 * time.Millisecond)}, ""); err != nil {
		t.Fatal(err)
	}
	if len(events) < 2 || len(events) > 4 {
		t.Fatalf("%d events, want 2 to 4 in 2.2 s: %+v", len(events), events)
	}
	for i, e := range events {
		if e.Step != WaitServing || !e.Long || e.Update != (i > 0) || e.Limit != 10*time.Second || !strings.Contains(e.Detail, "is not running") {
			t.Errorf("event %d: %+v", i, e)
		}
	}
}

// TestProgress_Execute: Execute reports the start of a service's plan and each action; a
// context without a progress function reports nothing (the Ansible module's case).
func TestProgress_Execute(t *testing.T) {
	svc := testService(t)
	var events []Event
	ctx := WithProgress(context.Background(), func(e Event) { events = append(events, e) })
	if _, err := Apply(ctx, svc, testTree("#!/bin/sh\necho one\n"), Options{Containers: noContainers{}, NoContainer: true}); err != nil {
		t.Fatal(err)
	}
	if len(events) < 2 || events[0].Step != StepApply || events[0].Service != "web" || events[1].Step != CreateTree || !events[1].Logged || events[1].Long {
		t.Fatalf("events %+v", events)
	}
	report(context.Background(), Event{Service: "x"}) // no progress function: nothing happens
}

// TestStatus_DependsOn: status reads a service's dependencies from its run script and the
// one it waits for from the run script's marker; --check names the wait as the reason
// there is no container.
func TestStatus_DependsOn(t *testing.T) {
	svDir := filepath.Join(t.TempDir(), "sv")
	svc := installAnnounced(t, svDir, "app", map[string]any{"depends_on": []any{"db", "cache:started"}})
	root := filepath.Join(svDir, render.Dir("app"))
	fakeSupervise(t, root, "run", 123)
	st, err := GetStatus(context.Background(), svc, oneContainer{})
	if err != nil {
		t.Fatal(err)
	}
	want := []spec.Dependency{{Name: "db", Condition: "healthy"}, {Name: "cache", Condition: "started"}}
	if !reflect.DeepEqual(st.DependsOn, want) || st.WaitingFor != nil {
		t.Fatalf("depends_on %+v waiting %+v, want %+v and no wait", st.DependsOn, st.WaitingFor, want)
	}
	if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(render.WaitingPath)), []byte("db healthy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err = GetStatus(context.Background(), svc, oneContainer{}); err != nil {
		t.Fatal(err)
	}
	if st.WaitingFor == nil || *st.WaitingFor != want[0] {
		t.Fatalf("waiting for %+v, want %+v", st.WaitingFor, want[0])
	}
	st.Linked = true
	if got, p := st.Problems(), "no container: waiting for db to be healthy (depends_on)"; len(got) == 0 || got[0] != p {
		t.Errorf("problems %q, want first %q", got, p)
	}
}
