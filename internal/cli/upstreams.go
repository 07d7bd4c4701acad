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

	"github.com/rundock/rundock/internal/apply"
	"github.com/rundock/rundock/internal/defaults"
	"github.com/rundock/rundock/internal/etcd"
	"github.com/rundock/rundock/internal/etcdclient"
	"github.com/rundock/rundock/internal/nginx"
	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/upstreams"
)

// upstreamsOptions are the flags of `rundock upstreams`.
type upstreamsOptions struct {
	etcd                                           etcdclient.Flags // flags only: no ANNOUNCER_ETCD_* fallback
	prefix, domain, upstreamName, config, template string
	output, checkCmd, reloadCmd                    string
	once, watch, dryRun, installService            bool
	quiet, maxDelay                                time.Duration
	svDir, logDir                                  string
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
--config may list the upstreams instead, several per service: a named port's records
(port_name) or the instances with given tags (tags, e.g. a canary).

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
	o.etcd.Register(f)
	f.StringVar(&o.prefix, "prefix", defaults.Prefix, "etcd prefix of the SkyDNS records (CoreDNS etcd path)")
	f.StringVar(&o.domain, "domain", defaults.Domain, "DNS domain the services are announced under")
	f.StringVar(&o.upstreamName, "upstream-name", upstreams.DefaultUpstreamName, "Go template of each upstream's name; .Name is its key under services in --config (the service when none are listed), .Service the service (overrides upstream_name in --config)")
	f.StringVar(&o.config, "config", "", "YAML file: which upstreams (service, port_name, tags), and keepalive/max_fails/fail_timeout/balance/extra per upstream")
	f.StringVar(&o.template, "template", "", "Go template file replacing the built-in one")
	f.StringVar(&o.output, "output", upstreams.DefaultOutput, "file the nginx configuration includes")
	f.StringVar(&o.checkCmd, "check-cmd", nginx.DefaultCheckCmd, "sh command that validates the whole nginx configuration")
	f.StringVar(&o.reloadCmd, "reload-cmd", nginx.DefaultReloadCmd, "sh command that makes nginx read the new file")
	f.BoolVar(&o.once, "once", false, "render, install if changed, and exit")
	f.BoolVar(&o.watch, "watch", false, "follow etcd and re-render after each burst of changes")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the unified diff against --output and exit")
	f.DurationVar(&o.quiet, "debounce", upstreams.DefaultQuiet, "--watch: render after this much quiet")
	f.DurationVar(&o.maxDelay, "max-delay", upstreams.DefaultMaxDelay, "--watch: render at the latest this long after a burst began")
	f.BoolVar(&o.installService, "install-service", false, "write the runit service "+render.UpstreamsService+" under --sv-dir running this command with --watch, and exit")
	f.StringVar(&o.svDir, "sv-dir", defaults.SvDir, "--install-service: directory of runit service definitions")
	f.StringVar(&o.logDir, "log-dir", filepath.Join("/var/log", render.UpstreamsService), "--install-service: svlogd directory")
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
	ecfg, err := o.etcd.Config()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	var client *etcd.Client
	if o.watch {
		// supervised: an etcd that is down or refuses the password at start is waited for
		client, err = etcdclient.Dial(ctx, ecfg, func(err error) { log.Error("cannot reach etcd, retrying", "err", err) })
		if ctx.Err() != nil {
			return nil
		}
	} else {
		client, err = etcdclient.New(ecfg)
	}
	if err != nil {
		return err
	}
	defer client.Close()
	n := &nginx.Installer{Output: o.output, CheckCmd: o.checkCmd, ReloadCmd: o.reloadCmd}
	w := upstreams.NewWatcher(client, o.domain, cfg, tmpl, n)
	w.Prefix, w.Quiet, w.MaxDelay = o.prefix, o.quiet, o.maxDelay
	w.Log = log
	switch {
	case o.dryRun:
		out, err := w.Output(ctx)
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
		changed, err := w.Once(ctx)
		if err != nil {
			return err
		}
		w.Log.Info("upstreams rendered", "output", o.output, "changed", changed)
		return nil
	default:
		w.Log.Info("watching records", "endpoints", strings.Join(ecfg.Endpoints, ","), "prefix", o.prefix, "domain", o.domain, "output", o.output)
		return w.Run(ctx)
	}
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
	t, err := render.Upstreams(argv, o.logDir)
	if err != nil {
		return err
	}
	// The same plan and execution as every service tree: atomic writes, no symlink followed,
	// a running service restarted when its files changed.
	svc := spec.Service{State: spec.StatePresent, Name: render.UpstreamsService, SvDir: o.svDir, StopTimeout: 10}
	res, err := apply.Apply(cmd.Context(), svc, t, apply.Options{NoContainer: true, Logger: logger(cmd)})
	if err != nil {
		return fmt.Errorf("cannot install the %s service: %w", render.UpstreamsService, err)
	}
	dir := filepath.Join(o.svDir, t.Dir)
	fmt.Fprintf(cmd.OutOrStdout(), "%s: %s; enable it with: ln -s %s /etc/service/\n", render.UpstreamsService, res.Msg, dir)
	return nil
}
