package testenv

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Role and user names of the least-privilege setup StartSecureEtcd makes, the ones the
// README tells operators to create.
const (
	AnnouncerRole = "rundock-announcer" // readwrite on the records' prefix
	UpstreamsRole = "rundock-upstreams" // read on it
	AnnouncerUser = "announcer"
	UpstreamsUser = "upstreams"
)

// CA is a certificate authority made for one test, with its certificate in a PEM file.
type CA struct {
	CertFile string
	dir      string
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	serial   int64
}

// NewCA makes a self-signed CA named name whose files go under dir.
func NewCA(t testing.TB, dir, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &CA{CertFile: filepath.Join(dir, name+".crt"), dir: dir, cert: cert, key: key, serial: 1}
	writePEM(t, ca.CertFile, "CERTIFICATE", der, 0o644)
	return ca
}

// KeyPair is a certificate and its key, as PEM files.
type KeyPair struct {
	Cert, Key string
}

// Server issues a server certificate for 127.0.0.1 and localhost (also good for client
// authentication, as etcd's own gateway uses it both ways).
func (ca *CA) Server(t testing.TB, name string) KeyPair {
	t.Helper()
	return ca.issue(t, name, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, true)
}

// Client issues a client certificate whose CommonName is cn: with --client-cert-auth,
// etcd takes it as the user name of a request that carries no password.
func (ca *CA) Client(t testing.TB, cn string) KeyPair {
	t.Helper()
	return ca.issue(t, cn, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, false)
}

func (ca *CA) issue(t testing.TB, cn string, usage []x509.ExtKeyUsage, server bool) KeyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
	}
	if server {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(ca.dir, fmt.Sprintf("%s-%s-%d", ca.cert.Subject.CommonName, cn, ca.serial))
	kp := KeyPair{Cert: base + ".crt", Key: base + ".key"}
	writePEM(t, kp.Cert, "CERTIFICATE", der, 0o644)
	writePEM(t, kp.Key, "EC PRIVATE KEY", kder, 0o600)
	return kp
}

func writePEM(t testing.TB, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
}

// SecureEtcd is Debian's etcd serving clients over TLS only, with client certificate
// authentication (--client-cert-auth) and auth enabled: a root user, the role
// AnnouncerRole with readwrite and UpstreamsRole with read on Prefix, and the users
// AnnouncerUser and UpstreamsUser holding them, each with a password. Every client must
// present a certificate signed by CA; one with no password is the user its CommonName
// names.
type SecureEtcd struct {
	Endpoint string // https://127.0.0.1:PORT
	Prefix   string // the records' prefix the roles are granted on, with a trailing '/'
	Dir      string
	CA       *CA
	// Server is etcd's own certificate; Root, Announcer, Upstreams and Nobody are client
	// certificates (CommonNames root, announcer, upstreams and nobody: no such user).
	Server, Root, Announcer, Upstreams, Nobody KeyPair
	// Passwords of root, AnnouncerUser and UpstreamsUser, and files holding them.
	RootPassword, AnnouncerPassword, UpstreamsPassword string
	AnnouncerPasswordFile, UpstreamsPasswordFile       string

	etcdProcess
}

// SetupCommands are the etcdctl commands StartSecureEtcd runs, without the connection
// flags, for prefix; the README documents the same ones. Passwords are given with
// --new-user-password here only because a test has no terminal: an operator leaves it
// out and etcdctl asks.
func SetupCommands(prefix, rootPW, announcerPW, upstreamsPW string) [][]string {
	return [][]string{
		{"user", "add", "root", "--new-user-password=" + rootPW},
		{"user", "grant-role", "root", "root"},
		{"role", "add", AnnouncerRole},
		{"role", "grant-permission", AnnouncerRole, "readwrite", "--prefix=true", prefix},
		{"role", "add", UpstreamsRole},
		{"role", "grant-permission", UpstreamsRole, "read", "--prefix=true", prefix},
		{"user", "add", AnnouncerUser, "--new-user-password=" + announcerPW},
		{"user", "grant-role", AnnouncerUser, AnnouncerRole},
		{"user", "add", UpstreamsUser, "--new-user-password=" + upstreamsPW},
		{"user", "grant-role", UpstreamsUser, UpstreamsRole},
		{"auth", "enable"},
	}
}

