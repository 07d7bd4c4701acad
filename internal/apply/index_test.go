package apply

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/spec"
)

// indexed applies tr until the index records it: the run that writes a tree cannot (its
// ctimes are too recent), the next one past racyMargin does.
func indexed(t *testing.T, apply func() Result) {
	t.Helper()
	apply()
	time.Sleep(racyMargin + 10*time.Millisecond)
	if res := apply(); res.Changed {
		t.Fatalf("second run changed: %s", res.Msg)
	}
}

// TestIndex_DriftIsRepaired edits a tree behind rundock's back in every way the index could
// miss: same size in place, a chmod, a file renamed over, a stray file and directory, at
// once after the run that recorded the tree and after a pause. Every edit is found and
// undone (a stray directory quietly: pruning is no change); a tree left alone stays
// unchanged, and the index is not written again.
func TestIndex_DriftIsRepaired(t *testing.T) {
	edits := map[string]func(root string){
		"same size in place": func(root string) {
			f, err := os.OpenFile(filepath.Join(root, "run"), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte("X"), 12) // "echo one" -> "echo Xne"
			f.Close()
		},
		"chmod": func(root string) { os.Chmod(filepath.Join(root, "control", "t"), 0o700) },
		"renamed over": func(root string) {
			p := filepath.Join(root, "log", "run")
			data, _ := os.ReadFile(p)
			os.WriteFile(p+".new", bytes.ToUpper(data), 0o755)
			os.Rename(p+".new", p)
		},
		"stray file": func(root string) { os.WriteFile(filepath.Join(root, "log", "extra"), nil, 0o644) },
		"stray dir":  func(root string) { os.Mkdir(filepath.Join(root, "control", "sub"), 0o755) },
	}
	for name, edit := range edits {
		for _, pause := range []time.Duration{0, racyMargin + 10*time.Millisecond} {
			t.Run(name+"/pause="+pause.String(), func(t *testing.T) {
				svc := testService(t)
				root := filepath.Join(svc.SvDir, "docker-web")
				tr := testTree("#!/bin/sh\necho one\n")
				indexed(t, func() Result { return run(t, svc, tr, Options{}) })
				x := loadIndex(svc.SvDir)
				if x.trees["docker-web"] == nil {
					t.Fatalf("the index does not hold the tree after two runs")
				}
				st, err := os.Stat(filepath.Join(svc.SvDir, IndexName))
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != 0o600 {
					t.Errorf("index mode %v, want 0600 (it hashes the env file)", st.Mode().Perm())
				}
				if res := run(t, svc, tr, Options{}); res.Changed {
					t.Fatalf("unchanged tree: changed: %s", res.Msg)
				}
				if st2, _ := os.Stat(filepath.Join(svc.SvDir, IndexName)); !st2.ModTime().Equal(st.ModTime()) {
					t.Errorf("an unchanged run wrote the index")
				}

				time.Sleep(pause)
				edit(root)
				if res := run(t, svc, tr, Options{}); !res.Changed && name != "stray dir" {
					t.Fatalf("after the edit: changed false, the drift was missed")
				}
				d, err := compareTree(root, tr.Files)
				if err != nil || len(d.changes) > 0 || d.strayDirs {
					t.Fatalf("after the repair the tree still differs: %+v %v", d, err)
				}
			})
		}
	}
}

// TestIndex_RenderedChangeIsWritten: a tree the index holds is rewritten when what is
// rendered changes, though nothing on disk moved.
func TestIndex_RenderedChangeIsWritten(t *testing.T) {
	svc := testService(t)
	tr := testTree("#!/bin/sh\necho one\n")
	indexed(t, func() Result { return run(t, svc, tr, Options{}) })
	next := testTree("#!/bin/sh\necho two\n") // same size
	if res := run(t, svc, next, Options{}); !res.Changed {
		t.Fatal("new rendering: changed false")
	}
	got, _ := os.ReadFile(filepath.Join(svc.SvDir, "docker-web", "run"))
	if string(got) != "#!/bin/sh\necho two\n" {
		t.Fatalf("run = %q", got)
	}
}

// TestIndex_BadIndexIsIgnored: an index that does not parse, or names stats that are not
// there, costs only the reads: the run compares and rewrites it. Check mode never writes it.
func TestIndex_BadIndexIsIgnored(t *testing.T) {
	svc := testService(t)
	root := filepath.Join(svc.SvDir, "docker-web")
	tr := testTree("#!/bin/sh\necho one\n")
	indexed(t, func() Result { return run(t, svc, tr, Options{}) })
	p := filepath.Join(svc.SvDir, IndexName)
	for _, bad := range []string{"garbage\n", indexHeader + "\ntree docker-web\nf run 1 2\n", indexHeader + "\ntree docker-web\nd . 1 2 40755 3\n"} {
		os.WriteFile(p, []byte(bad), 0o600)
		os.WriteFile(filepath.Join(root, "run"), []byte("#!/bin/sh\necho Xne\n"), 0o755)
		if res := run(t, svc, tr, Options{CheckMode: true}); !res.Changed {
			t.Fatalf("index %q, check mode: changed false", bad)
		}
		if got, _ := os.ReadFile(p); string(got) != bad {
			t.Fatalf("check mode wrote the index")
		}
		if res := run(t, svc, tr, Options{}); !res.Changed {
			t.Fatalf("index %q: changed false", bad)
		}
	}
}

