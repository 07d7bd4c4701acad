package apply

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/testenv"
	"github.com/rundock/rundock/internal/tree"
)

// noContainers is a container engine with no containers: state present never asks it,
// and these tests do not run runit or Docker (the integration tests do).
type noContainers struct{}

func (noContainers) State(context.Context, string) (string, error) { return "", nil }
func (noContainers) Remove(context.Context, string) error          { return nil }
func (noContainers) Inspect(context.Context, string) (Container, error) {
	return Container{}, nil
}
func (noContainers) ImageID(context.Context, string) (string, error) { return "", nil }
func (noContainers) Pull(context.Context, string) error              { return nil }
func (noContainers) List(context.Context) (map[string]Container, error) {
	return nil, nil
}

func testService(t *testing.T) spec.Service {
	t.Helper()
	root := t.TempDir()
	return spec.Service{State: spec.StatePresent, Name: "web", SvDir: filepath.Join(root, "sv"),
		ServiceDir: filepath.Join(root, "service"), StopTimeout: 1}
}

func testTree(run string) tree.Tree {
	return tree.Tree{
		Dir: "docker-web",
		Files: []tree.File{
			{Path: "run", Mode: 0o755, Data: []byte(run)},
			{Path: "log/run", Mode: 0o755, Data: []byte("#!/bin/sh\nexec svlogd -tt /x\n")},
			{Path: "control/t", Mode: 0o755, Data: []byte("#!/bin/sh\nexit 0\n")},
		},
		Services: []tree.Service{{Path: ".", Link: "docker-web"}},
	}
}

func run(t *testing.T, svc spec.Service, tr tree.Tree, opt Options) Result {
	t.Helper()
	opt.Containers = noContainers{}
	res, err := Apply(context.Background(), svc, tr, opt)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return res
}

func TestApply_Present(t *testing.T) {
	svc := testService(t)
	root := filepath.Join(svc.SvDir, "docker-web")
	tr := testTree("#!/bin/sh\necho one\n")

	if res := run(t, svc, tr, Options{}); !res.Changed {
		t.Fatal("first run: changed false")
	}
	if res := run(t, svc, tr, Options{}); res.Changed {
		t.Fatalf("second run: changed true: %s", res.Msg)
	}
	// runsv's supervise/ is never read, changed or removed; stale files are removed.
	os.MkdirAll(filepath.Join(root, "supervise"), 0o700)
	os.WriteFile(filepath.Join(root, "supervise", "status"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(root, "stale"), []byte("old\n"), 0o644)
	if res := run(t, svc, tr, Options{}); !res.Changed {
		t.Fatal("stale file: changed false")
	}
	if _, err := os.Stat(filepath.Join(root, "stale")); err == nil {
		t.Error("stale file kept")
	}
	if data, _ := os.ReadFile(filepath.Join(root, "supervise", "status")); string(data) != "x" {
		t.Error("supervise/ touched")
	}
	// A mode-only difference is a change.
	os.Chmod(filepath.Join(root, "run"), 0o644)
	if res := run(t, svc, tr, Options{Diff: true}); !res.Changed || len(res.Diff) != 1 || res.Diff[0].BeforeMode != "0644" {
		t.Fatalf("mode change: %+v", res)
	}
	if fi, _ := os.Stat(filepath.Join(root, "run")); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode not restored: %v", fi.Mode())
	}
	// A file no longer rendered goes, with its directory.
	tr.Files = tr.Files[:1]
	run(t, svc, tr, Options{})
	if _, err := os.Stat(filepath.Join(root, "log")); err == nil {
		t.Error("log/ kept after log/run was no longer rendered")
	}
	// No temp files left behind.
	entries, _ := os.ReadDir(svc.SvDir)
	for _, e := range entries {
		if e.Name() != "docker-web" && e.Name() != LockName {
			t.Errorf("left in sv_dir: %s", e.Name())
		}
	}
}

