package apply

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/tree"
)

// IndexName is sv_dir's tree index: for each tree a run last found equal to what it
// rendered, the stat of its directories and files and a hash of each file. A later run
// that finds every stat unchanged knows the tree holds the same bytes without listing a
// directory or reading a file, as git's index spares git status the reads. It is written
// under the lock, atomically, only when it changed, and readable by root only (it holds
// the hash of the env file).
//
// Only what a run read is recorded, each stat taken before its directory was listed or its
// file read, and only when every ctime in the tree is older by racyMargin than the file
// system's own time (fsNow) taken before the reads. A write after that gets a later ctime
// (no one can set a ctime back), so a recorded stat never matches a path that changed
// since: a stale entry costs the reads it would have saved, never a missed change. (Not
// covered: a write through a shared mmap to a page already dirty, which sets no ctime, and
// NFS attribute caching, which can show a change late.)
const IndexName = ".rundock.index"

// racyMargin is how much older than fsNow a ctime must be for the tree to be recorded: a
// write in the same clock tick as fsNow's touch could have the same ctime.
const racyMargin = 50 * time.Millisecond

// indexHeader starts the index file; another version is read as empty.
const indexHeader = "rundock-index 1"

// statSig is what a later write of a path changes: its inode, size, type and mode, and
// ctime (nanoseconds), which every write, chmod, rename or utimes sets to the time of the
// change.
type statSig struct {
	ino, size uint64
	mode      uint32
	ctime     int64
}

// sumSize is how much of a file's SHA-256 the index keeps: 128 bits tell two contents
// apart as surely as the whole.
const sumSize = 16

// indexedPath is one directory or file of an indexed tree; sum is a file's hash.
type indexedPath struct {
	path string // slash path relative to the tree; "." is the tree's root
	sig  statSig
	sum  [sumSize]byte
}

// fileSum is the hash the index keeps of data.
func fileSum(data []byte) [sumSize]byte {
	h := sha256.Sum256(data)
	return [sumSize]byte(h[:sumSize])
}

// indexedTree is a tree as a run found it: equal to its rendered files, no other file or
// directory in it (runsv's supervise/ and the state directory aside).
type indexedTree struct {
	// spec is the specKey of the service the files were rendered from ("" when not known:
	// the tree was given to Apply); record the record key its announcer/run names.
	spec, record string
	dirs         []indexedPath // "." first
	files        []indexedPath // in the rendered order (by path)
}

// treeIndex is sv_dir's index as loaded, with what this run recorded.
type treeIndex struct {
	svDir string
	// file is the index file's stat when it was read (ok false: there was none).
	file struct {
		sig statSig
		ok  bool
	}
	// now is fsNow, taken before this run's comparisons began; 0: record nothing.
	now   int64
	mu    sync.Mutex
	trees map[string]*indexedTree // tree dir (docker-NAME) -> tree
	dirty bool
}

// loadIndex reads svDir's index; a missing or unreadable one is empty.
func loadIndex(svDir string) *treeIndex {
	x := &treeIndex{svDir: svDir, trees: map[string]*indexedTree{}}
	p := filepath.Join(svDir, IndexName)
	x.file.sig, x.file.ok = lstatSig(p)
	data, err := safefs.ReadFile(p)
	if err != nil {
		x.file.ok = false
		return x
	}
	if trees, err := parseIndex(data); err == nil {
		x.trees = trees
	}
	return x
}

// parseIndex reads the lines of an index file:
//
//	tree DIR SPEC RECORD        ("-" for none)
//	d PATH INO SIZE MODE CTIME
//	f PATH INO SIZE MODE CTIME SUM
func parseIndex(data []byte) (map[string]*indexedTree, error) {
	trees := map[string]*indexedTree{}
	text := string(data) // one copy: the paths below are substrings of it
	line, text, _ := strings.Cut(text, "\n")
	if line != indexHeader {
		return nil, fmt.Errorf("not a %q file", indexHeader)
	}
	var t *indexedTree
	var f [7]string
	for n := 2; text != ""; n++ {
		line, text, _ = strings.Cut(text, "\n")
		k := 0
		rest := line
		for ; rest != "" && k < len(f); k++ {
			f[k], rest, _ = strings.Cut(rest, " ")
		}
		if rest != "" {
			k = 0 // more fields than any line has
		}
		bad := func() error { return fmt.Errorf("line %d: %q", n, line) }
		switch {
		case k == 4 && f[0] == "tree":
			t = &indexedTree{spec: strings.TrimPrefix(f[2], "-"), record: strings.TrimPrefix(f[3], "-")}
			trees[f[1]] = t
		case t != nil && (k == 6 && f[0] == "d" || k == 7 && f[0] == "f"):
			p := indexedPath{path: f[1]}
			var err [4]error
			p.sig.ino, err[0] = strconv.ParseUint(f[2], 10, 64)
			p.sig.size, err[1] = strconv.ParseUint(f[3], 10, 64)
			mode, err2 := strconv.ParseUint(f[4], 8, 32)
			p.sig.mode, err[2] = uint32(mode), err2
			p.sig.ctime, err[3] = strconv.ParseInt(f[5], 10, 64)
			if slices.ContainsFunc(err[:], func(e error) bool { return e != nil }) {
				return nil, bad()
			}
			if f[0] == "d" {
				t.dirs = append(t.dirs, p)
				continue
			}
			if !decodeSum(&p.sum, f[6]) {
				return nil, bad()
			}
			t.files = append(t.files, p)
		default:
			return nil, bad()
		}
	}
	for dir, t := range trees {
		if !slices.Equal(pathsOf(t.dirs), treeDirs(t.files)) {
			return nil, fmt.Errorf("tree %s: directories %v do not match its files", dir, pathsOf(t.dirs))
		}
	}
	return trees, nil
}