// TestIndex_RacyTreeNotRecorded: a tree whose ctimes are not older than the read by
// racyMargin is not recorded, so a write in the same clock tick cannot hide behind it.
func TestIndex_RacyTreeNotRecorded(t *testing.T) {
	svc := testService(t)
	root := filepath.Join(svc.SvDir, "docker-web")
	tr := testTree("#!/bin/sh\necho one\n")
	run(t, svc, tr, Options{})
	x := loadIndex(svc.SvDir)
	if x.trees["docker-web"] != nil {
		t.Fatal("the run that wrote the tree recorded it")
	}
	sigs := map[string]statSig{}
	if _, err := compareTreeSigs(root, tr.Files, sigs); err != nil {
		t.Fatal(err)
	}
	newest := int64(0)
	for _, s := range sigs {
		newest = max(newest, s.ctime)
	}
	if newIndexedTree(tr.Files, sigs, newest) != nil {
		t.Error("recorded a tree with a ctime equal to the limit")
	}
	if newIndexedTree(tr.Files, sigs, newest+1) == nil {
		t.Error("did not record a tree older than the limit")
	}
}

// TestIndex_ParseFormat: what format writes, parseIndex reads back.
func TestIndex_ParseFormat(t *testing.T) {
	x := &treeIndex{trees: map[string]*indexedTree{
		"docker-a": {
			dirs:  []indexedPath{{path: ".", sig: statSig{ino: 1, size: 4096, mode: 0o40755, ctime: 1765000000123456789}}},
			files: []indexedPath{{path: "run", sig: statSig{ino: 2, size: 10, mode: 0o100755, ctime: 5}, sum: fileSum([]byte("x"))}},
		},
		"docker-b": {dirs: []indexedPath{{path: ".", sig: statSig{ino: 3}}}},
	}}
	got, err := parseIndex(x.format())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["docker-a"].files[0] != x.trees["docker-a"].files[0] || got["docker-a"].dirs[0] != x.trees["docker-a"].dirs[0] {
		t.Fatalf("round trip: %+v", got)
	}
}

// services applies svcs with Services, as the CLI and the module do.
func services(t *testing.T, svcs ...spec.Service) []Result {
	t.Helper()
	res, err := Services(context.Background(), svcs, Options{Containers: noContainers{}})
	if err != nil {
		t.Fatalf("Services: %v", err)
	}
	return res
}

