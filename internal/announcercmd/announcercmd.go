// Package announcercmd is the announcer's command line: flags and environment to an
// announce.Config, exit codes (0 done, 1 failed, 2 bad usage). The rendered runit
// service calls exactly these flags, so they are a contract.
package announcercmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rundock/rundock/internal/announce"
	"github.com/rundock/rundock/internal/defaults"
	"github.com/rundock/rundock/internal/etcdclient"
	"github.com/rundock/rundock/internal/hostaddr"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// Environment variables read when the matching flag is not given (see etcdclient.Flags).
const (
	EnvEndpoints = etcdclient.EnvEndpoints
	EnvUser      = etcdclient.EnvUser
	EnvPassword  = etcdclient.EnvPassword
)

// usageError marks errors the user fixes by changing the command line (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

const long = `announcer keeps one service instance in SkyDNS (etcd v3, served as DNS by CoreDNS's
etcd plugin) while its Docker container runs and is healthy.

It writes PREFIX/<reversed DOMAIN>/NAME/INSTANCE, e.g. /skydns/com/example/prod/s/influxdb/node-1,
= {"host":ADDR,"port":PORT,"ttl":DNS_TTL,...} under an etcd lease of --ttl seconds kept alive
while the announcer runs. It follows --container through the Docker events API and deletes
the record at once when the container stops, dies, is paused or turns unhealthy; it puts it
back on start or healthy. TERM/INT delete the record and revoke the lease; if the announcer
is killed, the record expires with the lease within --ttl seconds.

With --state-dir DIR the record is withheld (withdrawn, not put back) while DIR/maintenance
exists (its first line is the reason, logged), or while DIR/drain holds the ID of the
followed container (another container ID is announced as usual). SIGUSR1 (sv 1) re-reads
both files at once; they are also re-read on every container state change and checked
every second. DIR may not exist yet.

With --host6 or --announce-as6 the instance is dual-stack: NAME/INSTANCE/ipv4 and
NAME/INSTANCE/ipv6 in place of NAME/INSTANCE, so INSTANCE.NAME.DOMAIN answers A and AAAA.

--named-port metrics=9100 also announces that port at _metrics._tcp.NAME.DOMAIN (SRV, key
NAME/_tcp/_metrics/INSTANCE); --image and --tag put the instance's TXT record (key
NAME/_txt/INSTANCE, text "instance=INSTANCE image=REF tags=a,b"). They go and come with the
main record, under the same lease, in one transaction.

The record heals: when someone else deletes or overwrites it, the announcer puts it back
within milliseconds, unless it is withheld on purpose. It writes and deletes only its own
record: a key held by another live lease (another announcer with the same key) is left
alone, logged as an error, and retried with backoff until that lease lets it go.

` + hostaddr.Rule + `
` + hostaddr.Rule6 + `
container = the container's IP (on --network, or its first network); container6 its global
IPv6 address there (a Docker network created with --ipv6).
--host overrides all of these.

Environment: ` + EnvEndpoints + ` (comma-separated, when --etcd-endpoints is not given),
` + EnvUser + `, ` + EnvPassword + ` (or --password-file; never a password flag), DOCKER_HOST.`