// treeDirs lists the directories that hold files, "." first, the rest sorted: what an
// indexed tree records.
func treeDirs(files []indexedPath) []string {
	dirs := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.path); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	return append([]string{"."}, slices.Sorted(maps.Keys(dirs))...)
}

func pathsOf(ps []indexedPath) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.path
	}
	return out
}

// decodeSum decodes the hex s into sum.
func decodeSum(sum *[sumSize]byte, s string) bool {
	if len(s) != hex.EncodedLen(sumSize) {
		return false
	}
	_, err := hex.Decode(sum[:], []byte(s))
	return err == nil
}

// format writes the index file's bytes, trees sorted by directory.
func (x *treeIndex) format() []byte {
	var b bytes.Buffer
	b.WriteString(indexHeader + "\n")
	line := func(kind string, p indexedPath) {
		fmt.Fprintf(&b, "%s %s %d %d %o %d", kind, p.path, p.sig.ino, p.sig.size, p.sig.mode, p.sig.ctime)
	}
	for _, dir := range slices.Sorted(maps.Keys(x.trees)) {
		t := x.trees[dir]
		b.WriteString("tree " + dir + " " + cmp.Or(t.spec, "-") + " " + cmp.Or(t.record, "-") + "\n")
		for _, p := range t.dirs {
			line("d", p)
			b.WriteByte('\n')
		}
		for _, p := range t.files {
			line("f", p)
			b.WriteString(" " + hex.EncodeToString(p.sum[:]) + "\n")
		}
	}
	return b.Bytes()
}

// current reports whether the index file is still the one x was read from (it is only
// ever replaced, by a rename).
func (x *treeIndex) current() bool {
	sg, ok := lstatSig(filepath.Join(x.svDir, IndexName))
	return ok && x.file.ok && sg == x.file.sig && !x.dirty
}

// save writes the index when this run changed it. The caller holds sv_dir's lock.
func (x *treeIndex) save() error {
	if x == nil || !x.dirty {
		return nil
	}
	if err := safefs.WriteFile(filepath.Join(x.svDir, IndexName), x.format(), 0o600); err != nil {
		return err
	}
	x.dirty = false
	return nil
}

// fsNow is the time as the file system of svDir stamps it, taken by touching sv_dir's lock
// file: a stat taken after it sees every later change with a later ctime, whatever the
// file system's timestamp granularity (whole seconds on some) or its clock (an NFS
// server's). 0 when it cannot be taken: then nothing is recorded.
func fsNow(svDir string) int64 {
	p := filepath.Join(svDir, LockName)
	now := time.Now()
	if err := os.Chtimes(p, now, now); err != nil { // the kernel sets ctime by its own clock
		return 0
	}
	sg, ok := lstatSig(p)
	if !ok {
		return 0
	}
	return sg.ctime
}

// compare is compareTree(root, it's files), with the index: when the tree at root is
// recorded with the same files (or, for a stub, rendered from the same spec) and every
// stat still matches, it is unchanged without a read; else it is compared, and recorded
// when found equal. A stub the disk no longer matches is rendered first: compare returns
// the tree it compared, which is it's unless it was a stub.
func (x *treeIndex) compare(root string, it planItem) (treeDiff, tree.Tree, error) {
	if x == nil {
		if it.tree.Stub {
			return treeDiff{}, it.tree, errors.New("a stub tree without an index")
		}
		d, err := compareTree(root, it.tree.Files)
		return d, it.tree, err
	}
	dir := filepath.Base(root)
	x.mu.Lock()
	t := x.trees[dir]
	x.mu.Unlock()
	if t != nil && t.matches(root, it) {
		if !it.tree.Stub && it.spec != "" && it.spec != t.spec {
			// Equal to what this binary rendered from it.svc: a stub next time.
			nt := *t
			nt.spec, nt.record = it.spec, renderedKey(it.tree.Files)
			x.set(dir, &nt)
		}
		return treeDiff{exists: true}, it.tree, nil
	}
	if it.tree.Stub {
		var err error
		if it.tree, err = Render(it.svc); err != nil {
			return treeDiff{}, it.tree, err
		}
	}
	sigs := map[string]statSig{}
	d, err := compareTreeSigs(root, it.tree.Files, sigs)
	var nt *indexedTree
	if err == nil && d.exists && len(d.changes) == 0 && !d.strayDirs && x.now != 0 && !strings.ContainsFunc(dir, unsafeRune) {
		if nt = newIndexedTree(it.tree.Files, sigs, x.now-racyMargin.Nanoseconds()); nt != nil {
			nt.spec, nt.record = it.spec, renderedKey(it.tree.Files)
		}
	}
	if nt != nil {
		x.set(dir, nt)
	} else {
		x.forget(dir)
	}
	return d, it.tree, err
}

