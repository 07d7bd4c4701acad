package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/testenv"
)

// genPrefix names every container, image and temp dir of the generator tests.
const genPrefix = "rdtest-gen-"

// genEnv is a runsvdir on temp dirs with rundock installed, the echo image, and an Ansible
// module directory holding the built rundock and its sidecar docs.
type genEnv struct {
	r      *testenv.Runit
	image  string
	modDir string
	bin    string // the rundock binary
}

func newGenEnv(t *testing.T, prefix string) *genEnv {
	t.Helper()
	testenv.Need(t, "docker", "ansible", "sv", "runsvdir")
	e := &genEnv{image: testenv.BuildEchoImage(t)}
	e.r = testenv.StartRunit(t, prefix)
	e.r.InstallBinaries(t)
	e.bin = filepath.Join(e.r.BinDir, "rundock")
	e.modDir = filepath.Join(e.r.Root, "modules")
	if err := os.MkdirAll(e.modDir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(e.bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.modDir, "rundock"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "module", "rundock.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.modDir, "rundock.yml"), doc, 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// dirs are the options that put everything in the test's temp dirs.
func (e *genEnv) dirs() [][2]string {
	return [][2]string{
		{"sv_dir", e.r.SvDir}, {"service_dir", e.r.ServiceDir},
		{"log_dir", e.r.LogDir}, {"bin_dir", e.r.BinDir},
	}
}

// kv renders options as Ansible's key=value string, double-quoting values with spaces.
func kv(opts [][2]string) string {
	var parts []string
	for _, o := range opts {
		v := o[1]
		switch {
		case strings.Contains(v, `"`):
			v = "'" + v + "'"
		case strings.ContainsAny(v, " \t'"):
			v = `"` + v + `"`
		}
		parts = append(parts, o[0]+"="+v)
	}
	return strings.Join(parts, " ")
}

// ansibleResult is what one ad-hoc `ansible -m rundock` run gave.
type ansibleResult struct {
	ok     bool           // exit status 0
	stdout string         // the default callback's output
	result map[string]any // the module's JSON result (from --tree)
}

func (r ansibleResult) changed() bool { v, _ := r.result["changed"].(bool); return v }
func (r ansibleResult) msg() string   { v, _ := r.result["msg"].(string); return v }

// ansible runs the module through the real ansible CLI on localhost.
func (e *genEnv) ansible(t *testing.T, args string, flags ...string) ansibleResult {
	t.Helper()
	tree, err := os.MkdirTemp(e.r.Root, "tree-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tree)
	cmdArgs := append([]string{"localhost", "-c", "local", "-i", "localhost,", "-M", e.modDir, "-m", "rundock", "-a", args, "--tree", tree}, flags...)
	cmd := exec.Command("ansible", cmdArgs...)
	cmd.Env = append(os.Environ(), "ANSIBLE_LOCALHOST_WARNING=false", "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(e.r.Root, "ansible-tmp"), "ANSIBLE_REMOTE_TEMP="+filepath.Join(e.r.Root, "ansible-tmp"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	res := ansibleResult{ok: err == nil, stdout: out.String()}
	data, rerr := os.ReadFile(filepath.Join(tree, "localhost"))
	if rerr != nil {
		t.Fatalf("ansible %s: no result file (%v); output:\n%s", args, rerr, out.String())
	}
	if err := json.Unmarshal(data, &res.result); err != nil {
		t.Fatalf("ansible %s: result is not JSON: %v\n%s", args, err, data)
	}
	return res
}

// cli runs the built rundock with args.
func (e *genEnv) cli(t *testing.T, args ...string) (stdout, stderr string, ok bool) {
	t.Helper()
	cmd := exec.Command(e.bin, args...)
	var o, s bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &s
	err := cmd.Run()
	return o.String(), s.String(), err == nil
}

// cliApply runs `rundock apply --output json` with option flags and returns the result.
func (e *genEnv) cliApply(t *testing.T, extra []string, opts [][2]string) (map[string]any, string, bool) {
	t.Helper()
	args := append([]string{"apply", "--output", "json"}, extra...)
	for _, o := range opts {
		args = append(args, "--"+o[0]+"="+o[1])
	}
	stdout, stderr, ok := e.cli(t, args...)
	var results []map[string]any
	if stdout != "" {
		if err := json.Unmarshal([]byte(stdout), &results); err != nil {
			t.Fatalf("rundock %s: output is not JSON: %v\n%s\n%s", strings.Join(args, " "), err, stdout, stderr)
		}
	}
	if len(results) == 0 {
		return nil, stderr, ok
	}
	return results[0], stderr, ok
}

// tree describes every path, mode, content and link target under sv_dir and service_dir,
// except runsv's supervise/ directories.
func (e *genEnv) tree() string {
	return testenv.Snapshot(e.r.SvDir, "supervise") + testenv.Snapshot(e.r.ServiceDir, "supervise")
}

// containers lists the ids of running containers named exactly name.
func containers(t *testing.T, name string) []string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-q", "--filter", "name=^/"+name+"$").Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	return strings.Fields(string(out))
}

// anyContainers lists the ids of containers named exactly name in any state.
func anyContainers(t *testing.T, name string) []string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "name=^/"+name+"$").Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	return strings.Fields(string(out))
}

// waitServing waits until exactly one container name runs and port answers with want.
func waitServing(t *testing.T, name string, port int, want string, timeout time.Duration) time.Duration {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	return testenv.EventuallyMsg(t, timeout, func() string {
		return fmt.Sprintf("%s serving %q on %s (last answer %q, containers %v)", name, want, url, testenv.HTTPBody(url, 2*time.Second), containers(t, name))
	}, func() bool { return servesAlone(t, name, port, want) })
}

// servesAlone reports whether exactly one container name runs and port answers with want.
func servesAlone(t *testing.T, name string, port int, want string) bool {
	t.Helper()
	return strings.HasPrefix(testenv.HTTPBody(fmt.Sprintf("http://127.0.0.1:%d/", port), 2*time.Second), want+" ") && len(containers(t, name)) == 1
}

// The lifecycle through both front ends: enabled -> serves; again -> unchanged; check mode
// -> nothing touched; option change -> restarted with it (diff shown); disabled ->
// container gone, tree kept; absent -> tree gone.
func TestGenerator_Lifecycle(t *testing.T) {
	e := newGenEnv(t, genPrefix)
	for _, front := range []string{"ansible", "cli"} {
		t.Run(front, func(t *testing.T) {
			name := genPrefix + front
			port := testenv.FreePort(t)
			opts := func(state, instance string) [][2]string {
				return append([][2]string{
					{"state", state}, {"name", name}, {"image", e.image}, {"pull", "never"},
					{"ports", fmt.Sprintf("127.0.0.1:%d:8080", port)}, {"env", "INSTANCE=" + instance},
					{"stop_timeout", "3"},
				}, e.dirs()...)
			}
			type outcome struct {
				ok, changed bool
				msg         string
				diff        string
			}
			run := func(o [][2]string, check, diff bool) outcome {
				t.Helper()
				if front == "ansible" {
					var flags []string
					if check {
						flags = append(flags, "--check")
					}
					if diff {
						flags = append(flags, "--diff")
					}
					r := e.ansible(t, kv(o), flags...)
					return outcome{r.ok, r.changed(), r.msg(), r.stdout}
				}
				var extra []string
				if check {
					extra = append(extra, "--dry-run")
				}
				if diff && !check {
					extra = append(extra, "--diff")
				}
				res, stderr, ok := e.cliApply(t, extra, o)
				c, _ := res["changed"].(bool)
				m, _ := res["msg"].(string)
				d := ""
				if ds, ok := res["diff"].([]any); ok {
					b, _ := json.Marshal(ds)
					d = string(b)
				}
				return outcome{ok, c, m + stderr, d}
			}
			tree := filepath.Join(e.r.SvDir, "docker-"+name)

			o := run(opts("enabled", "one"), false, false)
			if !o.ok || !o.changed {
				t.Fatalf("first enable: ok=%v changed=%v msg=%s", o.ok, o.changed, o.msg)
			}
			took := waitServing(t, name, port, "one", 60*time.Second)
			t.Logf("enabled -> serving after %s more", took)
			stdout, stderr, ok := e.cli(t, "status", name, "--sv-dir", e.r.SvDir, "--service-dir", e.r.ServiceDir, "--output", "json")
			var st []struct {
				Name    string `json:"name"`
				Service struct {
					State string `json:"state"`
					PID   int    `json:"pid"`
				} `json:"service"`
				Container string `json:"container"`
				Linked    bool   `json:"linked"`
			}
			if err := json.Unmarshal([]byte(stdout), &st); !ok || err != nil || len(st) != 1 {
				t.Fatalf("rundock status: ok=%v err=%v\n%s%s", ok, err, stdout, stderr)
			}
			if st[0].Service.State != "run" || st[0].Service.PID == 0 || st[0].Container != "running" || !st[0].Linked {
				t.Errorf("rundock status: %+v, want run with a pid, linked, container running", st[0])
			}

			o = run(opts("enabled", "one"), false, false)
			if !o.ok || o.changed {
				t.Fatalf("second enable: ok=%v changed=%v (want true, false) msg=%s", o.ok, o.changed, o.msg)
			}

			if front == "cli" {
				// enabled means running: a service stopped with sv down is started again.
				link := filepath.Join(e.r.ServiceDir, "docker-"+name)
				if out, err := exec.Command("sv", "-w", "30", "down", link).CombinedOutput(); err != nil {
					t.Fatalf("sv down: %v: %s", err, out)
				}
				if o = run(opts("enabled", "one"), false, false); !o.ok || !o.changed {
					t.Fatalf("enable after sv down: ok=%v changed=%v (want true, true) msg=%s", o.ok, o.changed, o.msg)
				}
				waitServing(t, name, port, "one", 60*time.Second)
			}

			before := e.tree()
			id := containers(t, name)
			o = run(opts("enabled", "two"), true, true)
			if !o.ok || !o.changed {
				t.Fatalf("check mode with a change: ok=%v changed=%v (want true, true) msg=%s", o.ok, o.changed, o.msg)
			}
			// env values may be secrets: the diff names the key that changed, not the value.
			if !strings.Contains(o.diff, "INSTANCE=(secret, changed)") || strings.Contains(o.diff, "INSTANCE=two") {
				t.Errorf("check mode diff does not show the changed key, or shows its value; got:\n%s", o.diff)
			}
			if after := e.tree(); after != before {
				t.Fatalf("check mode changed the disk")
			}
			if now := containers(t, name); strings.Join(now, ",") != strings.Join(id, ",") {
				t.Fatalf("check mode touched the container: %v -> %v", id, now)
			}
			o = run(opts("enabled", "two"), false, true)
			if !o.ok || !o.changed {
				t.Fatalf("option change: ok=%v changed=%v msg=%s", o.ok, o.changed, o.msg)
			}
			if front == "ansible" && !strings.Contains(o.diff, "+++ after") {
				t.Errorf("ansible --diff output shows no diff:\n%s", o.diff)
			}
			waitServing(t, name, port, "two", 60*time.Second)
			if now := containers(t, name); len(id) == 1 && len(now) == 1 && now[0] == id[0] {
				t.Fatalf("container %s was not replaced after the option change", id[0])
			}

			o = run(append(opts("disabled", "two")[:2], e.dirs()...), false, false)
			if !o.ok {
				t.Fatalf("disable: %s", o.msg)
			}
			if n := anyContainers(t, name); len(n) != 0 {
				t.Fatalf("container still there after disabled: %v", n)
			}
			if _, err := os.Stat(filepath.Join(tree, "run")); err != nil {
				t.Fatalf("disabled removed the tree: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(e.r.ServiceDir, "docker-"+name)); err == nil {
				t.Fatalf("disabled left the service link")
			}

			o = run(append(opts("absent", "two")[:2], e.dirs()...), false, false)
			if !o.ok || !o.changed {
				t.Fatalf("absent: ok=%v changed=%v msg=%s", o.ok, o.changed, o.msg)
			}
			if _, err := os.Lstat(tree); err == nil {
				t.Fatalf("absent left the tree %s", tree)
			}
			if n := anyContainers(t, name); len(n) != 0 {
				t.Fatalf("container left after absent: %v", n)
			}
			o = run(append(opts("absent", "two")[:2], e.dirs()...), false, false)
			if !o.ok || o.changed {
				t.Fatalf("absent again: ok=%v changed=%v (want true, false) msg=%s", o.ok, o.changed, o.msg)
			}
		})
	}
}

// The original invocation, unchanged in form: key=value with args holding $PRIVATE_IP,
// announce and port; the container publishes on the private address and the announcer
// service is linked and supervised next to it. apply waits for the record, so etcd runs.
func TestGenerator_OriginalInvocation(t *testing.T) {
	e := newGenEnv(t, genPrefix+"orig-")
	etcd := testenv.StartEtcd(t)
	name := genPrefix + "orig-influxdb"
	data := genPrefix + "orig-data"
	if out, err := exec.Command("docker", "create", "--name", data, "-v", "/data", e.image).CombinedOutput(); err != nil {
		t.Fatalf("docker create %s: %v\n%s", data, err, out)
	}
	stdout, _, ok := e.cli(t, "addr", "private")
	if !ok {
		t.Fatalf("rundock addr private failed: %s", stdout)
	}
	ip := strings.TrimSpace(stdout)
	adminPort, announcePort := testenv.FreePort(t), testenv.FreePort(t)
	args := fmt.Sprintf(`state=enabled name=%s image=%s args="--volumes-from %s -p $PRIVATE_IP:%d:8080" announce=%d port=8080`,
		name, e.image, data, adminPort, announcePort)
	args += " pull=never etcd_endpoints=" + etcd.Endpoint + " " + kv(e.dirs())
	r := e.ansible(t, args)
	if !r.ok || !r.changed() {
		t.Fatalf("original invocation: ok=%v changed=%v\n%s", r.ok, r.changed(), r.stdout)
	}
	for _, port := range []int{adminPort, announcePort} {
		url := fmt.Sprintf("http://%s:%d/", ip, port)
		testenv.Eventually(t, 60*time.Second, "container answering on "+url, func() bool {
			return testenv.HTTPBody(url, 2*time.Second) != ""
		})
	}
	runScript, err := os.ReadFile(filepath.Join(e.r.SvDir, "docker-"+name, "run"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(runScript), `"$PRIVATE_IP"`) {
		t.Errorf("run does not expand $PRIVATE_IP at start:\n%s", runScript)
	}
	announcer := filepath.Join(e.r.ServiceDir, "docker-"+name+".announcer")
	testenv.Eventually(t, 20*time.Second, "announcer service supervised by runsv", func() bool {
		out, err := exec.Command("sv", "status", announcer).CombinedOutput()
		return err == nil && (strings.HasPrefix(string(out), "run:") || strings.HasPrefix(string(out), "finish:") || strings.HasPrefix(string(out), "down:"))
	})
	r = e.ansible(t, args)
	if !r.ok || r.changed() {
		t.Fatalf("original invocation again: ok=%v changed=%v (want true, false)\n%s", r.ok, r.changed(), r.stdout)
	}
	// Dropping announce stops and unlinks the announcer service and removes its directory.
	noAnnounce := fmt.Sprintf(`state=enabled name=%s image=%s args="--volumes-from %s -p $PRIVATE_IP:%d:8080" pull=never %s`,
		name, e.image, data, adminPort, kv(e.dirs()))
	if r = e.ansible(t, noAnnounce); !r.ok || !r.changed() {
		t.Fatalf("without announce: ok=%v changed=%v\n%s", r.ok, r.changed(), r.stdout)
	}
	if _, err := os.Lstat(announcer); err == nil {
		t.Errorf("announcer link left after announce was dropped")
	}
	if _, err := os.Lstat(filepath.Join(e.r.SvDir, "docker-"+name, "announcer")); err == nil {
		t.Errorf("announcer/ left after announce was dropped")
	}
	url := fmt.Sprintf("http://%s:%d/", ip, adminPort)
	testenv.Eventually(t, 60*time.Second, "container answering on "+url+" after the change", func() bool {
		return testenv.HTTPBody(url, 2*time.Second) != "" && len(containers(t, name)) == 1
	})
	r = e.ansible(t, fmt.Sprintf("state=absent name=%s %s", name, kv(e.dirs())))
	if !r.ok {
		t.Fatalf("absent: %s", r.stdout)
	}
	if n := anyContainers(t, name); len(n) != 0 {
		t.Fatalf("container left after absent: %v", n)
	}
	if _, err := os.Lstat(announcer); err == nil {
		t.Fatalf("announcer link left after absent")
	}
}

// Bad input through both front ends: failed, non-zero, an error naming the value, and
// nothing on disk changed.
func TestGenerator_BadInput(t *testing.T) {
	e := newGenEnv(t, genPrefix+"bad-")
	good := genPrefix + "bad-ok"
	// One installed (present) service, so "unchanged" covers an existing tree too.
	base := append([][2]string{{"state", "present"}, {"name", good}, {"image", e.image}, {"pull", "never"}}, e.dirs()...)
	if _, stderr, ok := e.cliApply(t, nil, base); !ok {
		t.Fatalf("installing %s: %s", good, stderr)
	}
	cases := []struct {
		name string
		opts [][2]string
		want string // must appear in the error
	}{
		{"uppercase name", [][2]string{{"name", "Web"}, {"image", e.image}}, `"Web"`},
		{"slash in name", [][2]string{{"name", "a/b"}, {"image", e.image}}, `"a/b"`},
		{"bad image", [][2]string{{"name", good}, {"image", "UPPER/Case:x"}}, "UPPER/Case"},
		{"port not numeric", [][2]string{{"name", good}, {"image", e.image}, {"port", "abc"}, {"announce", "80"}}, `"abc"`},
		{"port out of range", [][2]string{{"name", good}, {"image", e.image}, {"announce", "70000"}}, "70000"},
		{"unknown option", [][2]string{{"name", good}, {"image", e.image}, {"imgae", "x"}}, "imgae"},
		{"unknown state", [][2]string{{"name", good}, {"image", e.image}, {"state", "running"}}, `"running"`},
		{"unbalanced quote", [][2]string{{"name", good}, {"image", e.image}, {"args", `-e "A=1`}}, "args"},
		{"command substitution", [][2]string{{"name", good}, {"image", e.image}, {"args", "-e A=$(id)"}}, "args"},
		{"metachar in network", [][2]string{{"name", good}, {"image", e.image}, {"network", "x;id"}}, "x;id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := append(append([][2]string{}, c.opts...), e.dirs()...)
			before := e.tree()
			r := e.ansible(t, kv(opts))
			if r.ok || !strings.Contains(r.stdout, "FAILED!") {
				t.Errorf("ansible: want FAILED, got ok=%v\n%s", r.ok, r.stdout)
			}
			if !strings.Contains(r.msg(), c.want) {
				t.Errorf("ansible: error %q does not name %s", r.msg(), c.want)
			}
			_, stderr, ok := e.cliApply(t, nil, opts)
			if ok {
				t.Errorf("cli: want a non-zero exit")
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("cli: error %q does not name %s", stderr, c.want)
			}
			if after := e.tree(); after != before {
				t.Errorf("disk changed after a rejected input")
			}
		})
	}
	t.Run("malformed yaml", func(t *testing.T) {
		f := filepath.Join(e.r.Root, "bad.yml")
		os.WriteFile(f, []byte("name: x\nimage: [unclosed\n"), 0o644)
		before := e.tree()
		_, stderr, ok := e.cli(t, "apply", "-f", f)
		if ok || !strings.Contains(stderr, "bad.yml") {
			t.Errorf("want a failure naming the file, got ok=%v %q", ok, stderr)
		}
		if after := e.tree(); after != before {
			t.Errorf("disk changed after a rejected file")
		}
	})
	t.Run("multi-service file is all or nothing", func(t *testing.T) {
		f := filepath.Join(e.r.Root, "two.yml")
		var b strings.Builder
		fmt.Fprintf(&b, "name: %sfirst\nimage: %s\nstate: present\n", genPrefix+"bad-", e.image)
		for _, d := range e.dirs() {
			fmt.Fprintf(&b, "%s: %s\n", d[0], d[1])
		}
		b.WriteString("---\nname: second\nimage: x\nport: 99999\n")
		os.WriteFile(f, []byte(b.String()), 0o644)
		before := e.tree()
		_, stderr, ok := e.cli(t, "apply", "-f", f)
		if ok || !strings.Contains(stderr, "99999") {
			t.Errorf("want a failure naming 99999, got ok=%v %q", ok, stderr)
		}
		if after := e.tree(); after != before {
			t.Errorf("the valid first service was installed although the second was rejected")
		}
	})
	t.Run("planted symlink", func(t *testing.T) {
		victim := filepath.Join(e.r.Root, "victim")
		os.WriteFile(victim, []byte("precious\n"), 0o644)
		run := filepath.Join(e.r.SvDir, "docker-"+good, "run")
		os.Remove(run)
		if err := os.Symlink(victim, run); err != nil {
			t.Fatal(err)
		}
		before := e.tree()
		opts := append([][2]string{{"state", "present"}, {"name", good}, {"image", e.image}, {"pull", "never"}, {"env", "X=1"}}, e.dirs()...)
		r := e.ansible(t, kv(opts))
		if r.ok || !strings.Contains(r.msg(), run) {
			t.Errorf("ansible: want a failure naming %s, got ok=%v %q", run, r.ok, r.msg())
		}
		_, stderr, ok := e.cliApply(t, nil, opts)
		if ok || !strings.Contains(stderr, "symlink") {
			t.Errorf("cli: want a failure about the symlink, got ok=%v %q", ok, stderr)
		}
		if data, _ := os.ReadFile(victim); string(data) != "precious\n" {
			t.Errorf("rundock wrote through the planted symlink: %q", data)
		}
		if after := e.tree(); after != before {
			t.Errorf("disk changed")
		}
		// A symlinked directory inside the tree is refused too.
		os.Remove(run)
		logDir := filepath.Join(e.r.SvDir, "docker-"+good, "log")
		os.RemoveAll(logDir)
		os.Symlink(e.r.Root, logDir)
		if _, stderr, ok := e.cliApply(t, nil, opts); ok || !strings.Contains(stderr, logDir) {
			t.Errorf("cli: want a failure naming %s, got ok=%v %q", logDir, ok, stderr)
		}
	})
}

// sv_dir and service_dir may themselves be symlinks, as /etc/service is on Debian.
func TestGenerator_SymlinkedDirs(t *testing.T) {
	e := newGenEnv(t, genPrefix+"lnk-")
	svLink := filepath.Join(e.r.Root, "sv-link")
	if err := os.Symlink(e.r.SvDir, svLink); err != nil {
		t.Fatal(err)
	}
	name := genPrefix + "lnk-web"
	opts := [][2]string{{"state", "present"}, {"name", name}, {"image", e.image}, {"sv_dir", svLink},
		{"service_dir", e.r.ServiceDir}, {"bin_dir", e.r.BinDir}, {"log", "false"}}
	for i, want := range []bool{true, false} {
		res, stderr, ok := e.cliApply(t, nil, opts)
		if !ok {
			t.Fatalf("run %d: %s", i, stderr)
		}
		if c, _ := res["changed"].(bool); c != want {
			t.Fatalf("run %d: changed=%v, want %v", i, c, want)
		}
	}
	if _, err := os.Stat(filepath.Join(e.r.SvDir, "docker-"+name, "run")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.r.SvDir, "docker-"+name, "log")); err == nil {
		t.Errorf("log=false still rendered log/")
	}
}
