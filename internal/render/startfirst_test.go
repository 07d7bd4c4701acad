package render

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/testenv"
	"github.com/rundock/rundock/internal/tree"
)

// sfDocker is a docker stub for update start-first: it logs every call (one line, the
// words joined by spaces) to $SF_LOG, answers "container inspect -f ... web.next" with
// $SF_NEXT (fails when empty), finds no container web, and records docker run's argv
// NUL-separated in $SF_ARGV.
const sfDocker = `#!/bin/sh
echo "$*" >>"$SF_LOG"
case $1 in
run) printf '%s\0' "$@" >"$SF_ARGV"; exit 0 ;;
container)
	for a; do last=$a; done
	if [ "$last" = web.next ] && [ -n "$SF_NEXT" ]; then echo "$SF_NEXT"; exit 0; fi
	exit 1 ;;
rename | attach | logs | rm) exit 0 ;;
esac
exit 1
`

// sfRun renders svc, writes its run script into a service dir and runs it with args;
// it returns the exit code, docker's calls and docker run's argv (nil when not called).
type sfResult struct {
	code  int
	out   string
	calls []string
	argv  []string
}

func sfRender(t *testing.T, in map[string]any) (tree.Tree, spec.Service) {
	t.Helper()
	m := map[string]any{"name": "web", "image": "nginx", "announce": 8080, "port": 80, "update": "start-first",
		"update_port": 8081, "sv_dir": t.TempDir(), "host": "10.0.0.1"}
	for k, v := range in {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	s, err := spec.FromMap(m, "h")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	checkSyntax(t, tr)
	return tr, s
}

func file(t *testing.T, tr tree.Tree, p string) []byte {
	t.Helper()
	for _, f := range tr.Files {
		if f.Path == p {
			return f.Data
		}
	}
	t.Fatalf("no %s rendered", p)
	return nil
}

func sfRun(t *testing.T, tr tree.Tree, next string, args ...string) sfResult {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(sfDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"date", "sleep", "cat", "rm"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s is not installed", name)
		}
		if err := os.Symlink(p, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	const pathLine = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
	script := bytes.Replace(file(t, tr, "run"), []byte(pathLine), []byte("PATH="+bin+"\n"), 1)
	svc := filepath.Join(dir, "svc")
	if err := os.MkdirAll(filepath.Join(svc, "supervise"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(svc, "run"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"./run"}, args...)...)
	cmd.Dir = svc
	log, argv := filepath.Join(dir, "log"), filepath.Join(dir, "argv")
	cmd.Env = []string{"PATH=" + bin, "SF_LOG=" + log, "SF_ARGV=" + argv, "SF_NEXT=" + next}
	out, err := cmd.CombinedOutput()
	r := sfResult{out: string(out)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(log); err == nil {
		r.calls = strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	if b, err := os.ReadFile(argv); err == nil {
		r.argv = strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	}
	if _, err := os.Stat(filepath.Join(svc, "supervise", "rundock-started")); (err == nil) != (len(args) == 0 && r.code == 0) {
		t.Errorf("supervise/rundock-started written: %v, want only by runit's run (args %q, exit %d)", err == nil, args, r.code)
	}
	return r
}

// has reports whether argv holds want as consecutive words.
func has(argv []string, want ...string) bool {
	for i := range argv {
		if len(argv)-i >= len(want) && slices.Equal(argv[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

func specHash(t *testing.T, tr tree.Tree) string {
	t.Helper()
	for _, l := range strings.Split(string(file(t, tr, "run")), "\n") {
		if h, ok := strings.CutPrefix(l, SpecLine); ok {
			return h
		}
	}
	t.Fatalf("run has no %q line", SpecLine)
	return ""
}

func TestRender_StartFirst(t *testing.T) {
	testenv.Need(t, "sh")
	tr, s := sfRender(t, nil)
	hash := specHash(t, tr)
	label := SpecLabel + "=" + hash
	state := filepath.Join(s.SvDir, Dir(s.Name), StatePath)

	t.Run("next starts the new container detached beside the old one", func(t *testing.T) {
		r := sfRun(t, tr, "", "next", "8081")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.out)
		}
		for _, want := range [][]string{{"--detach", "--name", "web.next"}, {"--label", label}, {"-p", "10.0.0.1:8081:80"}} {
			if !has(r.argv, want...) {
				t.Errorf("docker run %q lacks %q", r.argv, want)
			}
		}
		if slices.ContainsFunc(r.calls, func(c string) bool { return strings.HasPrefix(c, "rm ") || strings.HasPrefix(c, "rename ") }) {
			t.Errorf("run next touched another container: %q", r.calls)
		}
	})
	t.Run("next refuses a port that is neither announce nor update_port", func(t *testing.T) {
		r := sfRun(t, tr, "", "next", "9999")
		if r.code != 2 || r.argv != nil || !strings.Contains(r.out, "8080 or 8081") {
			t.Fatalf("exit %d, docker run %q, output %q; want exit 2 naming the ports, no docker run", r.code, r.argv, r.out)
		}
	})
	t.Run("run adopts a running web.next of this tree", func(t *testing.T) {
		r := sfRun(t, tr, hash+" true")
		if r.code != 0 || r.argv != nil {
			t.Fatalf("exit %d, docker run %q; want an adoption, no docker run", r.code, r.argv)
		}
		if !slices.Contains(r.calls, "rename web.next web") || r.calls[len(r.calls)-1] != "attach --no-stdin web" {
			t.Fatalf("calls %q: want a rename of web.next to web, then docker attach web last", r.calls)
		}
	})
	for _, next := range []string{"0123456789abcdef true", hash + " false", ""} {
		t.Run("run starts its own container beside web.next "+next, func(t *testing.T) {
			r := sfRun(t, tr, next)
			if r.code != 0 || !has(r.argv, "--name", "web") || !has(r.argv, "--label", label) || !has(r.argv, "-p", "10.0.0.1:8080:80") {
				t.Fatalf("exit %d, docker run %q: want web on 8080 with the label", r.code, r.argv)
			}
			if slices.ContainsFunc(r.calls, func(c string) bool { return strings.HasPrefix(c, "rename") }) {
				t.Fatalf("renamed a web.next that is not this tree's running container: %q", r.calls)
			}
		})
	}
	t.Run("run takes the host port the service holds", func(t *testing.T) {
		for content, want := range map[string]string{"8081\n": "8081", "8080\n": "8080", "22\n": "8080", "$(touch /tmp/x)": "8080"} {
			if err := os.MkdirAll(state, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(state, PortFile), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			if r := sfRun(t, tr, ""); !has(r.argv, "-p", "10.0.0.1:"+want+":80") {
				t.Errorf("port file %q: docker run %q, want host port %s", content, r.argv, want)
			}
		}
	})
	t.Run("announcer takes the port from the container, and rundock's overrides", func(t *testing.T) {
		a := string(file(t, tr, AnnouncerPath+"/run"))
		if !strings.Contains(a, "--published-port 80/tcp") || !strings.HasSuffix(a, "\t\"$@\"\n") {
			t.Fatalf("announcer/run lacks --published-port 80/tcp or a final \"$@\":\n%s", a)
		}
	})
	t.Run("container announce publishes nothing", func(t *testing.T) {
		tr, _ := sfRender(t, map[string]any{"announce_as": "container", "update_port": nil, "host": nil})
		r := sfRun(t, tr, "", "next")
		if r.code != 0 || !has(r.argv, "--detach", "--name", "web.next") || slices.Contains(r.argv, "-p") {
			t.Fatalf("exit %d, docker run %q: want web.next detached, no -p", r.code, r.argv)
		}
		if a := string(file(t, tr, AnnouncerPath+"/run")); strings.Contains(a, "--published-port") || !strings.Contains(a, `"$@"`) {
			t.Fatalf("announcer/run of a container announce:\n%s", a)
		}
	})
	t.Run("the hash follows what the container is started with", func(t *testing.T) {
		same := map[string]any{"sv_dir": s.SvDir}
		with := func(k string, v any) map[string]any { return map[string]any{"sv_dir": s.SvDir, k: v} }
		again, _ := sfRender(t, same)
		other, _ := sfRender(t, with("image", "nginx:2"))
		env, _ := sfRender(t, with("env", "A=1"))
		env2, _ := sfRender(t, with("env", "A=2"))
		if specHash(t, again) != hash {
			t.Fatalf("the same spec rendered twice has two hashes, %s and %s", hash, specHash(t, again))
		}
		if specHash(t, other) == hash || specHash(t, env) == specHash(t, env2) || specHash(t, env) == hash {
			t.Fatal("two specs that start different containers have one hash")
		}
	})
	t.Run("stop-first renders no start-first code", func(t *testing.T) {
		tr, _ := sfRender(t, map[string]any{"update": nil, "update_port": nil})
		for _, p := range []string{"run", AnnouncerPath + "/run"} {
			if d := string(file(t, tr, p)); strings.Contains(d, "next") || strings.Contains(d, "$@") || strings.Contains(d, SpecLabel) {
				t.Fatalf("%s of a stop-first service has start-first code:\n%s", p, d)
			}
		}
	})
}