// set records t as the tree dir.
func (x *treeIndex) set(dir string, t *indexedTree) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.trees[dir], x.dirty = t, true
}

// stub returns the stub of the tree dir when the index holds it rendered from spec.
func (x *treeIndex) stub(dir, name, spec string) (tree.Tree, bool) {
	x.mu.Lock()
	t := x.trees[dir]
	x.mu.Unlock()
	if t == nil || spec == "" || t.spec != spec {
		return tree.Tree{}, false
	}
	layout := render.Services(name)
	st := tree.Tree{Dir: dir, Services: layout[:1], Stub: true, RecordKey: t.record}
	for _, f := range t.files {
		st.Files = append(st.Files, tree.File{Path: f.path, Mode: fs.FileMode(f.sig.mode) & fs.ModePerm})
		if f.path == announcerRun {
			st.Services = append(st.Services, layout[1])
		}
	}
	return st, true
}

// unsafeRune is what a path or tree name in the index may not hold: it separates fields
// and lines.
func unsafeRune(r rune) bool { return r <= ' ' }

// newIndexedTree is the record of a tree found equal to files, with the stats sigs the
// comparison took; nil when a path has no stat, a name the index cannot hold, or a ctime
// not before notAfter (nanoseconds).
func newIndexedTree(files []tree.File, sigs map[string]statSig, notAfter int64) *indexedTree {
	t := &indexedTree{}
	ok := func(p string) (statSig, bool) {
		sg, found := sigs[p]
		return sg, found && sg.ctime < notAfter && !strings.ContainsFunc(p, unsafeRune)
	}
	for _, f := range files {
		sg, good := ok(f.Path)
		if !good {
			return nil
		}
		t.files = append(t.files, indexedPath{path: f.Path, sig: sg, sum: fileSum(f.Data)})
	}
	for _, d := range treeDirs(t.files) {
		sg, good := ok(d)
		if !good {
			return nil
		}
		t.dirs = append(t.dirs, indexedPath{path: d, sig: sg})
	}
	return t
}

// matches reports whether the tree at root holds exactly it's files, as recorded: the
// same paths, modes and hashes (for a stub: rendered from the same spec), and every
// directory and file with its recorded stat.
func (t *indexedTree) matches(root string, it planItem) bool {
	files := it.tree.Files
	if it.tree.Stub && (it.spec == "" || it.spec != t.spec) || len(files) != len(t.files) {
		return false
	}
	for i, f := range files {
		p := t.files[i]
		if f.Path != p.path || uint32(f.Mode.Perm()) != p.sig.mode&uint32(fs.ModePerm) || !it.tree.Stub && fileSum(f.Data) != p.sum {
			return false
		}
	}
	for _, ps := range [][]indexedPath{t.dirs, t.files} {
		for _, p := range ps {
			if sg, ok := lstatSig(filepath.Join(root, filepath.FromSlash(p.path))); !ok || sg != p.sig {
				return false
			}
		}
	}
	return true
}

// specKey identifies what Render makes of svc in this process: a hash of svc (every
// field, as %#v prints it) and of the identity of the running binary, so that another
// build of rundock, whose templates may differ, never trusts a key this one recorded. ""
// when the binary cannot be identified: no stubs then.
func specKey(svc spec.Service) string {
	id := binaryID()
	if id == "" {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%#v", id, svc)
	return hex.EncodeToString(h.Sum(nil)[:sumSize])
}

// binaryID is the Go build ID of the running executable, read from /proc/self/exe (the
// image running, even after an upgrade replaced the file): it changes with anything that
// changes the binary, as the templates do. "" when there is none.
var binaryID = sync.OnceValue(func() string {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return ""
	}
	defer f.Close()
	head := make([]byte, 32<<10) // the go tool looks for it there too
	n, _ := io.ReadFull(f, head)
	return goBuildID(head[:n])
})

// goBuildID finds the Go build ID note of an ELF file in its first bytes: namesz 4, descsz,
// type 4, name "Go\0\0", then the ID.
func goBuildID(head []byte) string {
	i := bytes.Index(head, []byte("\x04\x00\x00\x00Go\x00\x00"))
	if i < 8 || binary.LittleEndian.Uint32(head[i-8:]) != 4 {
		return ""
	}
	size := int(binary.LittleEndian.Uint32(head[i-4:]))
	if size == 0 || size > 256 || i+8+size > len(head) {
		return ""
	}
	return string(head[i+8 : i+8+size])
}

// forget drops dir's record (its tree was removed or is about to change).
func (x *treeIndex) forget(dir string) {
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.trees[dir]; ok {
		delete(x.trees, dir)
		x.dirty = true
	}
}