// New returns the announcer command; logs go to stderr. Each receive on reload makes
// the announcer re-read its state files at once (cmd/announcer sends on SIGUSR1); nil
// is fine.
func New(stderr io.Writer, reload <-chan struct{}) *cobra.Command {
	var (
		cfg      = announce.Config{Reload: reload}
		watch    bool
		etcd     = etcdclient.Flags{Env: true}
		logLevel string
		named    []string
	)
	cmd := &cobra.Command{
		Use:           "announcer --name NAME --port PORT [flags]",
		Short:         "Keep a container's host:port in SkyDNS through an etcd lease while it is up",
		Long:          long,
		Args:          noArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ports, err := namedPorts(named)
			if err != nil {
				return err
			}
			cfg.NamedPorts = ports
			a, err := build(cmd, cfg, watch, &etcd, logLevel, stderr)
			if err != nil {
				return err
			}
			return a.Run(cmd.Context())
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := cmd.Flags()
	f.SortFlags = false
	f.StringVar(&cfg.Name, "name", "", "service name, the first label of NAME.DOMAIN (required)")
	f.IntVar(&cfg.Port, "port", 0, "announced port, served in SRV answers (required)")
	f.StringVar(&cfg.PublishedPort, "published-port", "", "container port (PORT[/tcp|udp]): announce the host port the container publishes for it instead of --port (rundock's update start-first)")
	f.StringVar(&cfg.Domain, "domain", announce.DefaultDomain, "DNS domain the service lives in")
	f.StringVar(&cfg.Prefix, "prefix", defaults.Prefix, "etcd path CoreDNS's etcd plugin reads (one segment)")
	f.StringVar(&cfg.Instance, "instance", "", "last label of the key and of the SRV target (default: short host name, lowercased)")
	f.StringVar(&cfg.AnnounceAs, "announce-as", announce.DefaultAnnounceAs, "address to announce: public, private or container; public6, private6 or container6 for IPv6 (see the rules above)")
	f.StringVar(&cfg.Host, "host", "", "explicit address (IP or host name); overrides --announce-as")
	f.StringVar(&cfg.AnnounceAs6, "announce-as6", "", "dual stack: also announce this IPv6 address, public6 or private6 (keys INSTANCE/ipv4 and INSTANCE/ipv6)")
	f.StringVar(&cfg.Host6, "host6", "", "dual stack: explicit IPv6 address announced beside the IPv4 one; overrides --announce-as6")
	f.StringVar(&cfg.PublicInterface, "public-interface", "", "interface whose address is public (default: the IPv4 default route's; the IPv6 one's for public6)")
	f.StringVar(&cfg.PrivateInterface, "private-interface", "", "interface whose address is private (default: see the rule above)")
	f.StringVar(&cfg.Container, "container", "", "Docker container to follow (default: --name)")
	f.StringVar(&cfg.Network, "network", "", "Docker network whose container IP --announce-as container uses (default: the first)")
	f.BoolVar(&watch, "watch-container", true, "announce only while the container runs and is healthy; false announces unconditionally")
	f.Int64Var(&cfg.TTL, "ttl", announce.DefaultTTL, fmt.Sprintf("etcd lease seconds, at least %d: how long a record outlives a killed announcer", announce.MinTTL))
	f.Int64Var(&cfg.DNSTTL, "dns-ttl", 0, "the record's ttl field, the DNS answer TTL (0 or unset: --ttl)")
	f.IntVar(&cfg.Priority, "priority", 0, "SRV priority (0: CoreDNS answers 10)")
	f.IntVar(&cfg.Weight, "weight", 0, "SRV weight")
	f.StringArrayVar(&named, "named-port", nil, "NAME=PORT: also announce host port PORT as _NAME._tcp.NAME.DOMAIN (repeatable), e.g. --named-port metrics=9100")
	f.StringVar(&cfg.Meta.Image, "image", "", "image reference for the instance's TXT record (image=REF)")
	f.StringSliceVar(&cfg.Meta.Tags, "tag", nil, "tag for the instance's TXT record (repeatable or comma-separated), e.g. --tag canary")
	f.StringVar(&cfg.StateDir, "state-dir", "", "service state directory: withhold the record while DIR/maintenance exists or DIR/drain names the container's ID (needs --watch-container for drain)")
	etcd.Register(f)
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// namedPorts parses the --named-port values.
func namedPorts(vals []string) ([]announce.NamedPort, error) {
	var out []announce.NamedPort
	for _, v := range vals {
		name, port, ok := strings.Cut(v, "=")
		n, err := strconv.Atoi(port)
		if !ok || err != nil {
			return nil, usageError{fmt.Errorf("--named-port %q: use NAME=PORT, e.g. --named-port metrics=9100", v)}
		}
		out = append(out, announce.NamedPort{Name: name, Port: n})
	}
	return out, nil
}

func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q: the announcer takes flags only, e.g. --name %s", args[0], args[0])}
	}
	return nil
}

// build completes cfg from the environment and files and checks it.
func build(cmd *cobra.Command, cfg announce.Config, watch bool, etcd *etcdclient.Flags, logLevel string, stderr io.Writer) (*announce.Announcer, error) {
	f := cmd.Flags()
	for _, req := range []string{"name", "port"} {
		if !f.Changed(req) {
			return nil, usageError{fmt.Errorf("--%s is required (see --help)", req)}
		}
	}
	cfg.IgnoreContainer = !watch
	e, err := etcd.Config()
	if err != nil {
		return nil, usageError{err}
	}
	cfg.Etcd = e
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: use debug, info, warn or error", logLevel)}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	a, err := announce.New(cfg)
	if err != nil {
		return nil, usageError{err}
	}
	return a, nil
}

// Execute runs the announcer with args until ctx is done and returns the exit code; it
// prints errors to stderr.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return ExecuteReload(ctx, args, stdout, stderr, nil)
}

// ExecuteReload is Execute with a reload channel: each receive makes the announcer
// re-read its state files at once (see New).
func ExecuteReload(ctx context.Context, args []string, stdout, stderr io.Writer, reload <-chan struct{}) int {
	cmd := New(stderr, reload)
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, "announcer:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitError
}
