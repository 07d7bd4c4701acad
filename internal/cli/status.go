package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rundock/rundock/internal/apply"
	"github.com/rundock/rundock/internal/metrics"
	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/spec"
)

// shortID is an image ID as docker images shows it.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// ServiceStatus is one service in `rundock status`. Error says what could not be asked
// (Docker, a status file) when the rest of the status still stands.
type ServiceStatus struct {
	Name string `json:"name"`
	apply.Status
	Error string `json:"error,omitempty"`
}

// statusOptions are the flags of rundock status.
type statusOptions struct {
	names      []string
	svDir      string
	serviceDir string
	output     string
	textfile   string
	check      bool
	noRecord   bool
	// outputSet is true when --output was given; containers is the engine (nil: Docker).
	outputSet  bool
	containers apply.Containers
	stdout     io.Writer
	stderr     io.Writer
}

// ErrProblems is returned by status --check when a service is not as it should be.
var ErrProblems = errors.New("services have problems")

func newStatusCmd() *cobra.Command {
	var opts statusOptions
	cmd := &cobra.Command{
		Use:   "status [NAME...]",
		Short: "Show the runit, container, etcd record and deploy state of services (all installed ones by default)",
		Long: `Show, per service: the runit state of its container, log and announcer services, the
container (state, health, image, up since, crash loops), its record in etcd (read with the
key and etcd flags of the service's own announcer/run), maintenance, and the last deploy.

--check prints one line per problem and exits 1 when there is one (for monitoring and
ansible -m command). --output prometheus writes node_exporter's textfile format; with
--textfile PATH (a *.prom file in node_exporter's --collector.textfile.directory) it is
replaced atomically.`,
		Example: `  rundock status web
  rundock status --check
  rundock status --output prometheus --textfile /var/lib/prometheus/node-exporter/rundock.prom`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.names, opts.stdout, opts.stderr = args, cmd.OutOrStdout(), cmd.ErrOrStderr()
			opts.outputSet = cmd.Flags().Changed("output")
			if opts.textfile != "" && !opts.outputSet {
				opts.output = "prometheus"
			}
			return statusRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.svDir, "sv-dir", spec.DefaultSvDir, "where service trees are")
	cmd.Flags().StringVar(&opts.serviceDir, "service-dir", spec.DefaultServiceDir, "the directory runsvdir watches")
	cmd.Flags().StringVarP(&opts.output, "output", "o", "text", "text|json|prometheus")
	cmd.Flags().StringVar(&opts.textfile, "textfile", "", "write the prometheus output to this *.prom file, atomically")
	cmd.Flags().BoolVar(&opts.check, "check", false, "print one line per problem; exit 1 when there is one")
	cmd.Flags().BoolVar(&opts.noRecord, "no-record", false, "do not ask etcd for the records")
	return cmd
}

