package announcercmd

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestExecute_Usage(t *testing.T) {
	ok := []string{"--name", "influxdb", "--port", "8086", "--instance", "n1"}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // in stderr
	}{
		{name: "no name", args: []string{"--port", "80"}, want: "--name is required"},
		{name: "no port", args: []string{"--name", "web"}, want: "--port is required"},
		{name: "unknown flag", args: append(ok, "--password", "x"), want: "unknown flag: --password"},
		{name: "bad int", args: []string{"--name", "web", "--port", "http"}, want: `"http"`},
		{name: "positional", args: append(ok, "extra"), want: `"extra"`},
		{name: "port range", args: []string{"--name", "web", "--port", "0"}, want: "port 0"},
		{name: "announce-as", args: append(ok, "--announce-as", "lan"), want: `"lan"`},
		{name: "announce-as ipv6 typo", args: append(ok, "--announce-as", "public4"), want: `"public4": use public, private, container, public6, private6 or container6`},
		{name: "ttl", args: append(ok, "--ttl", "1"), want: "ttl 1"},
		{name: "dns-ttl negative", args: append(ok, "--dns-ttl", "-5"), want: "dns-ttl -5"},
		{name: "watch false with container", args: append(ok, "--announce-as", "container", "--watch-container=false"), want: "--watch-container"},
		{name: "endpoint flag", args: append(ok, "--etcd-endpoints", "http://a:1,b:2"), want: `"b:2"`},
		{name: "endpoint env", args: ok, env: map[string]string{EnvEndpoints: "http://a:1, etcd:2379"}, want: `"etcd:2379"`},
		{name: "user env without password", args: ok, env: map[string]string{EnvUser: "svc"}, want: `user "svc" has no password`},
		{name: "password file missing", args: append(ok, "--user", "svc", "--password-file", "/nonexistent/pw"), want: "/nonexistent/pw"},
		{name: "log level", args: append(ok, "--log-level", "loud"), want: `"loud"`},
		{name: "state dir", args: append(ok, "--state-dir", "/etc/sv/x\n"), want: "state-dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{EnvEndpoints, EnvUser, EnvPassword} {
				t.Setenv(k, tt.env[k])
			}
			var stdout, stderr bytes.Buffer
			code := Execute(context.Background(), tt.args, &stdout, &stderr)
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, ExitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("stderr %q does not contain %q", stderr.String(), tt.want)
			}
		})
	}
}

func TestExecute_Help(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Execute(context.Background(), []string{"--help"}, &stdout, &stderr); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"private = the first private-range", "public = the first global IPv4", "container = the container's IP",
		"public6 = the first global IPv6", "private6 = the first unique local (fd00::/8)",
		"--watch-container", "--password-file", EnvPassword, "--state-dir", "DIR/maintenance", "DIR/drain", "SIGUSR1",
		"another live lease"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}