func stubService(t *testing.T, root, name, instance string) spec.Service {
	t.Helper()
	s, err := spec.FromMap(map[string]any{"name": name, "image": "nginx", "announce": 80, "announce_name": "web",
		"instance": instance, "state": "present", "sv_dir": filepath.Join(root, "sv"), "service_dir": filepath.Join(root, "service")}, "h1")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestIndex_StubsStandForUnchangedTrees: once the index holds a tree with the spec it
// was rendered from, a run with the same spec does not render it (a stub); a run with
// another spec, or after the tree was edited, or under another build of rundock renders
// and writes it again; a stub's record key still refuses a service that would share it.
func TestIndex_StubsStandForUnchangedTrees(t *testing.T) {
	root := t.TempDir()
	a := stubService(t, root, "web-a", "h1")
	indexed(t, func() Result { return services(t, a)[0] })
	trees, _, _, errs := renderAll([]spec.Service{a})
	if errs[0] != nil || !trees[0].Stub || trees[0].RecordKey == "" {
		t.Fatalf("after two runs: stub %v, record key %q, err %v; want a stub with the key", trees[0].Stub, trees[0].RecordKey, errs[0])
	}
	if res := services(t, a); res[0].Changed {
		t.Fatalf("unchanged stub: changed: %s", res[0].Msg)
	}
	// A stub's record key is seen: web-b may not take h1 while web-a holds it.
	if _, err := Services(context.Background(), []spec.Service{stubService(t, root, "web-b", "h1")}, Options{Containers: noContainers{}}); err == nil || !strings.Contains(err.Error(), "docker-web-a") {
		t.Fatalf("web-b taking the key of stubbed web-a: %v, want refused", err)
	}
	// Edited on disk: the stub no longer matches, so it is rendered and the file restored.
	runPath := filepath.Join(root, "sv", "docker-web-a", "run")
	want, _ := os.ReadFile(runPath)
	os.WriteFile(runPath, bytes.ToUpper(want), 0o755)
	if res := services(t, a); !res[0].Changed {
		t.Fatal("edited stub: changed false")
	}
	if got, _ := os.ReadFile(runPath); !bytes.Equal(got, want) {
		t.Fatal("edited stub: run not restored")
	}
	indexed(t, func() Result { return services(t, a)[0] })
	// Another spec: rendered and written.
	b := a
	b.Image = "nginx:2"
	if trees, _, _, _ := renderAll([]spec.Service{b}); trees[0].Stub {
		t.Fatal("a new spec got a stub")
	}
	if res := services(t, b); !res[0].Changed {
		t.Fatal("new image: changed false")
	}
	if got, _ := os.ReadFile(runPath); !bytes.Contains(got, []byte("nginx:2")) {
		t.Fatal("new image: run not rewritten")
	}
	indexed(t, func() Result { return services(t, b)[0] })
	// Another build of rundock: its templates may differ, so it trusts no key of this one.
	saved := binaryID
	defer func() { binaryID = saved }()
	binaryID = func() string { return "another build" }
	if trees, _, _, _ := renderAll([]spec.Service{b}); trees[0].Stub {
		t.Fatal("another build took this build's stub")
	}
	// Its first run finds the tree equal to its rendering and keys it for itself.
	if res := services(t, b); res[0].Changed {
		t.Fatalf("another build, same rendering: changed: %s", res[0].Msg)
	}
	if trees, _, _, _ := renderAll([]spec.Service{b}); !trees[0].Stub {
		t.Fatal("another build's second run rendered again: the first did not key the tree")
	}
}

// TestIndex_IncompleteIndexRefused: an index whose tree lists no directories (or fewer than
// its files need) would let a stray entry go unseen; it is read as empty, so the stray is
// found. A line with more fields than its kind has is refused too.
func TestIndex_IncompleteIndexRefused(t *testing.T) {
	svc := testService(t)
	root := filepath.Join(svc.SvDir, "docker-web")
	tr := testTree("#!/bin/sh\necho one\n")
	indexed(t, func() Result { return run(t, svc, tr, Options{}) })
	p := filepath.Join(svc.SvDir, IndexName)
	good, _ := os.ReadFile(p)
	var noDirs, extra []string
	for _, l := range strings.Split(strings.TrimSuffix(string(good), "\n"), "\n") {
		if !strings.HasPrefix(l, "d ") {
			noDirs = append(noDirs, l)
		}
		if strings.HasPrefix(l, "f ") {
			l += " more"
		}
		extra = append(extra, l)
	}
	for _, bad := range [][]string{noDirs, extra} {
		text := strings.Join(bad, "\n") + "\n"
		if _, err := parseIndex([]byte(text)); err == nil {
			t.Fatalf("parseIndex accepted:\n%s", text)
		}
		os.WriteFile(p, []byte(text), 0o600)
		os.WriteFile(filepath.Join(root, "log", "stray"), nil, 0o644)
		if res := run(t, svc, tr, Options{}); !res.Changed {
			t.Fatal("stray file behind an incomplete index: changed false")
		}
		if _, err := os.Lstat(filepath.Join(root, "log", "stray")); err == nil {
			t.Fatal("the stray file is still there")
		}
		indexed(t, func() Result { return run(t, svc, tr, Options{}) })
	}
}

// TestIndex_BinaryID: the running binary is known by its Go build ID (so a stub recorded
// by another build of rundock is never taken); a file without one gives "", and no stubs.
func TestIndex_BinaryID(t *testing.T) {
	if binaryID() == "" {
		t.Fatal("no Go build ID found in /proc/self/exe")
	}
	for _, head := range [][]byte{nil, []byte("\x04\x00\x00\x00Go\x00\x00"), []byte("\x07\x00\x00\x00\x05\x00\x00\x00\x04\x00\x00\x00Go\x00\x00abcde")} {
		if id := goBuildID(head); id != "" {
			t.Errorf("goBuildID(%q) = %q, want none", head, id)
		}
	}
	if id := goBuildID([]byte("xx\x04\x00\x00\x00\x05\x00\x00\x00\x04\x00\x00\x00Go\x00\x00abcde")); id != "abcde" {
		t.Errorf("goBuildID of a note = %q, want abcde", id)
	}
}

// TestIndex_SpecKeyPrintsValues: specKey prints the service with %#v, which prints a
// pointer, interface, func or channel as an address: the same address for another value
// in another run would give a wrong stub. spec.Service must hold none, at any depth.
func TestIndex_SpecKeyPrintsValues(t *testing.T) {
	var walk func(t *testing.T, typ reflect.Type, at string)
	walk = func(t *testing.T, typ reflect.Type, at string) {
		switch typ.Kind() {
		case reflect.Pointer, reflect.Interface, reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Uintptr:
			t.Errorf("%s is a %s: specKey's %%#v would print an address", at, typ.Kind())
		case reflect.Struct:
			for i := range typ.NumField() {
				walk(t, typ.Field(i).Type, at+"."+typ.Field(i).Name)
			}
		case reflect.Slice, reflect.Array:
			walk(t, typ.Elem(), at+"[]")
		case reflect.Map:
			walk(t, typ.Key(), at+"{key}")
			walk(t, typ.Elem(), at+"{}")
		}
	}
	walk(t, reflect.TypeFor[spec.Service](), "spec.Service")
}