// StartSecureEtcd starts /usr/bin/etcd on free loopback ports in a temporary directory,
// with certificates made here, and sets up auth with etcdctl (SetupCommands for prefix,
// e.g. /skydns/com/example/prod/s/). It stops when the test ends.
func StartSecureEtcd(t testing.TB, prefix string) *SecureEtcd {
	t.Helper()
	Need(t, "etcd", "etcdctl")
	dir := t.TempDir()
	ca := NewCA(t, dir, "rundock-test-ca")
	e := &SecureEtcd{
		Endpoint: fmt.Sprintf("https://127.0.0.1:%d", FreePort(t)), Prefix: prefix, Dir: dir, CA: ca,
		Server: ca.Server(t, "etcd"), Root: ca.Client(t, "root"), Announcer: ca.Client(t, AnnouncerUser),
		Upstreams: ca.Client(t, UpstreamsUser), Nobody: ca.Client(t, "nobody"),
		RootPassword: "root-pw-" + randHex(t), AnnouncerPassword: "announcer-pw-" + randHex(t), UpstreamsPassword: "upstreams-pw-" + randHex(t),
	}
	e.AnnouncerPasswordFile = filepath.Join(dir, "announcer.password")
	e.UpstreamsPasswordFile = filepath.Join(dir, "upstreams.password")
	for f, pw := range map[string]string{e.AnnouncerPasswordFile: e.AnnouncerPassword, e.UpstreamsPasswordFile: e.UpstreamsPassword} {
		if err := os.WriteFile(f, []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.start(t, dir, e.Endpoint, "--cert-file", e.Server.Cert, "--key-file", e.Server.Key,
		"--client-cert-auth", "--trusted-ca-file", ca.CertFile)
	e.waitReady(t)
	for _, args := range SetupCommands(prefix, e.RootPassword, e.AnnouncerPassword, e.UpstreamsPassword) {
		e.Etcdctl(t, e.Root, "", args...)
	}
	return e
}

// etcdProcess is Debian's etcd run by a test: one member on loopback ports, its output
// kept.
type etcdProcess struct {
	cmd  *exec.Cmd
	out  *SyncBuffer
	done chan struct{}
}

// start runs etcd with its data in dir, serving clients at endpoint, with the extra
// flags (TLS); it is killed when the test ends.
func (p *etcdProcess) start(t testing.TB, dir, endpoint string, extra ...string) {
	t.Helper()
	peer := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	bin, _ := LookPath("etcd")
	args := append([]string{"--name", "test", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "test=" + peer,
		"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn"}, extra...)
	p.out, p.done = &SyncBuffer{}, make(chan struct{})
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("cannot start etcd: %v", err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Stop)
}

// Stop kills etcd and waits for it.
func (p *etcdProcess) Stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Output is what etcd logged so far.
func (p *etcdProcess) Output() string { return p.out.String() }

func (e *SecureEtcd) waitReady(t testing.TB) {
	t.Helper()
	cli := e.Client(t, e.Root, "", "")
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return
		}
		select {
		case <-e.done:
			t.Fatalf("etcd exited: %v\n%s", e.cmd.ProcessState, e.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd on %s not ready after 30s: %v\n%s", e.Endpoint, err, e.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Etcdctl runs etcdctl against e with the client certificate kp and, when user is set,
// that user and its password (else the certificate's CommonName is the user), and
// returns its output; it fails the test when etcdctl fails.
func (e *SecureEtcd) Etcdctl(t testing.TB, kp KeyPair, user string, args ...string) string {
	t.Helper()
	out, err := e.EtcdctlErr(kp, user, args...)
	if err != nil {
		t.Fatalf("etcdctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// EtcdctlErr is Etcdctl returning etcdctl's error instead of failing the test.
func (e *SecureEtcd) EtcdctlErr(kp KeyPair, user string, args ...string) (string, error) {
	flags := []string{"--endpoints", e.Endpoint, "--cacert", e.CA.CertFile, "--cert", kp.Cert, "--key", kp.Key}
	if user != "" {
		flags = append(flags, "--user", user, "--password", e.password(user))
	}
	cmd := exec.Command("etcdctl", append(flags, args...)...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *SecureEtcd) password(user string) string {
	switch user {
	case "root":
		return e.RootPassword
	case AnnouncerUser:
		return e.AnnouncerPassword
	case UpstreamsUser:
		return e.UpstreamsPassword
	}
	return ""
}

// Client returns a Go client on e presenting kp, as user with password when user is set
// (the certificate's CommonName otherwise); it is closed when the test ends. It fails
// the test when the client cannot be made (a wrong password fails here).
func (e *SecureEtcd) Client(t testing.TB, kp KeyPair, user, password string) *clientv3.Client {
	t.Helper()
	c, err := e.NewClient(kp, user, password)
	if err != nil {
		t.Fatalf("cannot create an etcd client for %s as %q (%s): %v", e.Endpoint, user, kp.Cert, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// NewClient is Client returning the error; the caller closes the client.
func (e *SecureEtcd) NewClient(kp KeyPair, user, password string) (*clientv3.Client, error) {
	pool := x509.NewCertPool()
	b, err := os.ReadFile(e.CA.CertFile)
	if err != nil {
		return nil, err
	}
	pool.AppendCertsFromPEM(b)
	cert, err := tls.LoadX509KeyPair(kp.Cert, kp.Key)
	if err != nil {
		return nil, err
	}
	return clientv3.New(clientv3.Config{
		Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		TLS:      &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Username: user, Password: password,
	})
}

func randHex(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

// SyncBuffer is a bytes.Buffer safe for a process's or goroutine's output and a test reading it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
