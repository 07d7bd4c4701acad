// Package metrics writes services' status in the Prometheus text exposition format, as
// node_exporter's textfile collector reads it: every family a gauge with HELP and TYPE,
// one sample per service, no timestamps (the collector reports the file's mtime itself).
package metrics

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rundock/rundock/internal/apply"
)

// Service is one service's status under its name.
type Service struct {
	Name string
	apply.Status
}

// family is one metric family: its samples come from each service, none when value
// says so.
type family struct {
	name, help string
	// samples returns the service's samples: extra labels (pairs) and value.
	samples func(s Service) []sample
}

type sample struct {
	labels []string // name, value, name, value...
	value  float64
}

func one(v float64) []sample { return []sample{{value: v}} }

func b(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

// families are the metrics, in the order they are written.
var families = []family{
	{"rundock_installed", "1 when the service's tree is in sv_dir.", func(s Service) []sample { return one(b(s.Installed)) }},
	{"rundock_linked", "1 when the service is linked into service_dir (enabled).", func(s Service) []sample { return one(b(s.Linked)) }},
	{"rundock_service_up", "1 when runsv supervises the runit service and it is in state run.", func(s Service) []sample {
		out := []sample{{labels: []string{"service", "container"}, value: b(s.Service.State == "run")}}
		if s.Log != nil {
			out = append(out, sample{labels: []string{"service", "log"}, value: b(s.Log.State == "run")})
		}
		if s.Announcer != nil {
			out = append(out, sample{labels: []string{"service", "announcer"}, value: b(s.Announcer.State == "run")})
		}
		return out
	}},
	{"rundock_container_running", "1 when the service's Docker container runs.", func(s Service) []sample { return one(b(s.Running)) }},
	{"rundock_container_healthy", "1 when the container runs and is healthy or has no health check.", func(s Service) []sample {
		return one(b(s.Running && (s.Health == "" || s.Health == "healthy")))
	}},
	{"rundock_container_start_time_seconds", "When the running container started, in seconds since the epoch.", func(s Service) []sample {
		if !s.Running || s.Started.IsZero() {
			return nil
		}
		return one(float64(s.Started.Unix()))
	}},
	{"rundock_crash_loops", "Short runs in a row the finish script counted (a crash loop while the container is not running).", func(s Service) []sample {
		return one(float64(s.CrashLoops))
	}},
	{"rundock_maintenance", "1 while the service is in maintenance (its record withheld on purpose).", func(s Service) []sample { return one(b(s.Maintenance)) }},
	{"rundock_record_check_ok", "1 when etcd answered the question for the service's record, 0 when it could not be asked.", func(s Service) []sample {
		if s.Record == nil {
			return nil
		}
		return one(b(s.Record.Error == ""))
	}},
	{"rundock_record_present", "1 when the service's SkyDNS record is in etcd (absent when etcd could not be asked).", func(s Service) []sample {
		if s.Record == nil || s.Record.Error != "" {
			return nil
		}
		return one(b(s.Record.Present))
	}},
	{"rundock_record_lease_seconds", "Seconds left on the lease of the service's record.", func(s Service) []sample {
		if s.Record == nil || !s.Record.Present || s.Record.LeaseTTL < 0 {
			return nil
		}
		return one(float64(s.Record.LeaseTTL))
	}},
	{"rundock_last_deploy_ok", "1 when the last deploy by rundock apply succeeded, 0 when it failed, rolled back or is under way.", func(s Service) []sample {
		if s.Deploy == nil {
			return nil
		}
		return one(b(s.Deploy.Outcome == apply.OutcomeOK || s.Deploy.Outcome == apply.OutcomeStarted))
	}},
	{"rundock_last_deploy_timestamp_seconds", "When the last deploy ended (or, under way, started), in seconds since the epoch.", func(s Service) []sample {
		if s.Deploy == nil {
			return nil
		}
		t := s.Deploy.Ended
		if t.IsZero() {
			t = s.Deploy.Started
		}
		return one(float64(t.Unix()))
	}},
	{"rundock_last_deploy_info", "The last deploy's outcome and image, as labels; always 1.", func(s Service) []sample {
		if s.Deploy == nil {
			return nil
		}
		return []sample{{labels: []string{"outcome", s.Deploy.Outcome, "image", s.Deploy.Image}, value: 1}}
	}},
	{"rundock_problems", "How many problems rundock status --check reports for the service.", func(s Service) []sample {
		return one(float64(len(s.Problems())))
	}},
}

// Write writes the services' metrics to w.
func Write(w io.Writer, svcs []Service) error {
	var bld strings.Builder
	for _, f := range families {
		var lines []string
		for _, s := range svcs {
			for _, smp := range f.samples(s) {
				lines = append(lines, f.name+labels(append([]string{"name", s.Name}, smp.labels...))+" "+strconv.FormatFloat(smp.value, 'f', -1, 64))
			}
		}
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(&bld, "# HELP %s %s\n# TYPE %s gauge\n", f.name, escapeHelp(f.help), f.name)
		for _, l := range lines {
			bld.WriteString(l + "\n")
		}
	}
	_, err := io.WriteString(w, bld.String())
	return err
}

// labels renders name/value pairs as {a="x",b="y"}.
func labels(pairs []string) string {
	var parts []string
	for i := 0; i+1 < len(pairs); i += 2 {
		parts = append(parts, pairs[i]+`="`+escapeLabel(pairs[i+1])+`"`)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// escapeLabel escapes a label value as the exposition format asks: backslash, double
// quote and newline.
var escapeLabel = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace

// escapeHelp escapes HELP text: backslash and newline.
var escapeHelp = strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace
