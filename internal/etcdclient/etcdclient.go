// Package etcdclient is how rundock reaches etcd: the connection settings the announcer and
// rundock upstreams share (endpoints, TLS, user and password), their flags and environment
// fallbacks, and one client built with the dial, keepalive and reconnect settings the
// announcer's lease loop was tuned against (etcd restarts, members cut off). The client
// is package etcd's, without gRPC.
package etcdclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rundock/rundock/internal/backoff"
	"github.com/rundock/rundock/internal/defaults"
	"github.com/rundock/rundock/internal/etcd"
)

// Dial's retries of a client that could not be made. The client's own dial, ping and
// retry settings are package etcd's defaults, chosen so that a lease of defaults.MinTTL
// seconds survives the failover to another member.
const (
	retryMin = 500 * time.Millisecond
	retryMax = 5 * time.Second
)

// Config says how to reach etcd. Password never comes from a flag (flags show in ps and in
// runit's run scripts): Flags reads it from a file or the environment.
type Config struct {
	Endpoints         []string // default defaults.EtcdEndpoint
	CACert, Cert, Key string   // TLS: CA bundle, client certificate and key
	User, Password    string
}

// SetDefaults fills in the endpoint when none is given.
func (c *Config) SetDefaults() {
	if len(c.Endpoints) == 0 {
		c.Endpoints = []string{defaults.EtcdEndpoint}
	}
}

// Check returns an error naming the first setting that cannot work, TLS files or a user
// with a plain http:// endpoint among them: the client would drop TLS for it and send the
// password in clear text.
func (c Config) Check() error {
	if (c.Cert == "") != (c.Key == "") {
		return fmt.Errorf("--cert %q and --key %q go together: pass both or neither", c.Cert, c.Key)
	}
	if c.User != "" && c.Password == "" {
		return fmt.Errorf("etcd user %q has no password: pass --password-file", c.User)
	}
	for _, e := range c.Endpoints {
		if !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") {
			return fmt.Errorf("etcd endpoint %q: write it as http://HOST:PORT or https://HOST:PORT", e)
		}
	}
	if secure := c.secureSettings(); secure != "" {
		for _, e := range c.Endpoints {
			if strings.HasPrefix(e, "http://") {
				return fmt.Errorf("etcd endpoint %q is plain http, but %s: the client would talk to it without TLS and send credentials in clear text: write it as %q", e, secure, "https://"+strings.TrimPrefix(e, "http://"))
			}
		}
	}
	return nil
}

// secureSettings says which TLS and auth settings of c need https endpoints ("--cert and
// --key are set"), "" when there are none.
func (c Config) secureSettings() string {
	var set []string
	for _, s := range []struct{ name, value string }{{"--cacert", c.CACert}, {"--cert", c.Cert}, {"--key", c.Key}, {"--user", c.User}} {
		if s.value != "" {
			set = append(set, s.name)
		}
	}
	switch len(set) {
	case 0:
		return ""
	case 1:
		return set[0] + " is set"
	}
	return strings.Join(set[:len(set)-1], ", ") + " and " + set[len(set)-1] + " are set"
}

// New checks c and returns a client for it (with the default endpoint when c has none).
// The client does not log: its callers log once, at the top. Its unary calls fail with an
// *Error, one line naming the endpoints, the cause and the fix, when the cause is one
// the operator must fix: a refused password, a missing permission, a certificate
// either side does not trust, an unreachable endpoint. With a user and password, New
// authenticates at once, so a wrong password or an etcd that cannot be reached fails
// here (see Dial for a caller that must keep trying).
func New(c Config) (*etcd.Client, error) {
	c, ec, ex, err := c.clientConfig()
	if err != nil {
		return nil, err
	}
	return dial(c, ec, ex)
}

// clientConfig completes c with its defaults, checks it and returns the client
// configuration for it, its TLS files loaded, and the explainer of its failures.
func (c Config) clientConfig() (Config, etcd.Config, *explainer, error) {
	c.SetDefaults()
	if err := c.Check(); err != nil {
		return c, etcd.Config{}, nil, err
	}
	ec := etcd.Config{Endpoints: c.Endpoints, User: c.User, Password: c.Password}
	ex := newExplainer(c)
	ec.Explain = ex.explain
	if c.CACert != "" || c.Cert != "" {
		tlsCfg, err := loadTLS(c.CACert, c.Cert, c.Key)
		if err != nil {
			return c, etcd.Config{}, nil, fmt.Errorf("cannot load etcd TLS files (--cacert %q, --cert %q, --key %q): %w", c.CACert, c.Cert, c.Key, err)
		}
		ec.TLS = tlsCfg
	}
	return c, ec, ex, nil
}

// loadTLS returns the TLS settings that trust the CAs in caFile (the system's when "")
// and present the client certificate in certFile and keyFile (none when "").
func loadTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("no PEM certificate in %s", caFile)
		}
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// dial makes the client of New from its checked settings; its errors may pass (a refused
// password can be fixed in etcd, an endpoint can come up).
func dial(c Config, ec etcd.Config, ex *explainer) (*etcd.Client, error) {
	cli, err := etcd.New(ec)
	if err == nil {
		ex.client.Store(cli)
	}
	if _, ok := explained(err); ok {
		return nil, err // names the endpoints already
	}
	if err != nil {
		return nil, fmt.Errorf("cannot create etcd client for %s: %w", strings.Join(c.Endpoints, ","), err)
	}
	return cli, nil
}

// Dial is New for a caller that must keep trying (the announcer, rundock upstreams
// --watch, both supervised): an error that can pass (a refused password, an endpoint that
// cannot be reached) is handed to failed, once per distinct message, and New is tried
// again after a growing delay (retryMin to retryMax) until it succeeds or ctx ends (then
// Dial returns ctx's error). Settings that cannot work (Check, unreadable TLS files) are
// returned at once: retrying cannot fix them.
func Dial(ctx context.Context, c Config, failed func(error)) (*etcd.Client, error) {
	c, ec, ex, err := c.clientConfig()
	if err != nil {
		return nil, err
	}
	bo := backoff.Backoff{Min: retryMin, Max: retryMax}
	var last string
	for {
		cli, err := dial(c, ec, ex)
		if err == nil {
			return cli, nil
		}
		if msg := err.Error(); msg != last {
			failed(err)
			last = msg
		}
		if !backoff.Sleep(ctx, bo.Next()) {
			return nil, ctx.Err()
		}
	}
}
