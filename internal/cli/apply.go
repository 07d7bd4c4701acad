package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rundock/rundock/internal/apply"
	"github.com/rundock/rundock/internal/spec"
)

// optionFlags registers one flag per spec option, typed by its declared kind: lists and env
// are repeatable, booleans take --log or --log=false, everything else is a string that
// spec.FromMap coerces and validates like Ansible's key=value arguments.
type optionFlags struct {
	strs  map[string]*string
	lists map[string]*[]string
	kinds map[string]spec.Kind
}

func addOptionFlags(cmd *cobra.Command) *optionFlags {
	o := &optionFlags{strs: map[string]*string{}, lists: map[string]*[]string{}, kinds: map[string]spec.Kind{}}
	for _, opt := range spec.AllOptions() {
		name, help := opt.Name, opt.Usage()
		o.kinds[name] = opt.Kind
		flag := strings.ReplaceAll(name, "_", "-")
		switch opt.Kind {
		case spec.KindList, spec.KindMap:
			o.lists[name] = cmd.Flags().StringArray(flag, nil, help)
		case spec.KindBool:
			o.strs[name] = cmd.Flags().String(flag, "", help)
			cmd.Flags().Lookup(flag).NoOptDefVal = "true"
		default:
			o.strs[name] = cmd.Flags().String(flag, "", help)
		}
	}
	return o
}

// toMap returns the options whose flags were given, as FromMap takes them.
func (o *optionFlags) toMap(cmd *cobra.Command) map[string]any {
	m := map[string]any{}
	for name, p := range o.strs {
		if cmd.Flags().Changed(strings.ReplaceAll(name, "_", "-")) {
			m[name] = *p
		}
	}
	for name, p := range o.lists {
		if !cmd.Flags().Changed(strings.ReplaceAll(name, "_", "-")) {
			continue
		}
		if o.kinds[name] == spec.KindMap {
			env := map[string]any{}
			for _, kv := range *p {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			m[name] = env
			continue
		}
		// One value is coerced like Ansible's key=value string (a comma list, or for
		// command a string split like sh); a repeated flag is a list as given.
		if len(*p) == 1 {
			m[name] = (*p)[0]
			continue
		}
		var l []any
		for _, v := range *p {
			l = append(l, v)
		}
		m[name] = l
	}
	return m
}

type applyFlags struct {
	files  []string
	dryRun bool
	diff   bool
	output string
}

func newApplyCmd() *cobra.Command {
	var f applyFlags
	var opts *optionFlags
	cmd := &cobra.Command{
		Use:   "apply (-f FILE|DIR ... | --name NAME --image IMAGE [options])",
		Short: "Install, enable, disable or remove services",
		Long: `Apply services described in YAML files (-f, several services per file; a directory means
every *.yml and *.yaml in it, sorted) or by option flags. Every service is validated and
rendered before anything on disk changes. Flags accept '-' or '_' (--announce-as or
--announce_as).`,
		Example: `  rundock apply -f /etc/rundock/services/
  rundock apply --name influxdb --image tutum/influxdb:latest --announce 8086 \
    --args '--volumes-from data.influxdb -p $PRIVATE_IP:8083:8083'
  rundock apply --dry-run -f web.yml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApply(cmd, f, opts)
		},
	}
	cmd.Flags().StringArrayVarP(&f.files, "file", "f", nil, "YAML file or directory of services (repeatable)")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "change nothing; print what would change and the diff")
	cmd.Flags().BoolVar(&f.diff, "diff", false, "print the diff of changed files")
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "text|json")
	opts = addOptionFlags(cmd)
	return cmd
}

// loadServices reads every service from the files, or from the flags, validating them all.
func loadServices(cmd *cobra.Command, f applyFlags, opts *optionFlags) ([]spec.Service, error) {
	flagged := opts.toMap(cmd)
	if len(f.files) > 0 && len(flagged) > 0 {
		var names []string
		for n := range flagged {
			names = append(names, "--"+strings.ReplaceAll(n, "_", "-"))
		}
		slices.Sort(names)
		return nil, fmt.Errorf("cannot combine -f with option flags (%s): put the options in the YAML file", strings.Join(names, " "))
	}
	host := hostName()
	if len(f.files) == 0 {
		if len(flagged) == 0 {
			return nil, errors.New("nothing to apply: give -f FILE|DIR or at least --name (see rundock apply --help)")
		}
		svc, err := spec.FromMap(flagged, host)
		if err != nil {
			return nil, err
		}
		return []spec.Service{svc}, nil
	}
	var paths []string
	for _, p := range f.files {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w (give an existing file or directory to -f)", p, err)
		}
		if !fi.IsDir() {
			paths = append(paths, p)
			continue
		}
		var found []string
		for _, pat := range []string{"*.yml", "*.yaml"} {
			m, _ := filepath.Glob(filepath.Join(p, pat))
			found = append(found, m...)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("cannot apply directory %s: it holds no *.yml or *.yaml file", p)
		}
		slices.Sort(found)
		paths = append(paths, found...)
	}
	var all []spec.Service
	seen := map[string]string{}
	var errs []error
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot read %s: %w", p, err))
			continue
		}
		svcs, err := spec.ParseYAML(data, host)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		for _, s := range svcs {
			key := filepath.Join(s.SvDir, s.Name)
			if prev, ok := seen[key]; ok {
				errs = append(errs, fmt.Errorf("%s: service %q is also defined in %s: keep one definition", p, s.Name, prev))
				continue
			}
			seen[key] = p
			all = append(all, s)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return all, nil
}

func runApply(cmd *cobra.Command, f applyFlags, opts *optionFlags) error {
	if f.output != "text" && f.output != "json" {
		return fmt.Errorf("cannot print output %q: use --output text or --output json", f.output)
	}
	// One short run over many trees allocates a few MiB: collect garbage less often.
	debug.SetGCPercent(400)
	svcs, err := loadServices(cmd, f, opts)
	if err != nil {
		return err
	}
	names := make([]string, len(svcs))
	for i, s := range svcs {
		names[i] = s.Name
	}
	prog := newProgress(cmd.ErrOrStderr(), names)
	results, failed := apply.Services(apply.WithProgress(cmd.Context(), prog.event), svcs, apply.Options{
		CheckMode: f.dryRun,
		Diff:      f.dryRun || f.diff,
		Logger:    prog.logger(),
		NoStatus:  f.output != "json", // text output prints no status
	})
	prog.Close()
	if failed != nil && len(results) == 0 {
		return failed // nothing rendered, nothing changed
	}
	if err := printResults(cmd.OutOrStdout(), f, results, failed != nil); err != nil {
		return err
	}
	return failed
}

// printResults prints every result; with lastFailed, the last one is the run that failed
// (text output says so; JSON output carries the error in msg and the exit code says it).
func printResults(out io.Writer, f applyFlags, results []apply.Result, lastFailed bool) error {
	w := bufio.NewWriter(out) // one write, not one per line
	if f.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
		return w.Flush()
	}
	for i, r := range results {
		verb := "ok"
		if r.Changed {
			verb = "changed"
			if f.dryRun {
				verb = "would change"
			}
		}
		if lastFailed && i == len(results)-1 {
			verb = "failed"
		}
		fmt.Fprintf(w, "%s: %s (%s): %s\n", r.Name, verb, r.State, r.Msg)
		for _, warn := range r.Warnings {
			fmt.Fprintf(w, "%s: warning: %s\n", r.Name, warn)
		}
		for _, d := range r.Diff {
			fmt.Fprint(w, d.Unified())
		}
	}
	return w.Flush()
}
