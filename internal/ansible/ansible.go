// Package ansible speaks Ansible's binary-module protocol: rundock is run as
// `rundock ARGSFILE`, reads the task's options from the JSON file, and prints exactly one
// JSON object describing the result.
package ansible

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/rundock/rundock/internal/apply"
	"github.com/rundock/rundock/internal/spec"
)

// Args are the task's options with Ansible's own _ansible_* keys split off.
type Args struct {
	Options   map[string]any
	CheckMode bool
	Diff      bool
}

// DiffEntry is one element of the module's diff list, as Ansible displays it with --diff.
type DiffEntry struct {
	Before       string `json:"before"`
	After        string `json:"after"`
	BeforeHeader string `json:"before_header"`
	AfterHeader  string `json:"after_header"`
}

// Output is the JSON object the module prints.
type Output struct {
	Changed  bool          `json:"changed"`
	Failed   bool          `json:"failed,omitempty"`
	Name     string        `json:"name,omitempty"`
	State    string        `json:"state,omitempty"`
	Status   *apply.Status `json:"status,omitempty"`
	Msg      string        `json:"msg"`
	Diff     []DiffEntry   `json:"diff,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
}

// ParseArgs decodes an args file's JSON: reads _ansible_check_mode and _ansible_diff, drops
// every other _ansible_* key, and returns the rest as options.
func ParseArgs(data []byte) (Args, error) {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return Args{}, fmt.Errorf("cannot parse the module arguments as a JSON object: %w", err)
	}
	if m == nil {
		return Args{}, fmt.Errorf("cannot parse the module arguments: want a JSON object, got null")
	}
	a := Args{Options: map[string]any{}}
	for k, v := range m {
		switch {
		case k == "_ansible_check_mode":
			a.CheckMode = truthy(v)
		case k == "_ansible_diff":
			a.Diff = truthy(v)
		case strings.HasPrefix(k, "_ansible_"):
		default:
			a.Options[k] = v
		}
	}
	return a, nil
}

func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		switch strings.ToLower(x) {
		case "1", "true", "yes", "on":
			return true
		}
	case float64:
		return x != 0
	}
	return false
}

// Run is the whole module: read the args file, apply, write one JSON object to w. It
// returns the process exit code (1 on failure, as Ansible modules conventionally do).
func Run(ctx context.Context, argsFile string, host string, w io.Writer) int {
	out := run(ctx, argsFile, host)
	b, err := json.Marshal(out)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"failed": true, "msg": %q}`, "cannot encode the result: "+err.Error()))
	}
	fmt.Fprintf(w, "%s\n", b)
	if out.Failed {
		return 1
	}
	return 0
}

func run(ctx context.Context, argsFile, host string) Output {
	data, err := os.ReadFile(argsFile)
	if err != nil {
		return fail("cannot read the module arguments file %s: %v", argsFile, err)
	}
	args, err := ParseArgs(data)
	if err != nil {
		return fail("%v", err)
	}
	svc, err := spec.FromMap(args.Options, host)
	if err != nil {
		return failWith(args.Options, err)
	}
	results, err := apply.Services(ctx, []spec.Service{svc}, apply.Options{CheckMode: args.CheckMode, Diff: args.Diff})
	if len(results) == 0 {
		return failWith(args.Options, err)
	}
	res := results[0]
	out := Output{Changed: res.Changed, Name: res.Name, State: res.State, Msg: res.Msg, Warnings: res.Warnings}
	if err != nil {
		out.Failed = true
		return out
	}
	out.Status = &res.Status
	if args.Diff && res.Changed {
		for _, d := range res.Diff {
			out.Diff = append(out.Diff, DiffEntry{
				Before:       d.Before,
				After:        d.After,
				BeforeHeader: header(svc.SvDir, d.Path, d.BeforeMode),
				AfterHeader:  header(svc.SvDir, d.Path, d.AfterMode),
			})
		}
	}
	return out
}

func header(svDir, p, mode string) string {
	h := path.Join(svDir, p)
	if mode == "" {
		return h + " (absent)"
	}
	return h + " (mode " + mode + ")"
}

func fail(format string, args ...any) Output {
	return Output{Failed: true, Msg: fmt.Sprintf(format, args...)}
}

func failWith(opts map[string]any, err error) Output {
	o := Output{Failed: true, Msg: err.Error()}
	if n, ok := opts["name"].(string); ok {
		o.Name = n
	}
	return o
}
