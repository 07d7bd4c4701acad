package etcdclient_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/etcd"
	"github.com/rundock/rundock/internal/etcdclient"
	"github.com/rundock/rundock/internal/testenv"
)

const securePrefix = "/skydns/com/example/prod/s/"

// TestNew_SecureEtcd runs against Debian's etcd with TLS, --client-cert-auth and auth
// enabled: password and CommonName users work within their roles, and every wrong
// credential fails with one line that names the endpoint and the cause.
func TestNew_SecureEtcd(t *testing.T) {
	e := testenv.StartSecureEtcd(t, securePrefix)
	other := testenv.NewCA(t, t.TempDir(), "other-ca")
	foreignClient := other.Client(t, testenv.AnnouncerUser)
	base := func(kp testenv.KeyPair) etcdclient.Config {
		return etcdclient.Config{Endpoints: []string{e.Endpoint}, CACert: e.CA.CertFile, Cert: kp.Cert, Key: kp.Key}
	}
	withPW := func(c etcdclient.Config, user, pw string) etcdclient.Config { c.User, c.Password = user, pw; return c }
	noCert := withPW(base(e.Nobody), testenv.AnnouncerUser, e.AnnouncerPassword)
	noCert.Cert, noCert.Key = "", ""
	otherCA := base(e.Announcer)
	otherCA.CACert = other.CertFile

	tests := []struct {
		name     string
		cfg      etcdclient.Config
		newErr   string // substring of New's error; "" when New works
		putIn    string // substring of the error of a put under the prefix; "" for success
		putOut   string // the same for a key outside it
		get      string
		sentinel error // errors.Is target of putOut, if any
	}{
		{name: "announcer by password", cfg: withPW(base(e.Nobody), testenv.AnnouncerUser, e.AnnouncerPassword),
			putOut: `permission denied: user "announcer" may not write /other`, sentinel: etcd.ErrPermissionDenied},
		{name: "announcer by certificate CommonName", cfg: base(e.Announcer),
			putOut: "permission denied: user announcer (the CommonName of --cert", sentinel: etcd.ErrPermissionDenied},
		{name: "upstreams by password is read-only", cfg: withPW(base(e.Nobody), testenv.UpstreamsUser, e.UpstreamsPassword),
			putIn: `permission denied: user "upstreams" may not write ` + securePrefix, putOut: "permission denied"},
		{name: "upstreams by certificate is read-only", cfg: base(e.Upstreams),
			putIn: "permission denied: user upstreams", putOut: "permission denied"},
		{name: "a certificate naming no user has no rights", cfg: base(e.Nobody),
			putIn: "permission denied: user nobody", putOut: "permission denied", get: "may not read " + securePrefix},
		{name: "ErrBadPassword", cfg: withPW(base(e.Nobody), testenv.AnnouncerUser, "wrong"),
			newErr: `etcd ` + e.Endpoint + `: authentication failed for user "announcer"`},
		{name: "ErrNoClientCert", cfg: noCert,
			newErr: "etcd " + e.Endpoint + ": etcd refused the TLS connection: it requires a client certificate"},
		{name: "ErrClientCertOfAnotherCA", cfg: base(foreignClient),
			putIn: "etcd " + e.Endpoint + ": etcd refused the client certificate --cert " + foreignClient.Cert + ": use a client certificate signed by the CA"},
		{name: "ErrServerCertNotSignedByCACert", cfg: otherCA,
			putIn: "etcd " + e.Endpoint + ": etcd's server certificate is not signed by a CA in --cacert " + other.CertFile + " (x509: certificate signed by unknown authority)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, err := etcdclient.New(tt.cfg)
			if tt.newErr != "" {
				if err == nil {
					cli.Close()
					t.Fatalf("New: no error, want %q", tt.newErr)
				}
				if !strings.Contains(err.Error(), tt.newErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("New: %v\nwant one line containing %q", err, tt.newErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer cli.Close()
			check := func(op string, err error, want string) {
				t.Helper()
				switch {
				case want == "" && err != nil:
					t.Errorf("%s: %v", op, err)
				case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
					t.Errorf("%s: %v\nwant an error containing %q", op, err, want)
				}
			}
			key := securePrefix + "web/" + strings.ReplaceAll(tt.name, " ", "-")
			if strings.Contains(tt.putIn, "refused the client") || strings.Contains(tt.putIn, "server certificate") {
				// nothing gets through. A first call may end before any handshake has
				// failed (TLS 1.3 reports a refused client certificate after the
				// handshake), so it is retried as the announcer retries: the explained
				// line must come within a few attempts.
				for range 5 {
					pctx, pcancel := context.WithTimeout(context.Background(), 3*time.Second)
					_, err = cli.Put(pctx, key, "{}", 0)
					pcancel()
					if err == nil || strings.Contains(err.Error(), tt.putIn) {
						break
					}
				}
				check("put under the prefix", err, tt.putIn)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, err = cli.Put(ctx, key, "{}", 0)
			check("put under the prefix", err, tt.putIn)
			_, err = cli.Put(ctx, "/other", "{}", 0)
			check("put outside the prefix", err, tt.putOut)
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("put outside the prefix: %v is not %v", err, tt.sentinel)
			}
			_, err = cli.GetPrefix(ctx, securePrefix)
			check("get the prefix", err, tt.get)
		})
	}
}

// TestDial_RetriesUntilFixed: Dial reports a refused password once, keeps trying, and
// returns a working client once the password is fixed in etcd; cancelled, it returns.
func TestDial_RetriesUntilFixed(t *testing.T) {
	e := testenv.StartSecureEtcd(t, securePrefix)
	cfg := etcdclient.Config{Endpoints: []string{e.Endpoint}, CACert: e.CA.CertFile, Cert: e.Nobody.Cert, Key: e.Nobody.Key,
		User: testenv.AnnouncerUser, Password: "fixed-later"}
	failures := make(chan error, 100)
	type result struct {
		cli *etcd.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		cli, err := etcdclient.Dial(context.Background(), cfg, func(err error) { failures <- err })
		done <- result{cli, err}
	}()
	select {
	case err := <-failures:
		if !strings.Contains(err.Error(), `authentication failed for user "announcer"`) {
			t.Fatalf("first failure %q, want the refused password explained", err)
		}
	case r := <-done:
		t.Fatalf("Dial returned (%v) before the password was fixed", r.err)
	case <-time.After(15 * time.Second):
		t.Fatal("Dial reported no failure within 15 s")
	}
	time.Sleep(3 * time.Second) // retries, the same failure each time
	if n := len(failures); n != 0 {
		t.Errorf("the same failure was reported %d more times, want once", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.Client(t, e.Root, "", "").UserChangePassword(ctx, testenv.AnnouncerUser, "fixed-later"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Dial after the fix: %v", r.err)
		}
		defer r.cli.Close()
		if _, err := r.cli.Put(ctx, securePrefix+"web/x", "{}", 0); err != nil {
			t.Fatalf("put with the dialled client: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Dial did not return within 15 s of the fix")
	}

	cctx, ccancel := context.WithCancel(context.Background())
	cfg.Password = "wrong-again"
	go func() { time.Sleep(time.Second); ccancel() }()
	if _, err := etcdclient.Dial(cctx, cfg, func(error) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("Dial cancelled: %v, want context.Canceled", err)
	}
}
