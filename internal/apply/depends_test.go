package apply

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/spec"
)

// depService is a validated service of svDir with depends_on deps.
func depService(t *testing.T, svDir, name string, state spec.State, deps ...any) spec.Service {
	t.Helper()
	m := map[string]any{"name": name, "state": string(state), "sv_dir": svDir, "service_dir": filepath.Join(filepath.Dir(svDir), "service")}
	if state != spec.StateAbsent && state != spec.StateDisabled {
		m["image"] = name + ":1"
	}
	if len(deps) > 0 {
		m["depends_on"] = deps
	}
	s, err := spec.FromMap(m, "back-1")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// installRun writes the rendered run script of s into its tree in sv_dir, as an earlier
// apply would have.
func installRun(t *testing.T, s spec.Service) {
	t.Helper()
	tr, err := render.Render(s)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(s.SvDir, tr.Dir)
	if err := os.MkdirAll(filepath.Join(dir, "supervise"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range tr.Files {
		if f.Path == "run" {
			if err := os.WriteFile(filepath.Join(dir, "run"), f.Data, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func names(svcs []spec.Service) []string {
	var out []string
	for _, s := range svcs {
		out = append(out, s.Name)
	}
	return out
}

func TestDependencyOrder(t *testing.T) {
	sv := filepath.Join(t.TempDir(), "sv")
	tests := []struct {
		name string
		svcs []spec.Service
		want []string
	}{
		{"no dependencies keep their order", []spec.Service{
			depService(t, sv, "c", spec.StatePresent), depService(t, sv, "a", spec.StatePresent), depService(t, sv, "b", spec.StatePresent)},
			[]string{"c", "a", "b"}},
		{"a dependency first", []spec.Service{
			depService(t, sv, "app", spec.StatePresent, "db", "cache:started"), depService(t, sv, "web", spec.StatePresent),
			depService(t, sv, "db", spec.StatePresent), depService(t, sv, "cache", spec.StatePresent, "db")},
			[]string{"web", "db", "cache", "app"}},
		{"a chain given backwards", []spec.Service{
			depService(t, sv, "a", spec.StatePresent, "b"), depService(t, sv, "b", spec.StatePresent, "c"), depService(t, sv, "c", spec.StatePresent)},
			[]string{"c", "b", "a"}},
		{"unknown dependencies do not order", []spec.Service{
			depService(t, sv, "a", spec.StatePresent, "zz"), depService(t, sv, "b", spec.StatePresent)},
			[]string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dependencyOrder(tt.svcs)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(names(got), tt.want) {
				t.Errorf("order %v, want %v", names(got), tt.want)
			}
		})
	}
}

func TestDependencyOrder_ErrCycle(t *testing.T) {
	sv := filepath.Join(t.TempDir(), "sv")
	tests := []struct {
		name  string
		disk  []spec.Service // installed before
		svcs  []spec.Service
		cycle string
	}{
		{"two", nil, []spec.Service{depService(t, sv, "a", spec.StatePresent, "b"), depService(t, sv, "b", spec.StatePresent, "a")},
			"a -> b -> a"},
		{"three", nil, []spec.Service{depService(t, sv, "web", spec.StatePresent), depService(t, sv, "a", spec.StatePresent, "b"),
			depService(t, sv, "b", spec.StatePresent, "c:started"), depService(t, sv, "c", spec.StatePresent, "a")},
			"a -> b -> c -> a"},
		{"through a tree on disk", []spec.Service{depService(t, sv, "db", spec.StatePresent, "app")},
			[]spec.Service{depService(t, sv, "app", spec.StatePresent, "db")}, "app -> db -> app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.RemoveAll(sv)
			for _, s := range tt.disk {
				installRun(t, s)
			}
			_, err := dependencyOrder(tt.svcs)
			if err == nil || !strings.Contains(err.Error(), "depends_on makes a cycle, "+tt.cycle+",") {
				t.Fatalf("error %v, want the cycle %s", err, tt.cycle)
			}
		})
	}
}

// A cycle is refused before anything on disk changes; its breaking (the tree on disk that
// closed it removed by this apply) is not a cycle.
func TestServices_ErrCycleChangesNothing(t *testing.T) {
	sv := filepath.Join(t.TempDir(), "sv")
	a, b := depService(t, sv, "a", spec.StatePresent, "b"), depService(t, sv, "b", spec.StatePresent, "a")
	res, err := Services(context.Background(), []spec.Service{a, b}, Options{Containers: noContainers{}})
	if err == nil || len(res) != 0 || !strings.Contains(err.Error(), "a -> b -> a") {
		t.Fatalf("Services = %v, %v; want the cycle refused", res, err)
	}
	if _, err := os.Stat(sv); !os.IsNotExist(err) {
		t.Errorf("sv_dir was created for a refused apply: %v", err)
	}

	installRun(t, depService(t, sv, "db", spec.StatePresent, "app"))
	svcs := []spec.Service{depService(t, sv, "app", spec.StatePresent, "db"), depService(t, sv, "db", spec.StateAbsent)}
	if _, err := dependencyOrder(svcs); err != nil {
		t.Errorf("removing db breaks the cycle, yet: %v", err)
	}
}

func TestDependencyWarnings(t *testing.T) {
	sv := filepath.Join(t.TempDir(), "sv")
	installRun(t, depService(t, sv, "db", spec.StatePresent))
	installRun(t, depService(t, sv, "app", spec.StatePresent, "db"))
	installRun(t, depService(t, sv, "worker", spec.StatePresent, "db:started"))
	installRun(t, depService(t, sv, "old", spec.StatePresent, "db"))

	svcs := []spec.Service{
		depService(t, sv, "web", spec.StatePresent, "db", "cache"), // cache: nowhere
		depService(t, sv, "queue", spec.StatePresent),
		depService(t, sv, "api", spec.StatePresent, "queue"), // queue: in this apply
		depService(t, sv, "db", spec.StateDisabled),          // app, worker, web depend on it
		depService(t, sv, "old", spec.StateAbsent),           // goes too: not named
	}
	w := dependencyWarnings(svcs)
	if len(w[0]) != 1 || !strings.Contains(w[0][0], "depends_on cache: there is no service cache on this host") {
		t.Errorf("web: %q, want cache named unknown", w[0])
	}
	if len(w[1]) != 0 || len(w[2]) != 0 || len(w[4]) != 0 {
		t.Errorf("queue, api, old: %q %q %q, want none", w[1], w[2], w[4])
	}
	if len(w[3]) != 1 || !strings.HasPrefix(w[3][0], "app, web, worker depends on db (depends_on): while db is disabled") {
		t.Errorf("db: %q, want its dependents named", w[3])
	}
}

func TestDependsOn_Waiting(t *testing.T) {
	sv := filepath.Join(t.TempDir(), "sv")
	installRun(t, depService(t, sv, "app", spec.StatePresent, "db", "cache:started"))
	want := []spec.Dependency{{Name: "db", Condition: spec.ConditionHealthy}, {Name: "cache", Condition: spec.ConditionStarted}}
	if got := DependsOn(sv, "app"); !reflect.DeepEqual(got, want) {
		t.Errorf("DependsOn = %v, want %v", got, want)
	}
	if got := DependsOn(sv, "nothing"); got != nil {
		t.Errorf("DependsOn of no tree = %v", got)
	}
	if d, ok := Waiting(sv, "app"); ok {
		t.Errorf("Waiting = %v before run wrote it", d)
	}
	p := filepath.Join(sv, render.Dir("app"), filepath.FromSlash(render.WaitingPath))
	if err := os.WriteFile(p, []byte("cache started\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if d, ok := Waiting(sv, "app"); !ok || d != want[1] {
		t.Errorf("Waiting = %v, %v; want %v", d, ok, want[1])
	}
}
