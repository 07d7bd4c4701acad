package announcercmd_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/testenv"
)

const tlsKey = "/skydns/com/example/prod/s/web/node-1"

// startAnnouncer runs the built announcer with args against e, announcing web:8080 as
// 10.1.2.3 without following a container; its output is returned as it grows, and
// exited is closed when it ends (*err is then its exit error).
func startAnnouncer(t *testing.T, e *testenv.SecureEtcd, args ...string) (cmd *exec.Cmd, out func() string, exited <-chan struct{}, err *error) {
	t.Helper()
	bin := filepath.Join(testenv.Binaries(t), "announcer")
	base := []string{"--name", "web", "--port", "8080", "--instance", "node-1", "--host", "10.1.2.3",
		"--watch-container=false", "--ttl", "10", "--etcd-endpoints", e.Endpoint}
	cmd = exec.Command(bin, append(base, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	buf := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done, werr := make(chan struct{}), new(error)
	go func() { *werr = cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	return cmd, buf.String, done, werr
}

func getKey(t *testing.T, e *testenv.SecureEtcd) string {
	t.Helper()
	cli := e.Client(t, e.Root, "", "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, tlsKey)
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// TestAnnouncer_SecureEtcd: the real announcer and rundock upstreams --once work through
// etcd with TLS, client certificates and least-privilege roles, by password and by
// certificate CommonName; TERM withdraws the record.
func TestAnnouncer_SecureEtcd(t *testing.T) {
	e := testenv.StartSecureEtcd(t, "/skydns/com/example/prod/s/")
	for _, tt := range []struct {
		name string
		args []string
	}{
		{name: "password", args: []string{"--cacert", e.CA.CertFile, "--cert", e.Nobody.Cert, "--key", e.Nobody.Key,
			"--user", testenv.AnnouncerUser, "--password-file", e.AnnouncerPasswordFile}},
		{name: "certificate CommonName", args: []string{"--cacert", e.CA.CertFile, "--cert", e.Announcer.Cert, "--key", e.Announcer.Key}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd, out, exited, werr := startAnnouncer(t, e, tt.args...)
			testenv.EventuallyMsg(t, 15*time.Second, func() string { return "no record; announcer said:\n" + out() },
				func() bool { return strings.Contains(getKey(t, e), `"10.1.2.3"`) })

			dir := t.TempDir()
			conf := filepath.Join(dir, "upstreams.yml")
			if err := os.WriteFile(conf, []byte("allow_networks: [10.0.0.0/8]\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			output := filepath.Join(dir, "upstreams.conf")
			for _, cred := range [][]string{
				{"--cert", e.Upstreams.Cert, "--key", e.Upstreams.Key},
				{"--cert", e.Nobody.Cert, "--key", e.Nobody.Key, "--user", testenv.UpstreamsUser, "--password-file", e.UpstreamsPasswordFile},
			} {
				os.Remove(output)
				up := exec.Command(filepath.Join(testenv.Binaries(t), "rundock"), append([]string{"upstreams", "--once",
					"--etcd-endpoints", e.Endpoint, "--cacert", e.CA.CertFile, "--config", conf, "--output", output,
					"--check-cmd", "true", "--reload-cmd", "true"}, cred...)...)
				if b, err := up.CombinedOutput(); err != nil {
					t.Fatalf("rundock upstreams --once %v: %v\n%s", cred, err, b)
				}
				b, err := os.ReadFile(output)
				if err != nil || !strings.Contains(string(b), "server 10.1.2.3:8080") {
					t.Fatalf("upstreams %v rendered %q (%v), want server 10.1.2.3:8080", cred, b, err)
				}
			}

			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
				if *werr != nil {
					t.Fatalf("announcer after TERM: %v\n%s", *werr, out())
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("announcer still running 5s after TERM:\n%s", out())
			}
			if v := getKey(t, e); v != "" {
				t.Fatalf("record %s = %s after TERM, want it withdrawn; announcer said:\n%s", tlsKey, v, out())
			}
			if !strings.Contains(out(), "stopped, withdrawn") {
				t.Errorf("announcer did not log the withdrawal:\n%s", out())
			}
		})
	}
}

// TestAnnouncer_SecureEtcdWrongCredentials: an untrusted certificate on either side, a
// user without the write role or a refused password keeps the announcer up and retrying,
// logging the cause once on one line that names the endpoint; once the password is fixed
// in etcd, the record is written without a restart.
func TestAnnouncer_SecureEtcdWrongCredentials(t *testing.T) {
	e := testenv.StartSecureEtcd(t, "/skydns/com/example/prod/s/")
	other := testenv.NewCA(t, t.TempDir(), "other-ca")
	foreign := other.Client(t, testenv.AnnouncerUser)
	wrongPassword := filepath.Join(t.TempDir(), "wrong.password")
	if err := os.WriteFile(wrongPassword, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{name: "ErrClientCertOfAnotherCA", args: []string{"--cacert", e.CA.CertFile, "--cert", foreign.Cert, "--key", foreign.Key},
			want: "etcd refused the client certificate --cert " + foreign.Cert},
		{name: "ErrServerCertNotSignedByCACert", args: []string{"--cacert", other.CertFile, "--cert", e.Announcer.Cert, "--key", e.Announcer.Key},
			want: "etcd's server certificate is not signed by a CA in --cacert " + other.CertFile},
		{name: "ErrReadOnlyUser", args: []string{"--cacert", e.CA.CertFile, "--cert", e.Upstreams.Cert, "--key", e.Upstreams.Key},
			want: "permission denied: user upstreams"},
		{name: "ErrWrongPassword", args: []string{"--cacert", e.CA.CertFile, "--cert", e.Nobody.Cert, "--key", e.Nobody.Key,
			"--user", testenv.AnnouncerUser, "--password-file", wrongPassword},
			want: `authentication failed for user \"` + testenv.AnnouncerUser + `\"`}, // quoted by the log line
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, out, exited, werr := startAnnouncer(t, e, tt.args...)
			testenv.EventuallyMsg(t, 15*time.Second, func() string { return "no explained failure; announcer said:\n" + out() },
				func() bool { return strings.Contains(out(), tt.want) })
			time.Sleep(6 * time.Second) // several backoff rounds (max 5 s)
			select {
			case <-exited:
				t.Fatalf("announcer exited (%v) instead of retrying:\n%s", *werr, out())
			default:
			}
			if n := strings.Count(out(), tt.want); n != 1 {
				t.Errorf("cause logged %d times, want once per kind:\n%s", n, out())
			}
			if !strings.Contains(out(), "etcd "+e.Endpoint+": ") {
				t.Errorf("the log line does not name the endpoint:\n%s", out())
			}
			if getKey(t, e) != "" {
				t.Errorf("a record was written")
			}
			if tt.name != "ErrWrongPassword" {
				return
			}
			// the operator fixes it in etcd: the announcer, still retrying, gets through
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := e.Client(t, e.Root, "", "").UserChangePassword(ctx, testenv.AnnouncerUser, "not-the-password"); err != nil {
				t.Fatal(err)
			}
			testenv.EventuallyMsg(t, 15*time.Second, func() string { return "no record after the password was fixed; announcer said:\n" + out() },
				func() bool { return strings.Contains(getKey(t, e), `"10.1.2.3"`) })
		})
	}
}

// lockedBuffer collects a process's output for a test reading it meanwhile.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestUpstreamsWatch_SecureEtcdWrongPassword: rundock upstreams --watch (supervised, like
// the announcer) stays up on a refused password, says so once, and renders once the
// password is fixed in etcd.
func TestUpstreamsWatch_SecureEtcdWrongPassword(t *testing.T) {
	e := testenv.StartSecureEtcd(t, "/skydns/com/example/prod/s/")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	root := e.Client(t, e.Root, "", "")
	if _, err := root.Put(ctx, tlsKey, `{"host":"10.1.2.3","port":8080,"ttl":30}`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf, output, pw := filepath.Join(dir, "upstreams.yml"), filepath.Join(dir, "upstreams.conf"), filepath.Join(dir, "pw")
	for f, s := range map[string]string{conf: "allow_networks: [10.0.0.0/8]\n", pw: "fixed-later\n"} {
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(filepath.Join(testenv.Binaries(t), "rundock"), "upstreams", "--watch",
		"--etcd-endpoints", e.Endpoint, "--cacert", e.CA.CertFile, "--cert", e.Nobody.Cert, "--key", e.Nobody.Key,
		"--user", testenv.UpstreamsUser, "--password-file", pw, "--config", conf, "--output", output,
		"--check-cmd", "true", "--reload-cmd", "true")
	buf := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { cmd.Process.Kill(); <-exited }()
	const want = `authentication failed for user \"` + testenv.UpstreamsUser + `\"`
	testenv.EventuallyMsg(t, 15*time.Second, func() string { return "no explained failure:\n" + buf.String() },
		func() bool { return strings.Contains(buf.String(), want) })
	select {
	case err := <-exited:
		t.Fatalf("rundock upstreams --watch exited (%v) instead of retrying:\n%s", err, buf.String())
	case <-time.After(6 * time.Second):
	}
	if n := strings.Count(buf.String(), want); n != 1 {
		t.Errorf("cause logged %d times, want once:\n%s", n, buf.String())
	}
	if _, err := root.UserChangePassword(ctx, testenv.UpstreamsUser, "fixed-later"); err != nil {
		t.Fatal(err)
	}
	testenv.EventuallyMsg(t, 15*time.Second, func() string { return "not rendered after the fix:\n" + buf.String() },
		func() bool { b, _ := os.ReadFile(output); return strings.Contains(string(b), "server 10.1.2.3:8080") })
}