func statusRun(ctx context.Context, opts statusOptions) error {
	switch {
	case opts.output != "text" && opts.output != "json" && opts.output != "prometheus":
		return fmt.Errorf("cannot print output %q: use --output text, json or prometheus", opts.output)
	case opts.textfile != "" && opts.output != "prometheus":
		return fmt.Errorf("cannot write --textfile %s with --output %s: it takes --output prometheus", opts.textfile, opts.output)
	case opts.textfile != "" && !strings.HasSuffix(opts.textfile, ".prom"):
		return fmt.Errorf("cannot write --textfile %s: node_exporter reads only *.prom files; name it NAME.prom", opts.textfile)
	case opts.check && opts.outputSet:
		return errors.New("cannot combine --check with --output: --check prints one line per problem")
	}
	names, err := statusNames(opts)
	if err != nil {
		return err
	}
	svcs := make([]spec.Service, len(names))
	out := make([]ServiceStatus, len(names))
	sts := make([]apply.Status, len(names))
	for i, n := range names {
		svcs[i] = spec.Service{Name: n, SvDir: opts.svDir, ServiceDir: opts.serviceDir}
		st, err := apply.GetStatus(ctx, svcs[i], opts.containers)
		sts[i], out[i].Name = st, n
		if err != nil {
			out[i].Error = err.Error()
			if !opts.check && opts.output == "text" {
				fmt.Fprintf(opts.stderr, "warning: %s: %v\n", n, err)
			}
		}
	}
	if !opts.noRecord {
		apply.ReadRecords(ctx, svcs, sts)
	}
	for i := range out {
		out[i].Status = sts[i]
	}
	switch {
	case opts.check:
		return printProblems(opts.stdout, out)
	case opts.output == "json":
		enc := json.NewEncoder(opts.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case opts.output == "prometheus":
		ms := make([]metrics.Service, len(out))
		for i, s := range out {
			ms[i] = metrics.Service{Name: s.Name, Status: s.Status}
		}
		var buf bytes.Buffer
		if err := metrics.Write(&buf, ms); err != nil {
			return err
		}
		if opts.textfile == "" {
			_, err := opts.stdout.Write(buf.Bytes())
			return err
		}
		return safefs.WriteFile(opts.textfile, buf.Bytes(), 0o644)
	}
	for i, s := range out {
		if i > 0 {
			fmt.Fprintln(opts.stdout)
		}
		printStatus(opts.stdout, s)
	}
	return nil
}

// statusNames are the services asked for, or every tree in sv_dir.
func statusNames(opts statusOptions) ([]string, error) {
	for _, n := range opts.names {
		root := filepath.Join(opts.svDir, render.Dir(n))
		if _, err := os.Lstat(root); err != nil {
			return nil, fmt.Errorf("cannot show %s: no tree %s (is the name right? is --sv-dir %s right?)", n, root, opts.svDir)
		}
	}
	if len(opts.names) > 0 {
		return opts.names, nil
	}
	entries, err := os.ReadDir(opts.svDir)
	if err != nil {
		return nil, fmt.Errorf("cannot list sv_dir %s: %w (set --sv-dir)", opts.svDir, err)
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutPrefix(e.Name(), render.Dir("")); ok && e.IsDir() {
			names = append(names, n)
		}
	}
	return names, nil
}

// printProblems prints "NAME: problem" lines and returns ErrProblems when there is one.
func printProblems(w io.Writer, out []ServiceStatus) error {
	n := 0
	for _, s := range out {
		ps := s.Problems()
		if s.Error != "" {
			ps = append(ps, "cannot read its state: "+s.Error)
		}
		for _, p := range ps {
			fmt.Fprintf(w, "%s: %s\n", s.Name, p)
			n++
		}
	}
	if n > 0 {
		return fmt.Errorf("%w: %d problem(s) in %d service(s)", ErrProblems, n, len(out))
	}
	fmt.Fprintf(w, "ok: %d service(s)\n", len(out))
	return nil
}

// printStatus prints one service as a block, like systemctl status.
func printStatus(w io.Writer, s ServiceStatus) {
	state := "installed, not linked"
	switch {
	case !s.Installed:
		state = "not installed"
	case s.Linked:
		state = "linked"
	}
	fmt.Fprintf(w, "%s (%s)\n", s.Name, state)
	line := func(k, v string) { fmt.Fprintf(w, "  %-12s %s\n", k+":", v) }
	if !s.Installed {
		return
	}
	line("service", s.Service.String())
	if s.Log != nil {
		line("log", s.Log.String())
	}
	if s.Announcer != nil {
		line("announcer", s.Announcer.String())
	}
	line("container", containerLine(s.Status))
	if len(s.DependsOn) > 0 {
		deps := make([]string, len(s.DependsOn))
		for i, d := range s.DependsOn {
			deps[i] = d.Name + " (" + d.Condition + ")"
		}
		line("depends on", strings.Join(deps, ", "))
	}
	if d := s.WaitingFor; d != nil {
		line("waiting for", d.Name+" to be "+d.Condition)
	}
	if s.CrashLoops > 0 {
		line("crash loops", fmt.Sprintf("%d short runs in a row", s.CrashLoops))
	}
	if s.Record != nil {
		line("record", recordLine(s.Status))
	}
	if s.Maintenance {
		m := "on"
		if s.MaintenanceReason != "" {
			m += " (" + s.MaintenanceReason + ")"
		}
		line("maintenance", m)
	}
	if d := s.Deploy; d != nil {
		dep := d.Outcome + " " + d.Image + " at " + d.Started.Local().Format(time.DateTime)
		if d.RolledBackTo != "" {
			dep += " (rolled back to " + d.RolledBackTo + ")"
		}
		line("last deploy", dep)
		if d.Reason != "" {
			line("reason", strings.ReplaceAll(d.Reason, "\n", "\n               "))
		}
	}
	if s.Error != "" {
		line("error", s.Error)
	}
}

func containerLine(st apply.Status) string {
	if st.Container == "" {
		return "none"
	}
	c := strings.ReplaceAll(st.Container, ",", ", ") + " " + st.Image + " (" + shortID(st.ImageID) + ")"
	if st.Running && !st.Started.IsZero() {
		c += ", up since " + st.Started.Local().Format(time.DateTime) + " (" + time.Since(st.Started).Truncate(time.Second).String() + ")"
	}
	return c
}

func recordLine(st apply.Status) string {
	r := st.Record
	switch {
	case r.Error != "":
		return "unknown " + r.Key + ": " + r.Error
	case !r.Present && st.Maintenance:
		return "absent " + r.Key + " (withheld: maintenance)"
	case !r.Present:
		return "absent " + r.Key
	}
	out := "present " + r.Key + " " + r.Value
	if r.LeaseTTL >= 0 {
		out += fmt.Sprintf(", lease %d s left", r.LeaseTTL)
	} else {
		out += ", no lease (never expires: not written by an announcer)"
	}
	return out
}
