package metrics

import (
	"bytes"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rundock/rundock/internal/apply"
	"github.com/rundock/rundock/internal/runit"
)

// value returns the sample of family name whose labels include want, and whether there
// is one.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}

// TestWrite parses the output as node_exporter does (expfmt's text parser) and checks the
// families are gauges without timestamps, label values survive escaping, and a record
// etcd could not be asked about is unknown, not absent.
func TestWrite(t *testing.T) {
	ended := time.Unix(1764750000, 0)
	web := Service{Name: "web", Status: apply.Status{
		Installed: true, Linked: true, Container: "running,healthy", Running: true, Health: "healthy",
		Started:   time.Unix(1764740000, 0),
		Service:   runit.Status{Supervised: true, State: "run", Want: "up"},
		Announcer: &runit.Status{Supervised: true, State: "run", Want: "up"},
		Record:    &apply.Record{Key: "/skydns/com/example/web/h", Present: true, LeaseTTL: 17},
		Deploy:    &apply.Deploy{Outcome: apply.OutcomeOK, Image: `reg:5000/we"ird\img`, Started: ended.Add(-time.Minute), Ended: ended},
	}}
	odd := Service{Name: "odd\"na\\me\nx", Status: apply.Status{
		Installed: true, Linked: true, CrashLoops: 3, Maintenance: true,
		Service: runit.Status{Supervised: true, State: "down", Want: "up"},
		Record:  &apply.Record{Key: "/k", Error: "etcd unreachable"},
		Deploy:  &apply.Deploy{Outcome: apply.OutcomeFailed, Image: "x:1", Started: ended},
	}}
	var buf bytes.Buffer
	if err := Write(&buf, []Service{web, odd}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(out))
	if err != nil {
		t.Fatalf("not the text format: %v\n%s", err, out)
	}
	for name, f := range fams {
		if f.GetType() != dto.MetricType_GAUGE || f.GetHelp() == "" {
			t.Errorf("%s: type %s, help %q", name, f.GetType(), f.GetHelp())
		}
		for _, m := range f.Metric {
			if m.TimestampMs != nil {
				t.Errorf("%s has a timestamp: node_exporter skips the whole file", name)
			}
		}
	}
	tests := []struct {
		name   string
		family string
		labels map[string]string
		want   float64
		absent bool
	}{
		{"up", "rundock_service_up", map[string]string{"name": "web", "service": "container"}, 1, false},
		{"announcer up", "rundock_service_up", map[string]string{"name": "web", "service": "announcer"}, 1, false},
		{"no log service", "rundock_service_up", map[string]string{"name": "web", "service": "log"}, 0, true},
		{"down", "rundock_service_up", map[string]string{"name": odd.Name, "service": "container"}, 0, false},
		{"running", "rundock_container_running", map[string]string{"name": "web"}, 1, false},
		{"healthy", "rundock_container_healthy", map[string]string{"name": "web"}, 1, false},
		{"not healthy", "rundock_container_healthy", map[string]string{"name": odd.Name}, 0, false},
		{"started", "rundock_container_start_time_seconds", map[string]string{"name": "web"}, 1764740000, false},
		{"record", "rundock_record_present", map[string]string{"name": "web"}, 1, false},
		{"record unknown", "rundock_record_present", map[string]string{"name": odd.Name}, 0, true},
		{"record check failed", "rundock_record_check_ok", map[string]string{"name": odd.Name}, 0, false},
		{"lease", "rundock_record_lease_seconds", map[string]string{"name": "web"}, 17, false},
		{"maintenance", "rundock_maintenance", map[string]string{"name": odd.Name}, 1, false},
		{"crash loops", "rundock_crash_loops", map[string]string{"name": odd.Name}, 3, false},
		{"deploy ok", "rundock_last_deploy_ok", map[string]string{"name": "web"}, 1, false},
		{"deploy failed", "rundock_last_deploy_ok", map[string]string{"name": odd.Name}, 0, false},
		{"deploy time", "rundock_last_deploy_timestamp_seconds", map[string]string{"name": "web"}, 1764750000, false},
		{"deploy info escaped", "rundock_last_deploy_info", map[string]string{"name": "web", "image": `reg:5000/we"ird\img`, "outcome": "ok"}, 1, false},
		{"problems", "rundock_problems", map[string]string{"name": "web"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := value(fams, tt.family, tt.labels)
			switch {
			case tt.absent && ok:
				t.Errorf("%s%v = %v, want no sample", tt.family, tt.labels, got)
			case !tt.absent && !ok:
				t.Errorf("no sample %s%v in\n%s", tt.family, tt.labels, out)
			case !tt.absent && got != tt.want:
				t.Errorf("%s%v = %v, want %v", tt.family, tt.labels, got, tt.want)
			}
		})
	}
	if !strings.HasSuffix(out, "\n") || strings.Contains(out, "e+") {
		t.Errorf("output must end in a newline and write plain numbers:\n%s", out)
	}
}
