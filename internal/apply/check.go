package apply

import (
	"fmt"
	"strings"
)

// Problems says what is wrong with a service, one phrase each, for monitoring (rundock
// status --check): a linked service must be supervised and run a container that is not
// unhealthy, its announcer must be supervised and, out of maintenance, its record in
// etcd, and its last deploy must not have failed or rolled back. A service that is only
// installed (state present) is expected to run nothing; its last deploy still counts.
func (st Status) Problems() []string {
	var out []string
	if !st.Installed {
		return []string{"not installed"}
	}
	if st.Linked {
		out = append(out, st.runProblems()...)
	}
	if st.Next != "" && (st.Deploy == nil || st.Deploy.Outcome != OutcomeDeploying) {
		out = append(out, "a container NAME.next ("+st.Next+") runs beside the service, not supervised, left by an interrupted update start-first: apply again to finish or undo the update")
	}
	if d := st.Deploy; d != nil && (d.Outcome == OutcomeFailed || d.Outcome == OutcomeRolledBack) {
		p := fmt.Sprintf("last deploy of %s %s", d.Image, d.Outcome)
		if d.RolledBackTo != "" {
			p += " (runs " + d.RolledBackTo + " again)"
		}
		if d.Reason != "" {
			p += ": " + firstLine(d.Reason)
		}
		out = append(out, p)
	}
	return out
}

// runProblems are the problems of a linked service.
func (st Status) runProblems() []string {
	var out []string
	switch {
	case !st.Service.Supervised:
		out = append(out, "not supervised: no runsv runs the service (is runsvdir running?)")
	case st.Service.Want == "down":
		out = append(out, "wanted down (sv down): the container is not meant to run")
	}
	switch {
	case st.Container == "" && st.WaitingFor != nil:
		out = append(out, "no container: waiting for "+st.WaitingFor.Name+" to be "+st.WaitingFor.Condition+" (depends_on)")
	case st.Container == "":
		p := "no container"
		if st.CrashLoops > 0 {
			p += fmt.Sprintf(" (crash loop: %d short runs in a row)", st.CrashLoops)
		}
		out = append(out, p)
	case !st.Running:
		p := "container not running (" + st.Container + ")"
		if st.CrashLoops > 0 {
			p += fmt.Sprintf(" (crash loop: %d short runs in a row)", st.CrashLoops)
		}
		out = append(out, p)
	case st.Health == "unhealthy":
		out = append(out, "container unhealthy")
	}
	if st.Announcer != nil && !st.Announcer.Supervised {
		out = append(out, "announcer not supervised")
	}
	if r := st.Record; r != nil && !st.Maintenance {
		switch {
		case r.Error != "":
			out = append(out, "cannot check the record "+r.Key+": "+r.Error)
		case !r.Present:
			out = append(out, "no record "+r.Key+" in etcd while not in maintenance")
		}
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