func TestApply_CheckModeTouchesNothing(t *testing.T) {
	svc := testService(t)
	tr := testTree("#!/bin/sh\necho one\n")
	for _, state := range []spec.State{spec.StatePresent, spec.StateAbsent, spec.StateDisabled} {
		svc.State = state
		res := run(t, svc, tr, Options{CheckMode: true, Diff: true})
		if _, err := os.Lstat(svc.SvDir); err == nil {
			t.Fatalf("%s: check mode created %s", state, svc.SvDir)
		}
		if want := state == spec.StatePresent; res.Changed != want {
			t.Errorf("%s: changed=%v, want %v", state, res.Changed, want)
		}
	}
	svc.State = spec.StatePresent
	run(t, svc, tr, Options{})
	before := testenv.Snapshot(filepath.Dir(svc.SvDir))
	changed := testTree("#!/bin/sh\necho two\n")
	res := run(t, svc, changed, Options{CheckMode: true, Diff: true})
	if !res.Changed || len(res.Diff) != 1 || !strings.Contains(res.Diff[0].After, "two") {
		t.Fatalf("check mode: %+v", res)
	}
	svc.State = spec.StateAbsent
	if res := run(t, svc, changed, Options{CheckMode: true}); !res.Changed {
		t.Error("check mode absent of an installed tree: changed false")
	}
	if after := testenv.Snapshot(filepath.Dir(svc.SvDir)); after != before {
		t.Errorf("check mode changed the disk:\n%s\n---\n%s", before, after)
	}
}

func TestApply_RefusesSymlinks(t *testing.T) {
	cases := []struct {
		name  string
		plant func(root, victim string) error
	}{
		{"file", func(root, victim string) error {
			os.Remove(filepath.Join(root, "run"))
			return os.Symlink(filepath.Join(victim, "file"), filepath.Join(root, "run"))
		}},
		{"directory", func(root, victim string) error {
			os.RemoveAll(filepath.Join(root, "log"))
			return os.Symlink(victim, filepath.Join(root, "log"))
		}},
		{"tree", func(root, victim string) error {
			os.RemoveAll(root)
			return os.Symlink(victim, root)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc := testService(t)
			root := filepath.Join(svc.SvDir, "docker-web")
			victim := t.TempDir()
			os.WriteFile(filepath.Join(victim, "file"), []byte("precious\n"), 0o644)
			run(t, svc, testTree("#!/bin/sh\necho one\n"), Options{})
			if err := c.plant(root, victim); err != nil {
				t.Fatal(err)
			}
			before := testenv.Snapshot(filepath.Dir(svc.SvDir)) + testenv.Snapshot(victim)
			for _, state := range []spec.State{spec.StatePresent, spec.StateAbsent} {
				svc.State = state
				_, err := Apply(context.Background(), svc, testTree("#!/bin/sh\necho two\n"), Options{Containers: noContainers{}})
				if !errors.Is(err, ErrSymlink) {
					t.Fatalf("%s: want ErrSymlink, got %v", state, err)
				}
			}
			if after := testenv.Snapshot(filepath.Dir(svc.SvDir)) + testenv.Snapshot(victim); after != before {
				t.Errorf("disk changed:\n%s\n---\n%s", before, after)
			}
		})
	}
}

// sv_dir itself may be a symlink (like /etc/service on Debian).
func TestApply_SymlinkedSvDir(t *testing.T) {
	svc := testService(t)
	real := t.TempDir()
	os.MkdirAll(filepath.Dir(svc.SvDir), 0o755)
	if err := os.Symlink(real, svc.SvDir); err != nil {
		t.Fatal(err)
	}
	tr := testTree("#!/bin/sh\n")
	if res := run(t, svc, tr, Options{}); !res.Changed {
		t.Fatal("changed false")
	}
	if res := run(t, svc, tr, Options{}); res.Changed {
		t.Fatal("second run changed")
	}
	if _, err := os.Stat(filepath.Join(real, "docker-web", "run")); err != nil {
		t.Fatal(err)
	}
}

