package spec

import (
	"fmt"
	"strings"

	"github.com/rundock/rundock/internal/dnsname"
)

// Dependency conditions: what a service waits for before its container starts.
const (
	// ConditionHealthy: the dependency's runsv runs it and sv check passes (its check
	// script: the container runs and, with a health check, is healthy).
	ConditionHealthy = "healthy"
	// ConditionStarted: the dependency's runsv runs it and it waits for nothing itself.
	ConditionStarted = "started"
)

// DependsWait is how long (seconds) a run script waits for each dependency before it
// exits, so that runit starts it again: bounded, so a log shows progress and a stuck
// dependency is retried rather than waited for forever.
const DependsWait = 60

// Dependency is one item of depends_on: a service on the same host (its tree is
// sv_dir/docker-NAME) and the condition to wait for.
type Dependency struct {
	Name      string
	Condition string
}

// String is the item as depends_on takes it, NAME:CONDITION.
func (d Dependency) String() string { return d.Name + ":" + d.Condition }

// ParseDependency reads one depends_on item, NAME or NAME:CONDITION; the condition
// defaults to healthy.
func ParseDependency(item string) (Dependency, error) {
	name, cond, hasCond := strings.Cut(item, ":")
	d := Dependency{Name: strings.TrimSpace(name), Condition: strings.TrimSpace(cond)}
	if !hasCond {
		d.Condition = ConditionHealthy
	}
	if !dnsname.IsLabel(d.Name) {
		hint := ""
		if l := dnsname.ASCIILower(d.Name); l != d.Name && dnsname.IsLabel(l) {
			hint = fmt.Sprintf(" (try %q)", l)
		}
		return Dependency{}, optErr(ErrBadValue, "depends_on", "%q does not name a service: %q is not a DNS label: %s%s", item, d.Name, dnsname.Rule, hint)
	}
	switch d.Condition {
	case ConditionHealthy, ConditionStarted:
		return d, nil
	case "service_healthy", "service_started":
		return Dependency{}, optErr(ErrBadValue, "depends_on", "%q: the condition is written without service_ here: use %s:%s", item, d.Name, strings.TrimPrefix(d.Condition, "service_"))
	}
	return Dependency{}, optErr(ErrBadValue, "depends_on", "%q: %q is not a condition (use NAME, NAME:healthy or NAME:started)", item, d.Condition)
}

// parseDependsOn fills Deps from DependsOn: each item read, none twice, none the service
// itself (it would wait for itself forever).
func parseDependsOn(s *Service) error {
	s.Deps = nil
	seen := map[string]bool{}
	for _, item := range s.DependsOn {
		d, err := ParseDependency(item)
		if err != nil {
			return err
		}
		if d.Name == s.Name {
			return optErr(ErrBadValue, "depends_on", "%q is the service itself, which would wait for itself forever: remove it", item)
		}
		if seen[d.Name] {
			return optErr(ErrBadValue, "depends_on", "%q is listed twice: keep one item for it", d.Name)
		}
		seen[d.Name] = true
		s.Deps = append(s.Deps, d)
	}
	return nil
}
