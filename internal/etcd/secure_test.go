package etcd_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/etcd"
	"github.com/rundock/rundock/internal/testenv"
)

const prefix = "/skydns/com/example/prod/s/"

func tlsConfig(t *testing.T, ca string, kp *testenv.KeyPair) *tls.Config {
	b, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: x509.NewCertPool()}
	cfg.RootCAs.AppendCertsFromPEM(b)
	if kp != nil {
		cert, err := tls.LoadX509KeyPair(kp.Cert, kp.Key)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

// TestSecure runs against Debian's etcd with TLS, client certificates and auth: a
// password user and a CommonName user work within their roles, an expired token is
// renewed, and each refusal is the sentinel error it should be.
func TestSecure(t *testing.T) {
	e := testenv.StartSecureEtcd(t, prefix)
	other := testenv.NewCA(t, t.TempDir(), "other-ca")
	tests := []struct {
		name      string
		tls       *tls.Config
		user, pw  string
		newErr    error    // errors.Is target of New's error
		newMsg    string   // or a substring of it
		newAlso   []string // other substrings that may stand for newMsg
		putErr    error    // of a put under the prefix
		outsideOK bool
	}{
		{name: "password", tls: tlsConfig(t, e.CA.CertFile, &e.Nobody), user: testenv.AnnouncerUser, pw: e.AnnouncerPassword},
		{name: "certificate CommonName", tls: tlsConfig(t, e.CA.CertFile, &e.Announcer)},
		{name: "read-only user", tls: tlsConfig(t, e.CA.CertFile, &e.Upstreams), putErr: etcd.ErrPermissionDenied},
		{name: "ErrAuthFailed", tls: tlsConfig(t, e.CA.CertFile, &e.Nobody), user: testenv.AnnouncerUser, pw: "wrong", newErr: etcd.ErrAuthFailed},
		{name: "ErrUnknownAuthority", tls: tlsConfig(t, other.CertFile, &e.Announcer), user: testenv.AnnouncerUser, pw: e.AnnouncerPassword, newMsg: "x509: certificate signed by unknown authority"},
		{name: "ErrNoClientCert", tls: tlsConfig(t, e.CA.CertFile, nil), user: testenv.AnnouncerUser, pw: e.AnnouncerPassword, newMsg: "tls",
			// TLS 1.3: etcd refuses the missing certificate after the client's handshake is
			// done; the alert is lost when the connection is reset or broken before it is read
			newAlso: []string{"broken pipe", "connection reset", "client conn could not be established"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := etcd.New(etcd.Config{Endpoints: []string{e.Endpoint}, TLS: tt.tls, User: tt.user, Password: tt.pw, DialTimeout: 2 * time.Second})
			if tt.newErr != nil || tt.newMsg != "" {
				if err == nil {
					c.Close()
					t.Fatal("New worked")
				}
				found := strings.Contains(err.Error(), tt.newMsg)
				for _, m := range tt.newAlso {
					found = found || strings.Contains(err.Error(), m)
				}
				if tt.newErr != nil && !errors.Is(err, tt.newErr) || !found {
					t.Fatalf("New: %v, want %v %q", err, tt.newErr, tt.newMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := ctxT(t, 10*time.Second)
			_, err = c.Put(ctx, prefix+"web/x", "{}", 0)
			if tt.putErr == nil && err != nil || tt.putErr != nil && !errors.Is(err, tt.putErr) {
				t.Fatalf("put under the prefix: %v, want %v", err, tt.putErr)
			}
			if _, err := c.Put(ctx, "/other", "{}", 0); !errors.Is(err, etcd.ErrPermissionDenied) {
				t.Fatalf("put outside the prefix: %v, want ErrPermissionDenied", err)
			}
			if _, err := c.GetPrefix(ctx, prefix); err != nil {
				t.Fatal(err)
			}
			if tt.user != "" {
				etcd.SetToken(c, "expired.token")
				if _, err := c.GetPrefix(ctx, prefix); err != nil {
					t.Fatalf("get with an invalid token: %v, want it renewed", err)
				}
				wch := c.Watch(ctx, prefix, etcd.WatchOptions{Prefix: true, RequireLeader: true})
				time.Sleep(200 * time.Millisecond)
				if _, err := c.Put(ctx, prefix+"web/y", "{}", 0); err != nil {
					t.Fatal(err)
				}
				if wr := <-wch; wr.Err() != nil || len(wr.Events) != 1 {
					t.Fatalf("watch with auth: %+v %v", wr, wr.Err())
				}
			}
		})
	}
}
