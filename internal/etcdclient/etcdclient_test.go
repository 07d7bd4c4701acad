package etcdclient

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/rundock/rundock/internal/defaults"
	"github.com/rundock/rundock/internal/testenv"
)

func TestFlags_Config(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     bool // Flags.Env
		args    []string
		environ map[string]string
		want    Config
		wantErr string // substring; "" for none
	}{
		{name: "defaults", want: Config{Endpoints: []string{defaults.EtcdEndpoint}}},
		{name: "comma-separated", args: []string{"--etcd-endpoints", "http://a:1, http://b:2"}, want: Config{Endpoints: []string{"http://a:1", "http://b:2"}}},
		{name: "repeated", args: []string{"--etcd-endpoints", "http://a:1", "--etcd-endpoints=http://b:2"}, want: Config{Endpoints: []string{"http://a:1", "http://b:2"}}},
		{name: "empty means the default", args: []string{"--etcd-endpoints", ""}, want: Config{Endpoints: []string{defaults.EtcdEndpoint}}},
		{name: "env endpoints", env: true, environ: map[string]string{EnvEndpoints: "http://e:1, http://e:2"}, want: Config{Endpoints: []string{"http://e:1", "http://e:2"}}},
		{name: "flag over env", env: true, args: []string{"--etcd-endpoints", "http://f:1"}, environ: map[string]string{EnvEndpoints: "http://e:1"}, want: Config{Endpoints: []string{"http://f:1"}}},
		{name: "env ignored without Env", environ: map[string]string{EnvEndpoints: "http://e:1", EnvUser: "u", EnvPassword: "p"}, want: Config{Endpoints: []string{defaults.EtcdEndpoint}}},
		{name: "env user and password", env: true, environ: map[string]string{EnvEndpoints: "https://e:1", EnvUser: "u", EnvPassword: "p"}, want: Config{Endpoints: []string{"https://e:1"}, User: "u", Password: "p"}},
		{name: "password file over env", env: true, args: []string{"--etcd-endpoints", "https://e:1", "--user", "u", "--password-file", pwFile}, environ: map[string]string{EnvPassword: "p"}, want: Config{Endpoints: []string{"https://e:1"}, User: "u", Password: "s3cret"}},
		{name: "tls", args: []string{"--etcd-endpoints", "https://e:1", "--cacert", "/ca", "--cert", "/c", "--key", "/k"}, want: Config{Endpoints: []string{"https://e:1"}, CACert: "/ca", Cert: "/c", Key: "/k"}},
		{name: "ErrTLSOverHTTP", args: []string{"--etcd-endpoints", "https://a:1,http://b:2", "--cacert", "/ca"}, wantErr: `etcd endpoint "http://b:2" is plain http, but --cacert is set: the client would talk to it without TLS and send credentials in clear text: write it as "https://b:2"`},
		{name: "ErrCertOverHTTP", args: []string{"--etcd-endpoints", "http://b:2", "--cert", "/c", "--key", "/k"}, wantErr: `"http://b:2" is plain http, but --cert and --key are set`},
		{name: "ErrUserOverHTTP", args: []string{"--user", "u", "--password-file", pwFile}, wantErr: `etcd endpoint "` + defaults.EtcdEndpoint + `" is plain http, but --user is set`},
		{name: "ErrEnvUserOverHTTP", env: true, environ: map[string]string{EnvEndpoints: "http://e:1", EnvUser: "u", EnvPassword: "p"}, wantErr: `"http://e:1" is plain http, but --user is set`},
		{name: "ErrCertWithoutKey", args: []string{"--cert", "/c"}, wantErr: `--cert "/c" and --key "" go together`},
		{name: "ErrNoScheme", args: []string{"--etcd-endpoints", "http://a:1,b:2"}, wantErr: `"b:2"`},
		{name: "ErrUserWithoutPassword", args: []string{"--user", "u"}, wantErr: `etcd user "u" has no password: pass --password-file`},
		{name: "ErrUserWithoutPasswordEnv", env: true, environ: map[string]string{EnvUser: "svc"}, wantErr: `user "svc" has no password: pass --password-file or set ` + EnvPassword},
		{name: "ErrPasswordFileMissing", args: []string{"--user", "u", "--password-file", "/nonexistent/pw"}, wantErr: "/nonexistent/pw"},
		{name: "ErrPasswordFlag", args: []string{"--password", "x"}, wantErr: "unknown flag: --password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{EnvEndpoints, EnvUser, EnvPassword} {
				t.Setenv(k, tt.environ[k])
			}
			f := &Flags{Env: tt.env}
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			f.Register(fs)
			err := fs.Parse(tt.args)
			var got Config
			if err == nil {
				got, err = f.Config()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			case tt.wantErr == "" && !reflect.DeepEqual(got, tt.want):
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestFlags_PassOn checks that --etcd-endpoints reads back as it can be passed on, as
// rundock upstreams --install-service does with every flag it was given.
func TestFlags_PassOn(t *testing.T) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	(&Flags{}).Register(fs)
	if err := fs.Parse([]string{"--etcd-endpoints", "http://a:1,http://b:2", "--etcd-endpoints", "http://c:3"}); err != nil {
		t.Fatal(err)
	}
	if got, want := fs.Lookup("etcd-endpoints").Value.String(), "http://a:1,http://b:2,http://c:3"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

func TestFlags_HelpNamesEnv(t *testing.T) {
	for _, env := range []bool{true, false} {
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		(&Flags{Env: env}).Register(fs)
		usage := fs.FlagUsages()
		if strings.Contains(usage, EnvPassword) != env || !strings.Contains(usage, defaults.EtcdEndpoint) {
			t.Errorf("Env %v: usage\n%s", env, usage)
		}
		if fs.Lookup("password") != nil {
			t.Errorf("Env %v: a --password flag exists", env)
		}
	}
}

func TestNew(t *testing.T) {
	e := testenv.StartEtcd(t)
	c, err := New(Config{Endpoints: []string{e.Endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, "/etcdclient/test", "v", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Endpoints: []string{"127.0.0.1:2379"}}); err == nil {
		t.Fatal("New accepted an endpoint without a scheme")
	}
	if _, err := New(Config{Endpoints: []string{"https://127.0.0.1:2379"}, CACert: "/nonexistent/ca.pem", Cert: "/nonexistent/c.pem", Key: "/nonexistent/k.pem"}); err == nil || !strings.Contains(err.Error(), "cannot load etcd TLS files") {
		t.Fatalf("New with missing TLS files: %v", err)
	}
}
