package pkg

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/rundock/rundock/internal/testenv"
)

// The files every rundock package must hold (dpkg-deb -c paths, without the leading ".").
var debFiles = []string{
	"/usr/bin/rundock",
	"/usr/bin/announcer",
	"/usr/share/ansible/plugins/modules/rundock",
	"/usr/share/ansible/plugins/modules/rundock.yml",
	"/usr/share/rundock/sv/rundock-upstreams/run",
	"/usr/share/rundock/sv/rundock-upstreams/log/run",
	"/usr/share/man/man1/rundock.1.gz",
	"/usr/share/man/man1/announcer.1.gz",
	"/usr/share/doc/rundock/README.md",
	"/usr/share/doc/rundock/copyright",
	"/usr/share/doc/rundock/changelog.gz",
	"/usr/share/doc/rundock/examples/ansible/playbook.yml",
}

// TestDeb builds the Debian package (packaging/build-deb.sh, what make deb runs), checks it
// with lintian (no errors), installs it with dpkg -i, runs the module the original way with
// no -M, then removes and purges it and checks that nothing the package installed is left.
// It needs root (dpkg) and refuses to run where an operator installed rundock.
func TestDeb(t *testing.T) {
	testenv.Need(t, "nfpm", "lintian", "dpkg", "dpkg-deb", "dpkg-query", "ansible", "ansible-doc", "gzip")
	if os.Geteuid() != 0 {
		t.Fatal("dpkg -i needs root: run the package test (make test) as root")
	}
	if st, _, _ := tryRun(nil, "dpkg-query", "-W", "-f", "${db:Status-Status}", "rundock"); st != "" && st != "not-installed" {
		t.Fatalf("the package rundock is already on this machine (dpkg status %q): this test installs and purges it; remove it first (dpkg -P rundock)", st)
	}
	nfpm, _ := testenv.LookPath("nfpm")
	root := t.TempDir()

	// Build.
	var deb string
	took := timed(func() {
		out := run(t, []string{"NFPM=" + nfpm, "OUT_DIR=" + filepath.Join(root, "out")}, "bash", "packaging/build-deb.sh")
		deb = lastLine(out)
	})
	st, err := os.Stat(deb)
	if err != nil {
		t.Fatalf("build-deb.sh printed %q: %v", deb, err)
	}
	if !regexp.MustCompile(`/rundock_[0-9][0-9A-Za-z.+~]*_[a-z0-9]+\.deb$`).MatchString(deb) {
		t.Errorf("package name %s is not rundock_VERSION_ARCH.deb", filepath.Base(deb))
	}
	t.Logf("built %s: %.1f MB in %s", filepath.Base(deb), float64(st.Size())/1e6, took)

	// Contents and metadata.
	listing := run(t, nil, "dpkg-deb", "-c", deb)
	for _, f := range debFiles {
		if !strings.Contains(listing, "."+f) {
			t.Errorf("the package lacks %s:\n%s", f, listing)
		}
	}
	if strings.Contains(listing, "./usr/local") || strings.Contains(listing, "./etc/") {
		t.Errorf("the package ships files in /usr/local or /etc:\n%s", listing)
	}
	depends := run(t, nil, "dpkg-deb", "-f", deb, "Depends")
	if strings.TrimSpace(depends) != "runit, docker.io | docker-ce" {
		t.Errorf("Depends: %s, want runit, docker.io | docker-ce", depends)
	}

	// lintian: errors fail, warnings are listed.
	out, errOut, err := tryRun(nil, "lintian", "--fail-on", "error", deb)
	var errs, warns []string
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "E: "):
			errs = append(errs, l)
		case strings.HasPrefix(l, "W: "):
			warns = append(warns, l)
		}
	}
	if err != nil || len(errs) > 0 {
		t.Errorf("lintian reports errors (%v):\n%s%s", err, out, errOut)
	}
	t.Logf("lintian: %d errors, %d warnings:\n%s", len(errs), len(warns), strings.Join(warns, "\n"))

	// What existed before, so that "nothing left" means "nothing the package created".
	existed := map[string]bool{}
	for _, p := range debPaths(listing) {
		if _, err := os.Lstat(p); err == nil {
			existed[p] = true
		}
	}

	// Install. runit and docker.io come from Debian's packages on the test machines (make
	// setup), so dpkg -i finds its dependencies: no --force-depends.
	t.Cleanup(func() { tryRun(nil, "dpkg", "-P", "rundock") })
	run(t, nil, "dpkg", "-i", deb)
	installed := strings.Fields(run(t, nil, "dpkg-query", "-L", "rundock"))
	if v := run(t, nil, "/usr/bin/rundock", "version"); !strings.Contains(v, run(t, nil, "dpkg-deb", "-f", deb, "Version")[:8]) {
		t.Errorf("rundock version %q does not match the package version", v)
	}

	// The module with no -M: Ansible's default module path holds it and its docs.
	env := ansibleEnv(root)
	doc := run(t, env, "ansible-doc", "rundock")
	if !strings.Contains(doc, "/usr/share/ansible/plugins/modules/rundock") || !strings.Contains(doc, "bin_dir") {
		t.Errorf("ansible-doc rundock does not show the packaged docs:\n%s", doc)
	}
	sv, service, logs := filepath.Join(root, "sv"), filepath.Join(root, "service"), filepath.Join(root, "log")
	args := "state=present name=pkgtest image=busybox announce=8086 port=8086 sv_dir=" + sv + " service_dir=" + service + " log_dir=" + logs
	if r := adhoc(t, env, "rundock", args, "--check"); r["changed"] != true {
		t.Errorf("check mode on an empty sv_dir: changed=%v, want true: %v", r["changed"], r)
	}
	if _, err := os.Stat(filepath.Join(sv, "docker-pkgtest")); err == nil {
		t.Errorf("check mode wrote %s", filepath.Join(sv, "docker-pkgtest"))
	}
	if r := adhoc(t, env, "rundock", args); r["changed"] != true {
		t.Errorf("first run: changed=%v, want true: %v", r["changed"], r)
	}
	if r := adhoc(t, env, "rundock", args); r["changed"] != false {
		t.Errorf("second run: changed=%v, want false: %v", r["changed"], r)
	}
	// The rendered scripts call the programs where the package put them. build-deb.sh sets
	// the default bin_dir at link time; that needs internal/defaults.BinDir to be a var.
	runScript, _ := os.ReadFile(filepath.Join(sv, "docker-pkgtest", "run"))
	announcerRun, _ := os.ReadFile(filepath.Join(sv, "docker-pkgtest", "announcer", "run"))
	moduleDoc, _ := os.ReadFile("/usr/share/ansible/plugins/modules/rundock.yml")
	if !strings.Contains(string(runScript), "'/usr/bin/rundock' addr") ||
		!strings.Contains(string(announcerRun), "exec '/usr/bin/announcer'") ||
		!regexp.MustCompile(`bin_dir:\n(.*\n){0,3}\s+default: /usr/bin\n`).Match(moduleDoc) {
		t.Errorf("the packaged rundock's default bin_dir is not /usr/bin, where the package installs rundock and announcer: "+
			"make internal/defaults.BinDir a var so build-deb.sh's -X sets it (packaging/README.md)\nrun:\n%s\nannouncer/run:\n%s", runScript, announcerRun)
	}

	// The shipped upstreams service is what the installed rundock renders.
	up := filepath.Join(root, "upstreams-sv")
	run(t, nil, "/usr/bin/rundock", "upstreams", "--install-service", "--watch", "--config", "/etc/rundock/upstreams.yml", "--sv-dir", up)
	for _, f := range []string{"run", "log/run"} {
		want, _ := os.ReadFile(filepath.Join(up, "rundock-upstreams", f))
		got, err := os.ReadFile(filepath.Join("/usr/share/rundock/sv/rundock-upstreams", f))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("/usr/share/rundock/sv/rundock-upstreams/%s differs from what rundock renders (%v):\n%s\nwant:\n%s", f, err, got, want)
		}
	}

	// Remove, then purge: every path the package installed and that did not exist before is
	// gone, and dpkg forgets the package.
	run(t, nil, "dpkg", "-r", "rundock")
	checkGone(t, "dpkg -r", installed, existed)
	run(t, nil, "dpkg", "-P", "rundock")
	checkGone(t, "dpkg -P", installed, existed)
	if st, _, _ := tryRun(nil, "dpkg-query", "-W", "-f", "${db:Status-Status}", "rundock"); st != "" && st != "not-installed" {
		t.Errorf("after dpkg -P the package status is %q", st)
	}
	if left, _ := filepath.Glob("/var/lib/dpkg/info/rundock.*"); len(left) > 0 {
		t.Errorf("dpkg -P left %v", left)
	}
}

// debPaths turns dpkg-deb -c output into absolute paths.
func debPaths(listing string) []string {
	var paths []string
	for _, l := range strings.Split(listing, "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		p := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		if p != "" {
			paths = append(paths, p)
		}
	}
	return paths
}

func checkGone(t *testing.T, step string, installed []string, existed map[string]bool) {
	t.Helper()
	var left []string
	for _, p := range installed {
		if p == "/." || existed[p] {
			continue
		}
		if _, err := os.Lstat(p); err == nil {
			left = append(left, p)
		}
	}
	sort.Strings(left)
	if len(left) > 0 {
		t.Errorf("after %s these paths of the package are still there:\n%s", step, strings.Join(left, "\n"))
	}
}
