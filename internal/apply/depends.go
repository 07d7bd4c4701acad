package apply

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rundock/rundock/internal/dnsname"
	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/spec"
)

// Dependencies between the services of one host (depends_on). The rendered run script of a
// service names each dependency on a line of its own (render.DependsOnLine); what is on disk
// is read back from there, so a service applied earlier, by another file or by the Ansible
// module, counts as much as one in this apply.

// DependsOn returns the dependencies named in the rendered run script of service name in
// svDir, in their order; nil when it has none or no tree. rundock status shows them with
// Waiting.
func DependsOn(svDir, name string) []spec.Dependency {
	data, err := safefs.ReadFile(filepath.Join(svDir, render.Dir(name), "run"))
	if err != nil {
		return nil
	}
	return dependsLines(data)
}

// Waiting returns the dependency service name's run script is waiting for, or gave up
// waiting for and will wait for again after a short pause; ok is false when it waits for
// nothing (its container started, or it has no dependencies).
func Waiting(svDir, name string) (d spec.Dependency, ok bool) {
	data, err := safefs.ReadFile(filepath.Join(svDir, render.Dir(name), filepath.FromSlash(render.WaitingPath)))
	if err != nil {
		return spec.Dependency{}, false
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return spec.Dependency{}, false
	}
	return spec.Dependency{Name: f[0], Condition: f[1]}, true
}

// dependsLines reads the "# depends_on: NAME CONDITION" lines of a run script.
func dependsLines(data []byte) []spec.Dependency {
	var deps []spec.Dependency
	for line := range bytes.Lines(data) {
		rest, ok := bytes.CutPrefix(line, []byte(render.DependsOnLine))
		if !ok {
			continue
		}
		if f := strings.Fields(string(rest)); len(f) == 2 && dnsname.IsLabel(f[0]) {
			deps = append(deps, spec.Dependency{Name: f[0], Condition: f[1]})
		}
	}
	return deps
}

// svcKey names a service on a host: its sv_dir and name.
type svcKey struct{ svDir, name string }

// depGraph is who depends on whom, per sv_dir: the services of this apply as they will be,
// the other trees in their sv_dirs as they are on disk.
type depGraph struct {
	edges map[svcKey][]string // service -> the names it depends on, same sv_dir
	exist map[svcKey]bool     // services with a tree, or installed by this apply
}

func newDepGraph(svcs []spec.Service) depGraph {
	g := depGraph{edges: map[svcKey][]string{}, exist: map[svcKey]bool{}}
	// The trees of the services given, but those left as they are on disk: their edges
	// come from the services, so their run scripts need no read.
	given := map[svcKey]bool{}
	for _, s := range svcs {
		given[svcKey{s.SvDir, s.Name}] = !(s.State == spec.StateDisabled && s.Image == "")
	}
	dirs := map[string]bool{}
	for _, s := range svcs {
		if dirs[s.SvDir] {
			continue
		}
		dirs[s.SvDir] = true
		entries, _ := os.ReadDir(s.SvDir) // no sv_dir yet: no trees
		for _, e := range entries {
			name, ok := strings.CutPrefix(e.Name(), render.Dir(""))
			if !ok || !e.IsDir() || !dnsname.IsLabel(name) {
				continue
			}
			k := svcKey{s.SvDir, name}
			g.exist[k] = true
			if given[k] {
				continue
			}
			for _, d := range DependsOn(s.SvDir, name) {
				g.edges[k] = append(g.edges[k], d.Name)
			}
		}
	}
	for _, s := range svcs {
		k := svcKey{s.SvDir, s.Name}
		switch {
		case s.State == spec.StateAbsent:
			delete(g.edges, k)
			delete(g.exist, k)
		case s.State == spec.StateDisabled && s.Image == "":
			// Nothing rendered: the tree on disk stays as it is.
		default:
			g.exist[k] = true
			g.edges[k] = nil
			for _, d := range s.Deps {
				g.edges[k] = append(g.edges[k], d.Name)
			}
		}
	}
	return g
}

