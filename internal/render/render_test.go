package render

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/testenv"
	"github.com/rundock/rundock/internal/tree"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current renderer")

// dump is the readable form of a tree that golden files hold.
func dump(t tree.Tree) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# tree %s\n", t.Dir)
	for _, s := range t.Services {
		fmt.Fprintf(&b, "# service %s -> %s\n", s.Path, s.Link)
	}
	for _, f := range t.Files {
		fmt.Fprintf(&b, "\n==> %s (%04o) <==\n%s", f.Path, f.Mode, f.Data)
	}
	return b.Bytes()
}

// checkSyntax runs sh -n on every file of the tree.
func checkSyntax(t testing.TB, tr tree.Tree) {
	t.Helper()
	for _, f := range tr.Files {
		if f.Mode&0o111 == 0 {
			continue // data (the env file), not a script
		}
		cmd := exec.Command("sh", "-n")
		cmd.Stdin = bytes.NewReader(f.Data)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sh -n %s/%s: %v\n%s\n%s", tr.Dir, f.Path, err, out, f.Data)
		}
	}
}

func TestRender_Golden(t *testing.T) {
	testenv.Need(t, "sh")
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no testdata/*.yaml: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			services, err := spec.ParseYAML(data, "back-1")
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			for _, s := range services {
				tr, err := Render(s)
				if err != nil {
					t.Fatal(err)
				}
				checkSyntax(t, tr)
				again, _ := Render(s)
				if !reflect.DeepEqual(tr, again) {
					t.Fatal("two renders of one service differ")
				}
				got = append(got, dump(tr)...)
			}
			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/render -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("render of %s differs from %s (go test ./internal/render -update rewrites it):\n%s", in, golden, got)
			}
		})
	}
}

func TestRender_Layout(t *testing.T) {
	tests := []struct {
		name     string
		in       map[string]any
		files    []string
		services []tree.Service
		has      map[string][]string // file -> substrings
		hasNot   map[string][]string
	}{
		{
			name:     "plain",
			in:       map[string]any{},
			files:    []string{"check", "control/t", "finish", "log/run", "run"},
			services: []tree.Service{{Path: ".", Link: "docker-web"}},
			hasNot:   map[string][]string{"run": {"addr", "ANNOUNCE_IP", "-p "}},
		},
		{
			name:  "no log",
			in:    map[string]any{"log": "no", "announce": 80},
			files: []string{"announcer/run", "check", "control/t", "finish", "run"},
			services: []tree.Service{
				{Path: ".", Link: "docker-web"},
				{Path: "announcer", Link: "docker-web.announcer"},
			},
		},
		{
			name: "public announce",
			in:   map[string]any{"announce": 8087, "port": 3000, "announce_as": "public", "public_interface": "eth0"},
			has: map[string][]string{
				"run":           {`PUBLIC_IP=$('/usr/local/bin/rundock' addr public --interface 'eth0')`, "ANNOUNCE_IP=$PUBLIC_IP", `-p "$ANNOUNCE_IP":8087:3000`},
				"announcer/run": {"--port 8087", "--announce-as 'public'", "--public-interface 'eth0'"},
			},
			hasNot: map[string][]string{"run": {"PRIVATE_IP"}},
		},
		{
			name: "private6 announce",
			in:   map[string]any{"announce": 8080, "announce_as": "private6", "private_interface": "eth1"},
			has: map[string][]string{
				"run":           {`PRIVATE_IP6=$('/usr/local/bin/rundock' addr private6 --interface 'eth1')`, "ANNOUNCE_IP=$PRIVATE_IP6", `-p "[$ANNOUNCE_IP]":8080:8080`},
				"announcer/run": {"--announce-as 'private6'", "--private-interface 'eth1'"},
			},
			hasNot: map[string][]string{"run": {"PUBLIC_IP", "PRIVATE_IP=", `-p "$ANNOUNCE_IP"`}},
		},
		{
			name:   "IPv4 host with announce_as public6",
			in:     map[string]any{"announce": 8080, "announce_as": "public6", "host": "10.0.0.5"},
			has:    map[string][]string{"run": {"ANNOUNCE_IP='10.0.0.5'", `-p "$ANNOUNCE_IP":8080:8080`}},
			hasNot: map[string][]string{"run": {"addr", "[$ANNOUNCE_IP]"}},
		},
		{
			name: "container announce",
			in:   map[string]any{"announce": 8080, "port": 80, "announce_as": "container", "args": "-e P=$PUBLIC_IP"},
			has: map[string][]string{
				"run":           {"PUBLIC_IP=$("},
				"announcer/run": {"--port 80", "--announce-as 'container'"},
			},
			hasNot: map[string][]string{"run": {"ANNOUNCE_IP", "PRIVATE_IP"}},
		},
		{
			name: "log dirs",
			in:   map[string]any{"announce": 80, "log_dir": "/srv/logs", "log_size": 5000, "log_count": 3},
			has: map[string][]string{
				"log/run":           {"mkdir -p -m 0750 '/srv/logs/web'", "5000 3", "svlogd -tt '/srv/logs/web'"},
				"announcer/log/run": {"svlogd -tt '/srv/logs/web.announcer'"},
			},
		},
		{
			name: "stop timeout",
			in:   map[string]any{"stop_timeout": 42},
			has: map[string][]string{
				"control/t": {"timeout 57 docker stop -t 42 'web'"},
				"run":       {"--stop-timeout 42"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]any{"name": "web", "image": "nginx"}
			for k, v := range tt.in {
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
			files := map[string]string{}
			var paths []string
			for _, f := range tr.Files {
				files[f.Path] = string(f.Data)
				paths = append(paths, f.Path)
				if f.Mode != 0o755 {
					t.Errorf("%s has mode %o, want 0755", f.Path, f.Mode)
				}
			}
			if tt.files != nil && !reflect.DeepEqual(paths, tt.files) {
				t.Errorf("files %v, want %v", paths, tt.files)
			}
			if tt.services != nil && !reflect.DeepEqual(tr.Services, tt.services) {
				t.Errorf("services %v, want %v", tr.Services, tt.services)
			}
			for f, subs := range tt.has {
				for _, sub := range subs {
					if !strings.Contains(files[f], sub) {
						t.Errorf("%s does not contain %q:\n%s", f, sub, files[f])
					}
				}
			}
			for f, subs := range tt.hasNot {
				for _, sub := range subs {
					if strings.Contains(files[f], sub) {
						t.Errorf("%s contains %q:\n%s", f, sub, files[f])
					}
				}
			}
		})
	}
}

func TestRender_Errors(t *testing.T) {
	tests := []struct {
		name string
		s    spec.Service
		kind error
	}{
		{"ErrNoDefaults", spec.Service{Name: "web", Image: "nginx"}, spec.ErrBadValue},
		{"ErrNewlineInName", func() spec.Service {
			s, _ := spec.FromMap(map[string]any{"name": "web", "image": "nginx"}, "h")
			s.Name = "web\ntouch /tmp/x"
			return s
		}(), spec.ErrBadValue},
		{"ErrNoImage", func() spec.Service {
			s, _ := spec.FromMap(map[string]any{"name": "web", "state": "absent"}, "h")
			return s
		}(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(tt.s)
			if err == nil {
				t.Fatal("Render succeeded; want an error")
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("error %v is not %v", err, tt.kind)
			}
		})
	}
}

// sandbox runs a rendered run script against stub programs: docker records the argv of
// "docker run" (NUL-separated) and fails every other subcommand (so no stale container
// is found); rundock prints 10.0.0.1. Only date, sleep, touch and cat are real.
type sandbox struct {
	dir, bin, argv string
}

const stubIP = "10.0.0.1"

func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	sb := &sandbox{dir: t.TempDir()}
	sb.bin = filepath.Join(sb.dir, "bin")
	sb.argv = filepath.Join(sb.dir, "argv")
	if err := os.MkdirAll(sb.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	stubs := map[string]string{
		"docker":  "#!/bin/sh\nif [ \"$1\" = run ]; then printf '%s\\0' \"$@\" >\"$RUNDOCK_TEST_ARGV\"; exit 0; fi\nexit 1\n",
		"rundock": "#!/bin/sh\necho " + stubIP + "\n",
	}
	for name, body := range stubs {
		if err := os.WriteFile(filepath.Join(sb.bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"date", "sleep", "touch", "cat"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s is not installed", name)
		}
		if err := os.Symlink(p, filepath.Join(sb.bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	return sb
}

// run writes the tree's run script into a fresh service dir and executes it; it returns
// the argv docker got and the service dir.
func (sb *sandbox) run(t testing.TB, tr tree.Tree) ([]string, string) {
	t.Helper()
	var script []byte
	for _, f := range tr.Files {
		if f.Path == "run" {
			script = f.Data
		}
	}
	const pathLine = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
	if !bytes.Contains(script, []byte(pathLine)) {
		t.Fatalf("run has no %q line:\n%s", pathLine, script)
	}
	script = bytes.Replace(script, []byte(pathLine), []byte("PATH="+sb.bin+"\n"), 1)
	svc, err := os.MkdirTemp(sb.dir, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(svc, "supervise"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(svc, "run"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(sb.argv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "./run")
	cmd.Dir = svc
	cmd.Env = []string{"PATH=" + sb.bin, "RUNDOCK_TEST_ARGV=" + sb.argv}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run failed: %v\n%s\nscript:\n%s", err, out, script)
	}
	data, err := os.ReadFile(sb.argv)
	if err != nil {
		t.Fatalf("docker run was not called: %v\nscript:\n%s", err, script)
	}
	argv := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
	return argv, svc
}

// noCanary fails when an injected payload created a file named CANARY anywhere in the
// sandbox.
func (sb *sandbox) noCanary(t testing.TB, input string) {
	t.Helper()
	filepath.WalkDir(sb.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), "CANARY") {
			t.Fatalf("input %q created %s: shell injection", input, p)
		}
		return nil
	})
}

// expand returns the words sh should pass for ws, placeholders replaced by the stub IP.
func expand(ws []spec.Word) []string {
	out := []string{}
	for _, w := range ws {
		var b strings.Builder
		for _, p := range w {
			if p.Var != "" {
				b.WriteString(stubIP)
			} else {
				b.WriteString(p.Lit)
			}
		}
		out = append(out, b.String())
	}
	return out
}

var injections = []string{
	"$(touch CANARY)",
	"`touch CANARY`",
	";touch CANARY",
	"; touch CANARY",
	"&& touch CANARY",
	"| touch CANARY",
	"> CANARY",
	"'\"",
	"\"'",
	"'; touch CANARY; '",
	"\"; touch CANARY; \"",
	"\\'; touch CANARY #",
	"\ntouch CANARY",
	"a\n",
	"${IFS}touch${IFS}CANARY",
	"$(touch${IFS}CANARY)",
	"'$(touch CANARY)'",
	"\"$PRIVATE_IP\"'$(touch CANARY)'",
	"\"`touch CANARY`\"",
	"'\\''$(touch CANARY)",
	"$PRIVATE_IP:8083:8083",
	"-p ${ANNOUNCE_IP}:1:1 -e 'A=$(x)' -e \"B=\\$(y)\" c\\ d",
	"--label 'x=;|&<>(){}*?[]~#!' \"$PUBLIC_IP\"",
	"\x00",
	"\t",
	"\xff",
	"a b  c",
	"",
}

// FuzzSplitArgs renders every accepted args string, runs the run script against stubs,
// and checks that no payload ran and docker got exactly the words SplitArgs found; it
// also checks those words against what sh itself makes of args (globbing off).
func FuzzSplitArgs(f *testing.F) {
	testenv.Need(f, "sh")
	for _, s := range injections {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, args string) {
		words, err := spec.SplitArgs(args)
		if err != nil {
			return
		}
		sb := newSandbox(t)
		// What sh makes of the same text, in an empty directory with globbing off.
		empty := t.TempDir()
		cmd := exec.Command("/bin/sh", "-f", "-c", "printf '%s\\0' "+args)
		cmd.Dir = empty
		cmd.Env = []string{"PATH=" + sb.bin, "PRIVATE_IP=" + stubIP, "PUBLIC_IP=" + stubIP, "ANNOUNCE_IP=" + stubIP,
			"PRIVATE_IP6=" + stubIP, "PUBLIC_IP6=" + stubIP}
		out, err := cmd.Output()
		sb.noCanary(t, args)
		if err != nil {
			t.Fatalf("sh rejected %q, which SplitArgs accepted as %q: %v", args, words, err)
		}
		shWords := []string{}
		if len(out) > 0 {
			shWords = strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		}
		if len(words) == 0 {
			shWords = []string{} // printf with no arguments prints the format once
		}
		if got := expand(words); !reflect.DeepEqual(got, shWords) {
			t.Fatalf("SplitArgs(%q) = %q, sh splits it into %q", args, got, shWords)
		}

		s, err := spec.FromMap(map[string]any{"name": "fz", "image": "img", "args": args, "bin_dir": sb.bin}, "h")
		if err != nil {
			return // e.g. -d: split fine, refused by validation
		}
		tr, err := Render(s)
		if err != nil {
			t.Fatal(err)
		}
		checkSyntax(t, tr)
		argv, _ := sb.run(t, tr)
		sb.noCanary(t, args)
		want := append([]string{"run", "--rm", "--name", "fz", "--pull", "missing", "--hostname", "h-fz", "--stop-timeout", "10"}, expand(words)...)
		want = append(want, "img")
		if !reflect.DeepEqual(argv, want) {
			t.Fatalf("args %q: docker got %q, want %q", args, argv, want)
		}
	})
}

// FuzzFromMap feeds free-form and identifier options through FromMap; for every accepted
// service it renders, checks every script with sh -n, runs the run script against stubs
// and compares docker's argv with the options.
func FuzzFromMap(f *testing.F) {
	testenv.Need(f, "sh")
	f.Add("web", "nginx:1.27", "-e A=1", "x y", "serve", "curl -f localhost || exit 1", "web-1")
	for _, s := range injections {
		f.Add("web", "nginx", s, s, s, s, "h")
		f.Add(s, "nginx", "", "", "", "", "")
		f.Add("web", s, "", "", "", "", s)
	}
	f.Fuzz(func(t *testing.T, name, image, args, envVal, cmdWord, healthCmd, hostname string) {
		sb := newSandbox(t)
		m := map[string]any{
			"name": name, "image": image, "args": args, "env": map[string]any{"V": envVal},
			"command": []any{cmdWord, "x"}, "health_cmd": healthCmd, "hostname": hostname,
			"bin_dir": sb.bin, "announce": "8080",
		}
		s, err := spec.FromMap(m, "h")
		if err != nil {
			var oe *spec.Error
			if !errors.As(err, &oe) {
				t.Fatalf("FromMap error %v is not a *spec.Error", err)
			}
			return
		}
		tr, err := Render(s)
		if err != nil {
			t.Fatal(err)
		}
		checkSyntax(t, tr)
		argv, _ := sb.run(t, tr)
		sb.noCanary(t, fmt.Sprint(m))
		if hostname == "" {
			hostname = "h-" + name
		}
		envFile := path.Join(spec.DefaultSvDir, Dir(name), EnvPath)
		want := []string{"run", "--rm", "--name", name, "--pull", "missing", "--hostname", hostname, "--stop-timeout", "10",
			"--env-file", envFile, "-p", stubIP + ":8080:8080"}
		if healthCmd != "" {
			want = append(want, "--health-cmd", healthCmd)
		}
		want = append(want, expand(s.ArgWords)...)
		want = append(want, image, cmdWord, "x")
		if !reflect.DeepEqual(argv, want) {
			t.Fatalf("docker got %q, want %q", argv, want)
		}
		// The value is in the root-only env file, never on argv.
		i := slices.IndexFunc(tr.Files, func(f tree.File) bool { return f.Path == EnvPath })
		if i < 0 || string(tr.Files[i].Data) != "V="+envVal+"\n" || tr.Files[i].Mode != 0o600 {
			t.Fatalf("env file %+v, want V=%s with mode 0600", tr.Files[i], envVal)
		}
	})
}

// TestRender_LogRunRefusesSymlink: log/run never logs through a symlink planted where its
// directory goes, and makes the directory 0750 (issue 13: logs readable by every user).
func TestRender_LogRunRefusesSymlink(t *testing.T) {
	testenv.Need(t, "sh")
	logDir := t.TempDir()
	s, err := spec.FromMap(map[string]any{"name": "web", "image": "nginx", "log_dir": logDir}, "h")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(tr.Files, func(f tree.File) bool { return f.Path == "log/run" })
	// Everything up to svlogd, which the test does not run.
	script := strings.Replace(string(tr.Files[i].Data), "exec svlogd", "exit 0 #", 1)
	run := func() error {
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = t.TempDir()
		return cmd.Run()
	}
	victim := t.TempDir()
	if err := os.Symlink(victim, filepath.Join(logDir, "web")); err != nil {
		t.Fatal(err)
	}
	if err := run(); err == nil {
		t.Error("log/run accepted a symlinked log directory")
	}
	if entries, _ := os.ReadDir(victim); len(entries) != 0 {
		t.Errorf("log/run wrote through the symlink: %v", entries)
	}
	os.Remove(filepath.Join(logDir, "web"))
	if err := run(); err != nil {
		t.Fatalf("log/run: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(logDir, "web")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("log directory %v %v, want mode 0750", fi, err)
	}
}

// TestRender_PublishIPv6: docker gets the IPv6 host address in brackets, as its -p wants
// it, from the address the run script looks up (private6) or the host option.
func TestRender_PublishIPv6(t *testing.T) {
	testenv.Need(t, "sh")
	tests := []struct {
		name string
		in   map[string]any
		want string
	}{
		{name: "host", in: map[string]any{"host": "fd00::5"}, want: "[fd00::5]:8080:80"},
		{name: "private6", in: map[string]any{"announce_as": "private6"}, want: "[" + stubIP + "]:8080:80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb := newSandbox(t)
			m := map[string]any{"name": "web", "image": "img", "announce": 8080, "port": 80, "bin_dir": sb.bin}
			maps.Copy(m, tt.in)
			s, err := spec.FromMap(m, "h")
			if err != nil {
				t.Fatal(err)
			}
			tr, err := Render(s)
			if err != nil {
				t.Fatal(err)
			}
			argv, _ := sb.run(t, tr)
			if i := slices.Index(argv, "-p"); i < 0 || i+1 >= len(argv) || argv[i+1] != tt.want {
				t.Errorf("docker %q: want -p %s", argv, tt.want)
			}
		})
	}
}
