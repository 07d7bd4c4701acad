package apply

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/testenv"
	"github.com/rundock/rundock/internal/tree"
)

// engine is a container engine that knows a few containers by name and has every image;
// these tests plan, and run no Docker.
type engine map[string]Container

func (e engine) State(_ context.Context, name string) (string, error) {
	if c, ok := e[name]; ok {
		return c.Status, nil
	}
	return "", nil
}
func (e engine) Inspect(_ context.Context, name string) (Container, error) { return e[name], nil }
func (engine) ImageID(context.Context, string) (string, error)             { return "sha256:local", nil }
func (engine) Pull(context.Context, string) error                          { return nil }
func (engine) Remove(context.Context, string) error                        { return nil }
func (e engine) List(context.Context) (map[string]Container, error)        { return e, nil }

// supervise makes dir look supervised to runit.Supervised: a reader holds supervise/ok
// open, as runsv does. No runsv runs.
func supervise(t *testing.T, dir string) {
	t.Helper()
	ok := filepath.Join(dir, "supervise", "ok")
	if err := os.MkdirAll(filepath.Dir(ok), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(ok, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(ok, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}

// sfService is a start-first service with its options over the defaults (nil: unset).
func sfService(t *testing.T, svDir string, in map[string]any) (spec.Service, tree.Tree) {
	t.Helper()
	m := map[string]any{"name": "web", "image": "web:1", "announce": 8080, "port": 80, "update": "start-first",
		"update_port": 8081, "host": "127.0.0.1", "instance": "h", "sv_dir": svDir,
		"service_dir": filepath.Join(filepath.Dir(svDir), "service")}
	for k, v := range in {
		m[k] = v
	}
	s, err := spec.FromMap(m, "h")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := render.Render(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, tr
}

// installed writes the tree of svc as a running service: files, links, both services
// supervised.
func installed(t *testing.T, svc spec.Service, tr tree.Tree) string {
	t.Helper()
	if err := os.MkdirAll(svc.SvDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := safefs.CreateDir(svc.SvDir, tr.Dir, tr.Files); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(svc.SvDir, tr.Dir)
	if err := os.MkdirAll(svc.ServiceDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range tr.Services {
		dir := filepath.Join(root, filepath.FromSlash(s.Path))
		if err := os.Symlink(dir, filepath.Join(svc.ServiceDir, s.Link)); err != nil {
			t.Fatal(err)
		}
		supervise(t, dir)
	}
	return root
}

func serving(id string, hostPort int) Container {
	return Container{ID: id, Ref: "web:1", Image: "sha256:old", Status: "running", Running: true,
		Started: time.Now().Add(-time.Hour), Ports: map[string]int{"80/tcp": hostPort}}
}

// kinds lists the plan's actions as "kind path-base (note)", the ones a deploy adds.
func kinds(p Plan) []string {
	var out []string
	for _, a := range p.Actions {
		switch a.Kind {
		case WriteFile, PruneDirs, WaitPickup, Link, CreateTree, RemoveFile:
			continue
		}
		s := string(a.Kind) + " " + filepath.Base(a.Path)
		if a.IfImageMoved {
			s += " if moved"
		}
		out = append(out, s)
	}
	return out
}

func noteOf(p Plan, k Kind) string {
	for _, a := range p.Actions {
		if a.Kind == k {
			return a.Note
		}
	}
	return ""
}

func TestPlan_StartFirst(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		old     map[string]any // the installed service's options
		new     map[string]any // the applied one's
		cur     Container
		next    bool   // a leftover web.next exists
		drain   string // the drain file names this container
		journal *Deploy
		want    []string
		port    string // in the start note
		notID   string
	}{
		{name: "new image: start beside, wait, switch, wait", new: map[string]any{"image": "web:2"}, cur: serving("old", 8080),
			want: []string{"begin deploy of docker-web", "start beside the old container: docker-web", "wait for the new container web.next", "switch docker-web", "wait for serving docker-web"},
			port: "on host port 8081"},
		{name: "the old one holds update_port: the new one takes announce", new: map[string]any{"image": "web:2"}, cur: serving("old", 8081),
			want: []string{"begin deploy of docker-web", "start beside the old container: docker-web", "wait for the new container web.next", "switch docker-web", "wait for serving docker-web"},
			port: "on host port 8080"},
		{name: "announce_as container: no host port", old: map[string]any{"announce_as": "container", "update_port": nil, "host": nil},
			new: map[string]any{"announce_as": "container", "update_port": nil, "host": nil, "image": "web:2"}, cur: serving("old", 0),
			want: []string{"begin deploy of docker-web", "start beside the old container: docker-web", "wait for the new container web.next", "switch docker-web", "wait for serving docker-web"}},
		{name: "an old container that does not serve is replaced stop-first", new: map[string]any{"image": "web:2"},
			cur:  Container{ID: "old", Status: "exited", Started: time.Now().Add(-time.Hour)},
			want: []string{"begin deploy of docker-web", "restart docker-web", "wait for serving docker-web"}},
		{name: "stop-first restarts", old: map[string]any{"update": "stop-first", "update_port": nil}, new: map[string]any{"update": "stop-first", "update_port": nil, "image": "web:2"},
			cur: serving("old", 8080), want: []string{"begin deploy of docker-web", "restart docker-web", "wait for serving docker-web"}},
		{name: "turning start-first on replaces start-first", old: map[string]any{"update": "stop-first", "update_port": nil}, cur: serving("old", 8080),
			want: []string{"begin deploy of docker-web", "start beside the old container: docker-web", "wait for the new container web.next", "switch docker-web", "restart announcer", "wait for serving docker-web"},
			port: "on host port 8081"},
		{name: "pull always: start-first if the pull moved the image", new: map[string]any{"pull": "always"}, old: map[string]any{"pull": "always"}, cur: serving("old", 8080),
			want: []string{"pull web:1", "begin deploy of docker-web if moved", "start beside the old container: docker-web if moved", "wait for the new container web.next if moved", "switch docker-web if moved", "wait for serving docker-web if moved"}},
		{name: "killed before the switch: start over", cur: serving("old", 8080), next: true,
			journal: &Deploy{Outcome: OutcomeDeploying, Phase: PhaseNext, OldID: "old", NextID: "new", Started: time.Now().Add(-time.Minute)},
			want:    []string{"begin deploy of docker-web", "remove leftover container web.next", "start beside the old container: docker-web", "wait for the new container web.next", "switch docker-web", "wait for serving docker-web"},
			port:    "half-done"},
		{name: "killed before the new container started: start over", cur: serving("old", 8080),
			journal: &Deploy{Outcome: OutcomeDeploying, Started: time.Now().Add(-time.Minute)},
			want:    []string{"begin deploy of docker-web", "remove leftover container web.next", "start beside the old container: docker-web", "wait for the new container web.next", "switch docker-web", "wait for serving docker-web"}},
		{name: "killed before the switch, the old one crashed and runit started the new tree: wait", cur: Container{ID: "new2", Status: "running", Running: true, Started: time.Now()},
			journal: &Deploy{Outcome: OutcomeDeploying, Phase: PhaseNext, OldID: "old", NextID: "new", Started: time.Now().Add(-time.Minute)},
			want:    []string{"begin deploy of docker-web", "wait for serving docker-web"}},
		{name: "killed in the switch: runit finishes it, wait", cur: serving("old", 8080), drain: "old",
			journal: &Deploy{Outcome: OutcomeDeploying, Phase: PhaseSwitch, OldID: "old", NextID: "new", Started: time.Now().Add(-time.Minute)},
			want:    []string{"begin deploy of docker-web", "wait for serving docker-web"}, notID: "old"},
		{name: "killed before sv term of the switch: send it again, wait", cur: serving("old", 8080), drain: "older",
			journal: &Deploy{Outcome: OutcomeDeploying, Phase: PhaseSwitch, OldID: "old", NextID: "new", Started: time.Now().Add(-time.Minute)},
			want:    []string{"begin deploy of docker-web", "restart docker-web", "wait for serving docker-web"}, notID: "old"},
		{name: "killed in the switch, already adopted: wait", cur: Container{ID: "new", Status: "running", Running: true, Started: time.Now()},
			journal: &Deploy{Outcome: OutcomeDeploying, Phase: PhaseSwitch, OldID: "old", NextID: "new", Started: time.Now().Add(-time.Minute)},
			want:    []string{"begin deploy of docker-web", "wait for serving docker-web"}, notID: "old"},
		{name: "nothing changed: nothing to do", cur: serving("old", 8080)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svDir := filepath.Join(t.TempDir(), "sv")
			osvc, otr := sfService(t, svDir, tt.old)
			root := installed(t, osvc, otr)
			if tt.journal != nil {
				if err := writeDeploy(root, *tt.journal); err != nil {
					t.Fatal(err)
				}
			}
			if tt.drain != "" {
				if err := os.WriteFile(statePath(root, drainFile), []byte(tt.drain+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			svc, tr := sfService(t, svDir, tt.new)
			eng := engine{"web": tt.cur}
			if tt.next {
				eng["web.next"] = Container{ID: "new", Status: "running", Running: true}
			}
			p, err := MakePlan(ctx, svc, tr, eng)
			if err != nil {
				t.Fatal(err)
			}
			if got := kinds(p); !slices.Equal(got, tt.want) {
				t.Fatalf("plan\n got %q\nwant %q", got, tt.want)
			}
			if tt.port != "" && !strings.Contains(noteOf(p, StartNext), tt.port) {
				t.Errorf("start note %q does not say %q", noteOf(p, StartNext), tt.port)
			}
			if p.notID != tt.notID {
				t.Errorf("the wait waits for %q to be replaced, want %q", p.notID, tt.notID)
			}
			// Check mode prints the plan: where the new container starts and the switch.
			if tt.port != "" {
				msg := summary(p, true)
				for _, w := range []string{"would start beside the old container: " + root, tt.port, "would switch " + root, "runit's run adopts web.next"} {
					if !strings.Contains(msg, w) {
						t.Errorf("check mode says %q, which lacks %q", msg, w)
					}
				}
			}
		})
	}
}

func TestPlan_DisableRemovesLeftoverNext(t *testing.T) {
	svDir := filepath.Join(t.TempDir(), "sv")
	svc, tr := sfService(t, svDir, nil)
	installed(t, svc, tr)
	svc.State = spec.StateDisabled
	for _, next := range []bool{true, false} {
		eng := engine{"web": serving("old", 8080)}
		if next {
			eng["web.next"] = Container{ID: "new", Status: "running", Running: true}
		}
		p, err := MakePlan(context.Background(), svc, tree.Tree{}, eng)
		if err != nil {
			t.Fatal(err)
		}
		has := slices.ContainsFunc(p.Actions, func(a Action) bool { return a.Kind == RemoveNext && a.Path == "web.next" })
		if has != next {
			t.Errorf("leftover web.next %v: plan %q removes it: %v", next, kinds(p), has)
		}
	}
}

func TestNextPortAndRecordPort(t *testing.T) {
	svDir := filepath.Join(t.TempDir(), "sv")
	svc, _ := sfService(t, svDir, nil)
	for held, want := range map[int]int{8080: 8081, 8081: 8080, 0: 8081} {
		if got := nextPort(svc, serving("x", held)); got != want {
			t.Errorf("old container on %d: next port %d, want %d", held, got, want)
		}
	}
	root := filepath.Join(svDir, "docker-web")
	if err := os.MkdirAll(filepath.Join(root, render.StatePath), 0o755); err != nil {
		t.Fatal(err)
	}
	for content, want := range map[string]int{"": 8080, "8081\n": 8081, "8080\n": 8080, "9999\n": 8080} {
		if content != "" {
			if err := os.WriteFile(statePath(root, render.PortFile), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got := recordPort(svc, root); got != want {
			t.Errorf("port file %q: record port %d, want %d", content, got, want)
		}
	}
	c, _ := sfService(t, svDir, map[string]any{"announce_as": "container", "update_port": nil, "host": nil})
	if got := recordPort(c, root); got != 80 || nextPort(c, serving("x", 0)) != 0 {
		t.Errorf("announce_as container: record port %d (want the container port 80), next port %d (want 0)", got, nextPort(c, serving("x", 0)))
	}
}

// recordingEngine is engine that records removals.
type recordingEngine struct {
	engine
	removed []string
}

func (r *recordingEngine) Remove(_ context.Context, name string) error {
	r.removed = append(r.removed, name)
	return nil
}

// A new container that does not serve is undone before the switch: it is removed, the
// previous files are back byte for byte, nothing is restarted, the journal says so, and
// the error names the old container as still serving.
func TestAbortNext_PutsThePreviousTreeBack(t *testing.T) {
	ctx := context.Background()
	svDir := filepath.Join(t.TempDir(), "sv")
	osvc, otr := sfService(t, svDir, nil)
	root := installed(t, osvc, otr)
	if err := savePrevious(root); err != nil {
		t.Fatal(err)
	}
	svc, tr := sfService(t, svDir, map[string]any{"image": "web:broken"})
	eng := &recordingEngine{engine: engine{"web": serving("old", 8080)}}
	p, err := MakePlan(ctx, svc, tr, eng)
	if err != nil {
		t.Fatal(err)
	}
	e := &executor{p: p, c: eng, log: slog.New(slog.DiscardHandler)}
	for _, a := range p.Actions { // the new files, as the plan writes them before StartNext
		if a.Kind == WriteFile {
			if err := e.run(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d, _ := compareTree(root, otr.Files); len(d.changes) == 0 {
		t.Fatal("the new files were not written; the test would prove nothing")
	}
	e.deploy = Deploy{Outcome: OutcomeDeploying, Phase: PhaseNext, OldID: "old", NextID: "new"}
	err = e.abortNext(ctx, errors.New("web: the new container web.next did not serve"))
	if err == nil || !strings.Contains(err.Error(), "was not touched and still serves") || !strings.Contains(err.Error(), "did not serve") {
		t.Fatalf("error %v: want the cause and that the old container still serves", err)
	}
	if d, err := compareTree(root, otr.Files); err != nil || len(d.changes) != 0 {
		t.Fatalf("the previous files are not back: %+v, %v", d.changes, err)
	}
	if !slices.Equal(eng.removed, []string{"web.next"}) {
		t.Fatalf("removed %q, want only web.next", eng.removed)
	}
	d, err := readDeploy(root)
	if err != nil || d.Outcome != OutcomeRolledBack || d.RolledBackTo != "web:1" {
		t.Fatalf("journal %+v, %v: want rolled back to web:1", d, err)
	}
}

// fakeScripts replaces the tree's run and announcer/run with scripts that record their
// arguments in root/args.run and root/args.announcer (the announcer then sleeps, as the
// real one runs), so startNext runs without Docker.
func fakeScripts(t *testing.T, root string) {
	t.Helper()
	scripts := map[string]string{
		"run":           "#!/bin/sh\necho \"$*\" >" + filepath.Join(root, "args.run") + "\n",
		"announcer/run": "#!/bin/sh\necho \"$*\" >" + filepath.Join(root, "args.announcer") + "\nexec sleep 60\n",
	}
	for p, body := range scripts {
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func readArgs(t *testing.T, root, which string) string {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(root, "args."+which))
	return strings.TrimSpace(string(b))
}

// startNext and waitNext with the real code paths and an embedded etcd; Docker is the
// fake engine and run and announcer/run are scripts that record how they were called.
func TestStartNextWaitNext(t *testing.T) {
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	ctx := context.Background()
	newCt := Container{ID: "new", Ref: "web:2", Status: "running", Running: true, Health: "healthy", Ports: map[string]int{"80/tcp": 8081}}
	for _, tt := range []struct {
		name    string
		next    Container
		record  string // put under h-next, "" for none
		wantErr []string
	}{
		{name: "serves", next: newCt, record: `{"host":"127.0.0.1","port":8081,"ttl":30}`},
		{name: "unhealthy", next: Container{ID: "new", Status: "running", Running: true, Health: "unhealthy", HealthLog: "connection refused"},
			wantErr: []string{"web.next did not serve within wait_timeout 1 s", "web.next is unhealthy", "connection refused", "removed web.next", "put the previous files back", "was not touched and still serves"}},
		{name: "record on the wrong port", next: newCt, record: `{"host":"127.0.0.1","port":8080,"ttl":30}`,
			wantErr: []string{"not this service's port 8081", "was not touched"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svDir := filepath.Join(t.TempDir(), "sv")
			opts := map[string]any{"etcd_endpoints": e.Endpoint, "wait_timeout": 1}
			osvc, otr := sfService(t, svDir, opts)
			root := installed(t, osvc, otr)
			if err := savePrevious(root); err != nil {
				t.Fatal(err)
			}
			opts["image"] = "web:2"
			svc, tr := sfService(t, svDir, opts)
			eng := &recordingEngine{engine: engine{"web": serving("old", 8080), "web.next": tt.next, "new": tt.next}}
			p, err := MakePlan(ctx, svc, tr, eng)
			if err != nil {
				t.Fatal(err)
			}
			key, _ := render.RecordKey(spec.Service{Domain: svc.Domain, AnnounceName: svc.AnnounceName, Instance: svc.Instance + render.NextInstanceSuffix})
			cli.Delete(ctx, key)
			if tt.record != "" {
				if _, err := cli.Put(ctx, key, tt.record); err != nil {
					t.Fatal(err)
				}
			}
			x := &executor{p: p, c: eng, log: slog.New(slog.DiscardHandler)}
			defer x.stopNextAnnouncer()
			for _, a := range p.Actions {
				if a.Kind == StartNext {
					break
				}
				if err := x.run(ctx, a); err != nil {
					t.Fatalf("%s: %v", a, err)
				}
			}
			fakeScripts(t, root)
			if err := x.startNext(ctx); err != nil {
				t.Fatalf("startNext: %v", err)
			}
			if got := readArgs(t, root, "run"); got != "next 8081" {
				t.Errorf("run was called with %q, want next 8081", got)
			}
			testenv.Eventually(t, 5*time.Second, "the second announcer runs", func() bool {
				return readArgs(t, root, "announcer") == "--instance h-next --container web.next"
			})
			if d, _ := readDeploy(root); d == nil || d.Phase != PhaseNext || d.NextID != "new" || d.OldID != "old" || d.NextPort != 8081 || d.PrevPort != 8080 {
				t.Errorf("journal %+v: want phase next, old, new, 8081, 8080", d)
			}
			err = x.waitNext(ctx)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("waitNext: %v", err)
				}
				if x.nextAnn == nil {
					t.Fatal("the second announcer stopped before the switch")
				}
				return
			}
			if err == nil {
				t.Fatal("waitNext succeeded")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if x.nextAnn != nil {
				t.Error("the second announcer still runs after the undo")
			}
			if !slices.Contains(eng.removed, "web.next") {
				t.Errorf("removed %q, want web.next", eng.removed)
			}
			os.Remove(filepath.Join(root, "args.run")) // the test's, no part of any tree
			os.Remove(filepath.Join(root, "args.announcer"))
			if d, err := compareTree(root, otr.Files); err != nil || len(d.changes) != 0 {
				t.Errorf("the previous files are not back: %+v, %v", d.changes, err)
			}
			if d, _ := readDeploy(root); d == nil || d.Outcome != OutcomeRolledBack {
				t.Errorf("journal %+v, want rolled back", d)
			}
		})
	}
}

// switchingEngine is engine behind a mutex whose containers a test changes as runit
// would.
type switchingEngine struct {
	mu sync.Mutex
	recordingEngine
}

func (s *switchingEngine) State(ctx context.Context, name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.engine.State(ctx, name)
}

func (s *switchingEngine) Inspect(ctx context.Context, name string) (Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.engine.Inspect(ctx, name)
}

func (s *switchingEngine) Remove(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.engine, name)
	return s.recordingEngine.Remove(ctx, name)
}

// TestExecute_StartFirst runs a whole update start-first through Execute: the switch
// (sv term, replaced here) comes only once the new container serves with its own record;
// what runit then does (the old container goes, run adopts web.next, the announcer
// announces it on the port it publishes) is played by the test; the wait ends on the
// service's own record with the new port, the second announcer is stopped, and the
// journal says ok.
func TestExecute_StartFirst(t *testing.T) {
	e := testenv.StartEtcd(t)
	cli := testenv.EtcdClient(t, e.Endpoint)
	ctx := context.Background()
	svDir := filepath.Join(t.TempDir(), "sv")
	opts := map[string]any{"etcd_endpoints": e.Endpoint, "wait_timeout": 5, "drain": 0, "bin_dir": t.TempDir()}
	osvc, otr := sfService(t, svDir, opts)
	root := filepath.Join(svDir, otr.Dir)
	// announcer/run, the same in both trees (so nothing restarts it), records how it was
	// called and sleeps: the real one would follow Docker.
	fakeAnnouncer := []byte("#!/bin/sh\necho \"$*\" >>" + filepath.Join(root, "args") + "\necho $$ >" + filepath.Join(root, "announcer.pid") + "\nexec sleep 60\n")
	fake := func(tr tree.Tree) {
		for i := range tr.Files {
			if tr.Files[i].Path == "announcer/run" {
				tr.Files[i].Data = fakeAnnouncer
			}
		}
	}
	fake(otr)
	installed(t, osvc, otr)
	opts["image"] = "web:2"
	svc, tr := sfService(t, svDir, opts)
	fake(tr)
	newCt := Container{ID: "new", Ref: "web:2", Status: "running", Running: true, Ports: map[string]int{"80/tcp": 8081}}
	eng := &switchingEngine{recordingEngine: recordingEngine{engine: engine{"web": serving("old", 8080)}}}
	p, err := MakePlan(ctx, svc, tr, eng)
	if err != nil {
		t.Fatal(err)
	}
	// Replace the new files' run and announcer/run, once written, by recording scripts: the
	// real ones would call Docker.
	for i, a := range p.Actions {
		switch {
		case a.Kind == WriteFile && a.File.Path == "run":
			// run next returns once the test has "started" web.next.
			p.Actions[i].File.Data = []byte("#!/bin/sh\necho \"$*\" >>" + filepath.Join(root, "args") + "\nwhile [ ! -e " + filepath.Join(root, "started") + " ]; do sleep 0.05; done\n")
		case a.Kind == Restart || a.Kind == Start || a.Kind == Stop || a.Kind == Unlink:
			t.Fatalf("the plan has %s, which would run sv", a)
		}
	}
	key, _ := render.RecordKey(svc)
	nextKey, _ := render.RecordKey(spec.Service{Domain: svc.Domain, AnnounceName: svc.AnnounceName, Instance: "h-next"})
	// docker run --detach of run next: web.next appears, and its announcer's record.
	go func() {
		testenv.Eventually(t, 10*time.Second, "run next was called", func() bool {
			b, _ := os.ReadFile(filepath.Join(root, "args"))
			return strings.Contains(string(b), "next 8081")
		})
		eng.mu.Lock()
		eng.engine["web.next"], eng.engine["new"] = newCt, newCt
		eng.mu.Unlock()
		os.WriteFile(filepath.Join(root, "started"), nil, 0o644)
		cli.Put(ctx, nextKey, `{"host":"127.0.0.1","port":8081,"ttl":30}`)
	}()
	switched := false
	old := svTerm
	t.Cleanup(func() { svTerm = old })
	svTerm = func(_ context.Context, dir string) error {
		if dir != root {
			t.Errorf("sv term %s, want %s", dir, root)
		}
		resp, _ := cli.Get(ctx, nextKey)
		if len(resp.Kvs) == 0 {
			t.Error("the switch came before the new container's record")
		}
		if b, _ := os.ReadFile(statePath(root, render.PortFile)); string(b) != "8081\n" {
			t.Errorf("port file %q at the switch, want 8081", b)
		}
		if d, _ := readDeploy(root); d == nil || d.Phase != PhaseSwitch {
			t.Errorf("journal %+v at the switch, want phase switch", d)
		}
		switched = true
		go func() { // runit: drain, stop, adopt; the announcer announces the new port
			time.Sleep(300 * time.Millisecond)
			eng.mu.Lock()
			delete(eng.engine, "web.next")
			eng.engine["web"] = newCt
			eng.mu.Unlock()
			cli.Put(ctx, key, `{"host":"127.0.0.1","port":8081,"ttl":30}`)
		}()
		return nil
	}
	out, err := Execute(ctx, p, eng, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Execute: %v (warnings %q)", err, out.Warnings)
	}
	if !switched {
		t.Fatal("no switch")
	}
	b, _ := os.ReadFile(filepath.Join(root, "args"))
	if want := "next 8081\n--instance h-next --container web.next\n"; string(b) != want {
		t.Errorf("run and announcer/run were called with %q, want %q", b, want)
	}
	if d, _ := readDeploy(root); d == nil || d.Outcome != OutcomeOK || d.NextID != "new" || d.OldID != "old" {
		t.Errorf("journal %+v, want ok with old and new", d)
	}
	if len(out.Warnings) != 0 {
		t.Errorf("warnings %q", out.Warnings)
	}
	pid, _ := os.ReadFile(filepath.Join(root, "announcer.pid"))
	if _, err := os.Stat("/proc/" + strings.TrimSpace(string(pid))); len(pid) == 0 || err == nil {
		t.Errorf("the second announcer (pid %q) still runs after the update", pid)
	}
}