// cycle returns the shortest dependency cycle through from, from first ("a -> b -> a"),
// or nil.
func (g depGraph) cycle(from svcKey) []string {
	prev := map[string]string{}
	queue := []string{from.name}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, d := range g.edges[svcKey{from.svDir, n}] {
			if d == from.name {
				path := []string{d}
				for p := n; p != from.name; p = prev[p] {
					path = append(path, p)
				}
				path = append(path, from.name)
				slices.Reverse(path)
				return path
			}
			if _, seen := prev[d]; !seen {
				prev[d] = n
				queue = append(queue, d)
			}
		}
	}
	return nil
}

// dependencyOrder returns svcs in dependency order: a service after the services of the
// same sv_dir in svcs it depends on, otherwise in the order given. A dependency cycle
// through any of svcs, with the other trees on the host, is refused, naming it, before
// anything is rendered.
func dependencyOrder(svcs []spec.Service) ([]spec.Service, error) {
	idx, err := newDepGraph(svcs).order(svcs)
	if err != nil {
		return nil, err
	}
	out := make([]spec.Service, len(idx))
	for k, i := range idx {
		out[k] = svcs[i]
	}
	return out, nil
}

// order is dependencyOrder with the graph of svcs built: the indices into svcs, in order.
func (g depGraph) order(svcs []spec.Service) ([]int, error) {
	for _, s := range svcs {
		if c := g.cycle(svcKey{s.SvDir, s.Name}); c != nil {
			return nil, fmt.Errorf("cannot apply %s: depends_on makes a cycle, %s, in which every service would wait for the next forever: remove one of these dependencies", s.Name, strings.Join(c, " -> "))
		}
	}
	index := map[svcKey]int{}
	for i, s := range svcs {
		index[svcKey{s.SvDir, s.Name}] = i
	}
	done := make([]bool, len(svcs))
	out := make([]int, 0, len(svcs))
	for len(out) < len(svcs) {
		for i, s := range svcs {
			if done[i] {
				continue
			}
			ready := true
			for _, d := range s.Deps {
				if j, ok := index[svcKey{s.SvDir, d.Name}]; ok && !done[j] {
					ready = false
					break
				}
			}
			if ready {
				done[i] = true
				out = append(out, i)
				break
			}
		}
	}
	return out, nil
}

// dependencyWarnings says, for each of svcs (by index), what about dependencies deserves a
// warning: a dependency with no tree on the host and none in this apply (the service waits
// for it until it is installed), and for disabled and absent services, the services that
// depend on them and will wait for them.
func dependencyWarnings(svcs []spec.Service) [][]string {
	return newDepGraph(svcs).warnings(svcs)
}

// warnings is dependencyWarnings with the graph of svcs built.
func (g depGraph) warnings(svcs []spec.Service) [][]string {
	stopped := map[svcKey]bool{} // stopped by this apply: waits for nothing
	for _, s := range svcs {
		if s.State == spec.StateDisabled || s.State == spec.StateAbsent {
			stopped[svcKey{s.SvDir, s.Name}] = true
		}
	}
	warns := make([][]string, len(svcs))
	for i, s := range svcs {
		removing := s.State == spec.StateDisabled || s.State == spec.StateAbsent
		if !removing {
			for _, d := range s.Deps {
				if !g.exist[svcKey{s.SvDir, d.Name}] {
					warns[i] = append(warns[i], fmt.Sprintf("depends_on %s: there is no service %s on this host (no %s): %s waits for it, and its container does not start, until it is installed",
						d.Name, d.Name, filepath.Join(s.SvDir, render.Dir(d.Name)), s.Name))
				}
			}
			continue
		}
		var dependents []string
		for k, deps := range g.edges {
			if k.svDir == s.SvDir && !stopped[k] && slices.Contains(deps, s.Name) {
				dependents = append(dependents, k.name)
			}
		}
		if len(dependents) > 0 {
			slices.Sort(dependents)
			warns[i] = append(warns[i], fmt.Sprintf("%s depends on %s (depends_on): while %s is %s, %s does not start again once stopped (its run waits for %s)",
				strings.Join(dependents, ", "), s.Name, s.Name, s.State, strings.Join(dependents, ", "), s.Name))
		}
	}
	return warns
}