// Concurrent runs serialize on the lock: every run succeeds, exactly one writes.
func TestApply_ConcurrentRunsSerialize(t *testing.T) {
	svc := testService(t)
	tr := testTree("#!/bin/sh\necho one\n")
	var wg sync.WaitGroup
	var mu sync.Mutex
	changed := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := Apply(context.Background(), svc, tr, Options{Containers: noContainers{}})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			if res.Changed {
				changed++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if changed != 1 {
		t.Fatalf("%d of 8 concurrent runs reported a change, want exactly 1", changed)
	}
}

// The unified diff applies with patch(1) and turns before into after.
func TestFileDiff_Unified(t *testing.T) {
	cases := []struct {
		name, before, after string
	}{
		{"change in the middle", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n", "a\nb\nc\nd\nX\nf\ng\nh\ni\nj\n"},
		{"two hunks", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n", "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n16\n"},
		{"new file", "", "x\ny\n"},
		{"removed file", "x\ny\n", ""},
		{"no final newline", "a\nb", "a\nc"},
	}
	if _, err := exec.LookPath("patch"); err != nil {
		t.Fatal("patch is not installed: apt-get install patch")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			f := filepath.Join(dir, "f")
			os.WriteFile(f, []byte(c.before), 0o644)
			d := FileDiff{Path: "f", Before: c.before, After: c.after, BeforeMode: "0644", AfterMode: "0644"}
			cmd := exec.Command("patch", "-s", f)
			cmd.Stdin = strings.NewReader(d.Unified())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("patch: %v: %s\ndiff:\n%s", err, out, d.Unified())
			}
			got, _ := os.ReadFile(f)
			if string(got) != c.after {
				t.Errorf("patched file %q, want %q; diff:\n%s", got, c.after, d.Unified())
			}
		})
	}
}

// TestApply_EnvDiffRedacted: the diff of the env file shows keys and which values changed,
// never a value (issue 13: secrets in diffs).
func TestApply_EnvDiffRedacted(t *testing.T) {
	svc := testService(t)
	tr := testTree("#!/bin/sh\n")
	tr.Files = append(tr.Files, tree.File{Path: render.EnvPath, Mode: 0o600, Data: []byte("DB_PASSWORD=hunter2\nMODE=prod\n")})
	if res := run(t, svc, tr, Options{Diff: true}); strings.Contains(fmt.Sprint(res.Diff), "hunter2") {
		t.Errorf("the diff of a new env file shows the secret: %+v", res.Diff)
	}
	if fi, err := os.Stat(filepath.Join(svc.SvDir, "docker-web", render.EnvPath)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("env file %v %v, want mode 0600", fi, err)
	}
	tr.Files[len(tr.Files)-1].Data = []byte("DB_PASSWORD=correct-horse\nMODE=prod\n")
	res := run(t, svc, tr, Options{CheckMode: true, Diff: true})
	out := fmt.Sprint(res.Diff)
	if strings.Contains(out, "hunter2") || strings.Contains(out, "correct-horse") {
		t.Errorf("the diff shows a secret: %s", out)
	}
	if !strings.Contains(out, "DB_PASSWORD=(secret, changed)") || !strings.Contains(out, "MODE=(secret)\n") {
		t.Errorf("the diff does not say which key changed: %s", out)
	}
}

// TestApply_AbsentUnknownCreatesNothing: absent (or disabled) of a service that was never
// installed leaves no sv_dir and no lock behind (issue 13).
func TestApply_AbsentUnknownCreatesNothing(t *testing.T) {
	for _, state := range []spec.State{spec.StateAbsent, spec.StateDisabled} {
		svc := testService(t)
		svc.State = state
		if res := run(t, svc, tree.Tree{}, Options{}); res.Changed {
			t.Errorf("%s of an unknown service: changed", state)
		}
		if _, err := os.Lstat(svc.SvDir); err == nil {
			t.Errorf("%s of an unknown service created %s", state, svc.SvDir)
		}
	}
}

