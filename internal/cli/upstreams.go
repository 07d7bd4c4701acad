package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/upstreams"
)

// upstreamsOptions are the flags of `rundock upstreams`.
type upstreamsOptions struct {
	endpoints, cacert, cert, key, user, passwordFile string
	prefix, domain, upstreamName, config, template   string
	output, checkCmd, reloadCmd                      string
	once, watch, dryRun, installService              bool
	quiet, maxDelay                                  time.Duration
	svDir, logDir                                    string
}

// newUpstreamsCmd builds `rundock upstreams`: nginx upstream blocks rendered from the
// SkyDNS records in etcd.
func newUpstreamsCmd() *cobra.Command {
	o := &upstreamsOptions{}
	cmd := &cobra.Command{
		Use:   "upstreams (--once | --watch | --dry-run | --install-service) [flags]",
		Short: "Render nginx upstreams from the SkyDNS records in etcd",
		Long: `Render one nginx upstream block per service from the SkyDNS records the announcers keep
in etcd: one "server HOST:PORT [weight=W]" per instance, port and weight from the record.

Every new file is staged next to --output, checked with the whole nginx configuration
(--check-cmd) and only then kept and nginx reloaded (--reload-cmd); when the check fails,
the previous file is put back and nginx keeps running it. A service with no live instance
renders "server 127.0.0.1:1 down;", which nginx accepts and answers with an immediate 502.`,
		Example: `  rundock upstreams --once --output /etc/nginx/conf.d/rundock-upstreams.conf
  rundock upstreams --watch --config /etc/rundock/upstreams.yml
  rundock upstreams --dry-run
  rundock upstreams --install-service --watch --config /etc/rundock/upstreams.yml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUpstreams(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.endpoints, "etcd-endpoints", "http://127.0.0.1:2379", "etcd endpoints, comma-separated")
	f.StringVar(&o.cacert, "cacert", "", "CA bundle to verify etcd's TLS certificate")
	f.StringVar(&o.cert, "cert", "", "client TLS certificate for etcd")
	f.StringVar(&o.key, "key", "", "client TLS key for etcd")
	f.StringVar(&o.user, "user", "", "etcd user name (password from --password-file)")
	f.StringVar(&o.passwordFile, "password-file", "", "file holding the etcd password")
	f.StringVar(&o.prefix, "prefix", skydns.DefaultPrefix, "etcd prefix of the SkyDNS records (CoreDNS etcd path)")
	f.StringVar(&o.domain, "domain", "s.prod.example.com", "DNS domain the services are announced under")
	f.StringVar(&o.upstreamName, "upstream-name", upstreams.DefaultUpstreamName, "Go template of each upstream's name; .Name is the service (overrides upstream_name in --config)")
	f.StringVar(&o.config, "config", "", "YAML file: which services, and keepalive/max_fails/fail_timeout/balance/extra per upstream")
	f.StringVar(&o.template, "template", "", "Go template file replacing the built-in one")
	f.StringVar(&o.output, "output", "/etc/nginx/conf.d/rundock-upstreams.conf", "file the nginx configuration includes")
	f.StringVar(&o.checkCmd, "check-cmd", upstreams.DefaultCheckCmd, "sh command that validates the whole nginx configuration")
	f.StringVar(&o.reloadCmd, "reload-cmd", upstreams.DefaultReloadCmd, "sh command that makes nginx read the new file")
	f.BoolVar(&o.once, "once", false, "render, install if changed, and exit")
	f.BoolVar(&o.watch, "watch", false, "follow etcd and re-render after each burst of changes")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the unified diff against --output and exit")
	f.DurationVar(&o.quiet, "debounce", upstreams.DefaultQuiet, "--watch: render after this much quiet")
	f.DurationVar(&o.maxDelay, "max-delay", upstreams.DefaultMaxDelay, "--watch: render at the latest this long after a burst began")
	f.BoolVar(&o.installService, "install-service", false, "write the runit service "+upstreams.ServiceName+" under --sv-dir running this command with --watch, and exit")
	f.StringVar(&o.svDir, "sv-dir", "/etc/sv", "--install-service: directory of runit service definitions")
	f.StringVar(&o.logDir, "log-dir", "/var/log/"+upstreams.ServiceName, "--install-service: svlogd directory")
	return cmd
}

func runUpstreams(cmd *cobra.Command, o *upstreamsOptions) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	modes := 0
	for _, b := range []bool{o.once, o.dryRun, o.installService && !o.watch, o.watch && !o.installService} {
		if b {
			modes++
		}
	}
	if o.installService && o.watch {
		modes++
	}
	if modes != 1 {
		return errors.New("rundock upstreams: choose one of --once, --watch, --dry-run or --install-service")
	}
	if o.installService {
		return upstreamsInstallService(cmd, o)
	}
	cfg, err := upstreams.LoadConfig(o.config)
	if err != nil {
		return err
	}
	if cmd.Flags().Changed("upstream-name") || cfg.UpstreamName == "" {
		cfg.UpstreamName = o.upstreamName
	}
	tmplName, tmplText := "built-in", upstreams.DefaultTemplate
	if o.template != "" {
		b, err := os.ReadFile(o.template)
		if err != nil {
			return fmt.Errorf("cannot read --template %s: %w", o.template, err)
		}
		tmplName, tmplText = o.template, string(b)
	}
	tmpl, err := upstreams.NewTemplate(tmplName, tmplText)
	if err != nil {
		return err
	}
	if o.quiet <= 0 || o.maxDelay < o.quiet {
		return fmt.Errorf("--debounce %s and --max-delay %s: use a positive --debounce no longer than --max-delay", o.quiet, o.maxDelay)
	}
	client, err := upstreamsEtcdClient(o)
	if err != nil {
		return err
	}
	defer client.Close()
	n := &upstreams.Nginx{Output: o.output, CheckCmd: o.checkCmd, ReloadCmd: o.reloadCmd}
	r := upstreams.NewRenderer(client, o.domain, cfg, tmpl, n)
	r.Prefix, r.Quiet, r.MaxDelay = o.prefix, o.quiet, o.maxDelay
	r.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	switch {
	case o.dryRun:
		out, err := r.Output(ctx)
		if err != nil {
			return err
		}
		cur, err := n.Current()
		if err != nil {
			return err
		}
		if d := upstreams.Diff(o.output, o.output+" (rendered)", cur, out); d != "" {
			fmt.Fprint(cmd.OutOrStdout(), d)
		} else {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s is up to date\n", o.output)
		}
		return nil
	case o.once:
		changed, err := r.Once(ctx)
		if err != nil {
			return err
		}
		r.Log.Info("upstreams rendered", "output", o.output, "changed", changed)
		return nil
	default:
		r.Log.Info("watching records", "endpoints", o.endpoints, "prefix", o.prefix, "domain", o.domain, "output", o.output)
		return r.Run(ctx)
	}
}

func upstreamsEtcdClient(o *upstreamsOptions) (*clientv3.Client, error) {
	cfg := clientv3.Config{DialTimeout: 5 * time.Second, DialKeepAliveTime: 10 * time.Second, DialKeepAliveTimeout: 5 * time.Second}
	for _, e := range strings.Split(o.endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			cfg.Endpoints = append(cfg.Endpoints, e)
		}
	}
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("--etcd-endpoints %q: give at least one, e.g. http://127.0.0.1:2379", o.endpoints)
	}
	if o.cacert != "" || o.cert != "" || o.key != "" {
		if (o.cert == "") != (o.key == "") {
			return nil, fmt.Errorf("--cert %q and --key %q: give both or neither", o.cert, o.key)
		}
		tlsCfg, err := transport.TLSInfo{TrustedCAFile: o.cacert, CertFile: o.cert, KeyFile: o.key}.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("cannot load etcd TLS files (--cacert %q --cert %q --key %q): %w", o.cacert, o.cert, o.key, err)
		}
		cfg.TLS = tlsCfg
	}
	if o.user != "" {
		if o.passwordFile == "" {
			return nil, fmt.Errorf("--user %q needs --password-file", o.user)
		}
		b, err := os.ReadFile(o.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read --password-file %s: %w", o.passwordFile, err)
		}
		cfg.Username, cfg.Password = o.user, strings.TrimRight(string(b), "\r\n")
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot create an etcd client for %s: %w", o.endpoints, err)
	}
	return c, nil
}

// upstreamsInstallService writes /etc/sv/rundock-upstreams running this binary with
// --watch and every flag the user set, file paths made absolute (runsv runs in the
// service directory).
func upstreamsInstallService(cmd *cobra.Command, o *upstreamsOptions) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the rundock binary: %w", err)
	}
	argv := []string{exe, "upstreams", "--watch"}
	skip := map[string]bool{"install-service": true, "watch": true, "once": true, "dry-run": true, "sv-dir": true, "log-dir": true}
	paths := map[string]bool{"cacert": true, "cert": true, "key": true, "password-file": true, "config": true, "template": true, "output": true}
	var ferr error
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if skip[fl.Name] {
			return
		}
		v := fl.Value.String()
		if paths[fl.Name] && v != "" {
			abs, err := filepath.Abs(v)
			if err != nil {
				ferr = fmt.Errorf("cannot make --%s %s absolute: %w", fl.Name, v, err)
			}
			v = abs
		}
		argv = append(argv, "--"+fl.Name+"="+v)
	})
	if ferr != nil {
		return ferr
	}
	dir := filepath.Join(o.svDir, upstreams.ServiceName)
	changed, err := upstreams.InstallService(dir, upstreams.ServiceFiles(argv, o.logDir))
	if err != nil {
		return err
	}
	slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).Info("runit service written", "dir", dir, "changed", changed, "enable", "ln -s "+dir+" /etc/service/")
	return nil
}
