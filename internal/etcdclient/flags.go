package etcdclient

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rundock/rundock/internal/defaults"
)

// Environment variables Flags reads, with Env set, when the matching flag is not given.
const (
	EnvEndpoints = "ANNOUNCER_ETCD_ENDPOINTS"
	EnvUser      = "ANNOUNCER_ETCD_USER"
	EnvPassword  = "ANNOUNCER_ETCD_PASSWORD"
)

// Flags are the etcd connection flags: --etcd-endpoints, --cacert, --cert, --key, --user and
// --password-file. There is no password flag. The announcer's run scripts call these flags,
// so their names are a contract.
type Flags struct {
	// Env makes flags that are not given fall back to $ANNOUNCER_ETCD_ENDPOINTS,
	// $ANNOUNCER_ETCD_USER and $ANNOUNCER_ETCD_PASSWORD. The announcer sets it; rundock
	// upstreams reads its flags only.
	Env bool

	endpoints          endpointsValue
	cacert, cert, key  string
	user, passwordFile string
}

// Register adds the flags to fs.
func (f *Flags) Register(fs *pflag.FlagSet) {
	env := func(name string) string {
		if f.Env {
			return "$" + name
		}
		return ""
	}
	or := func(a, b string) string {
		if a == "" {
			return b
		}
		if b == "" {
			return a
		}
		return a + " or " + b
	}
	suffix := func(s string) string {
		if s == "" {
			return ""
		}
		return " (default: " + s + ")"
	}
	fs.Var(&f.endpoints, "etcd-endpoints", "etcd endpoints, comma-separated and repeatable"+suffix(or(env(EnvEndpoints), defaults.EtcdEndpoint)))
	fs.StringVar(&f.cacert, "cacert", "", "CA bundle that signed etcd's server certificate")
	fs.StringVar(&f.cert, "cert", "", "client certificate for etcd (with --key)")
	fs.StringVar(&f.key, "key", "", "client key for etcd (with --cert)")
	fs.StringVar(&f.user, "user", "", "etcd user"+suffix(env(EnvUser)))
	fs.StringVar(&f.passwordFile, "password-file", "", "file holding the etcd password"+suffix(env(EnvPassword)))
}

// Config returns the settings from the flags, the environment (with Env) and the password
// file, defaults filled in and checked. An empty --etcd-endpoints means the default, as
// when it is not given.
func (f *Flags) Config() (Config, error) {
	c := Config{Endpoints: f.endpoints.list, CACert: f.cacert, Cert: f.cert, Key: f.key, User: f.user}
	if f.Env && !f.endpoints.set {
		c.Endpoints = splitList(os.Getenv(EnvEndpoints))
	}
	if f.Env && c.User == "" {
		c.User = os.Getenv(EnvUser)
	}
	pw, err := password(f.passwordFile, f.Env)
	if err != nil {
		return Config{}, err
	}
	c.Password = pw
	c.SetDefaults()
	if c.User != "" && c.Password == "" && f.Env {
		return Config{}, fmt.Errorf("etcd user %q has no password: pass --password-file or set %s", c.User, EnvPassword)
	}
	if err := c.Check(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// password reads the etcd password from file (trailing newline cut) or, with no file and
// env, from $ANNOUNCER_ETCD_PASSWORD.
func password(file string, env bool) (string, error) {
	if file == "" {
		if env {
			return os.Getenv(EnvPassword), nil
		}
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("cannot read --password-file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// splitList splits a comma-separated list, trimming spaces and dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// endpointsValue is --etcd-endpoints: comma-separated and repeatable; String gives the
// comma-separated list back, so the flag can be passed on (rundock upstreams
// --install-service does).
type endpointsValue struct {
	list []string
	set  bool
}

func (v *endpointsValue) Set(s string) error {
	v.list = append(v.list, splitList(s)...)
	v.set = true
	return nil
}

func (v *endpointsValue) String() string { return strings.Join(v.list, ",") }

func (v *endpointsValue) Type() string { return "strings" }