// TestApply_ForeignLinkLeftAlone: a link in service_dir with the service's link name that
// points outside its tree is someone else's: no state stops, unlinks or replaces it.
func TestApply_ForeignLinkLeftAlone(t *testing.T) {
	for _, state := range []spec.State{spec.StateDisabled, spec.StateAbsent, spec.StateEnabled} {
		svc := testService(t)
		other := t.TempDir()
		os.MkdirAll(svc.ServiceDir, 0o755)
		link := filepath.Join(svc.ServiceDir, "docker-web")
		if err := os.Symlink(other, link); err != nil {
			t.Fatal(err)
		}
		svc.State = state
		_, err := Apply(context.Background(), svc, testTree("#!/bin/sh\n"), Options{Containers: noContainers{}})
		if !errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), other) {
			t.Errorf("%s: error %v, want ErrNotOurs naming %s", state, err, other)
		}
		if got, _ := os.Readlink(link); got != other {
			t.Errorf("%s: the foreign link now points to %q", state, got)
		}
	}
}

// TestApply_SharedRecordRefused: two services on one host whose announcers would write one
// key are refused, the second before it changes anything (issue 13 point 4).
func TestApply_SharedRecordRefused(t *testing.T) {
	root := t.TempDir()
	mk := func(name string) (spec.Service, tree.Tree) {
		s, err := spec.FromMap(map[string]any{"name": name, "image": "nginx", "announce": 80, "announce_name": "web",
			"instance": "h1", "state": "present", "sv_dir": filepath.Join(root, "sv"), "service_dir": filepath.Join(root, "service")}, "h1")
		if err != nil {
			t.Fatal(err)
		}
		tr, err := render.Render(s)
		if err != nil {
			t.Fatal(err)
		}
		return s, tr
	}
	a, ta := mk("web-a")
	run(t, a, ta, Options{})
	b, tb := mk("web-b")
	before := testenv.Snapshot(root)
	_, err := Apply(context.Background(), b, tb, Options{Containers: noContainers{}})
	if err == nil || !strings.Contains(err.Error(), "/skydns/com/example/prod/s/web/h1") || !strings.Contains(err.Error(), "docker-web-a") {
		t.Fatalf("second service with the same record: error %v, want one naming the key and the other tree", err)
	}
	if testenv.Snapshot(root) != before {
		t.Error("the refused apply changed the disk")
	}
	root = t.TempDir()
	c, _ := mk("web-c")
	d, _ := mk("web-d")
	if _, err := Services(context.Background(), []spec.Service{c, d}, Options{Containers: noContainers{}}); err == nil || !strings.Contains(err.Error(), "both would announce") {
		t.Errorf("one apply of two new services with the same record: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "sv", "docker-web-c")); err == nil {
		t.Error("the refused apply installed the first service")
	}
}

// TestServices_SharedRecordFollowsTheRun: the record keys sv_dir's trees announce are read
// once per run, and a service applied earlier in the run is seen with its new key: a
// service may take over the key another one gave up before it in the same run.
func TestServices_SharedRecordFollowsTheRun(t *testing.T) {
	root := t.TempDir()
	mk := func(name, instance string) spec.Service {
		s, err := spec.FromMap(map[string]any{"name": name, "image": "nginx", "announce": 80, "announce_name": "web",
			"instance": instance, "state": "present", "sv_dir": filepath.Join(root, "sv"), "service_dir": filepath.Join(root, "service")}, "h1")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	opt := Options{Containers: noContainers{}}
	if _, err := Services(context.Background(), []spec.Service{mk("web-a", "h1")}, opt); err != nil {
		t.Fatal(err)
	}
	// web-b first: web-a's tree still announces h1.
	if _, err := Services(context.Background(), []spec.Service{mk("web-b", "h1"), mk("web-a", "h2")}, opt); err == nil || !strings.Contains(err.Error(), "docker-web-a") {
		t.Fatalf("web-b taking web-a's key before web-a moved: %v, want refused naming docker-web-a", err)
	}
	// web-a moves first, then web-b takes its old key.
	res, err := Services(context.Background(), []spec.Service{mk("web-a", "h2"), mk("web-b", "h1")}, opt)
	if err != nil || len(res) != 2 || !res[0].Changed || !res[1].Changed {
		t.Fatalf("web-a moving to h2, then web-b taking h1: %v %+v", err, res)
	}
	if _, err := Services(context.Background(), []spec.Service{mk("web-c", "h2")}, opt); err == nil || !strings.Contains(err.Error(), "docker-web-a") {
		t.Fatalf("web-c taking web-a's new key: %v, want refused naming docker-web-a", err)
	}
}
