package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rundock/rundock/internal/apply"
	"github.com/rundock/rundock/internal/render"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/spec"
	"github.com/rundock/rundock/internal/testenv"
)

// noEngine is a container engine without containers: these tests run no Docker.
type noEngine struct{ apply.Containers }

func (noEngine) Inspect(context.Context, string) (apply.Container, error) {
	return apply.Container{}, nil
}

// statusTree installs web, announced on etcd at endpoint, and links it.
func statusTree(t *testing.T, endpoint string) (svDir, serviceDir string) {
	t.Helper()
	dir := t.TempDir()
	svDir, serviceDir = filepath.Join(dir, "sv"), filepath.Join(dir, "service")
	svc, err := spec.FromMap(map[string]any{"name": "web", "image": "nginx:1.25", "announce": 8080, "domain": "example.com",
		"etcd_endpoints": endpoint, "sv_dir": svDir, "service_dir": serviceDir, "log_dir": filepath.Join(dir, "log")}, "host1")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := render.Render(svc)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{svDir, serviceDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := safefs.CreateDir(svDir, tr.Dir, tr.Files); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(svDir, tr.Dir), filepath.Join(serviceDir, tr.Dir)); err != nil {
		t.Fatal(err)
	}
	return svDir, serviceDir
}

func TestStatus_RecordCheckAndTextfile(t *testing.T) {
	e := testenv.StartEtcd(t)
	svDir, serviceDir := statusTree(t, e.Endpoint)
	cli := testenv.EtcdClient(t, e.Endpoint)
	ctx := context.Background()
	if _, err := cli.Put(ctx, "/skydns/com/example/web/host1", `{"host":"10.0.0.1","port":8080,"ttl":30}`); err != nil {
		t.Fatal(err)
	}
	run := func(o statusOptions) (string, error) {
		var out bytes.Buffer
		o.svDir, o.serviceDir, o.containers, o.stdout, o.stderr = svDir, serviceDir, noEngine{}, &out, &out
		if o.output == "" {
			o.output = "text"
		}
		err := statusRun(ctx, o)
		return out.String(), err
	}

	out, err := run(statusOptions{})
	if err != nil || !strings.Contains(out, `record:      present /skydns/com/example/web/host1 {"host":"10.0.0.1","port":8080,"ttl":30}, no lease`) {
		t.Errorf("text: %v\n%s", err, out)
	}

	out, err = run(statusOptions{output: "json"})
	var js []ServiceStatus
	if err != nil || json.Unmarshal([]byte(out), &js) != nil || len(js) != 1 || js[0].Record == nil || !js[0].Record.Present || js[0].Record.Port != 8080 {
		t.Errorf("json: %v\n%s", err, out)
	}

	// Not supervised, no container: --check names both and fails.
	out, err = run(statusOptions{check: true})
	if !errors.Is(err, ErrProblems) || !strings.Contains(out, "web: not supervised") || !strings.Contains(out, "web: no container\n") {
		t.Errorf("check: %v\n%s", err, out)
	}

	// etcd down: the record is unknown, the rest still prints, --check says so.
	e.Stop()
	out, err = run(statusOptions{})
	if err != nil || !strings.Contains(out, "record:      unknown /skydns/com/example/web/host1: etcd "+e.Endpoint) || !strings.Contains(out, "container:   none") {
		t.Errorf("etcd down: %v\n%s", err, out)
	}
	e.Restart(t)

	tf := filepath.Join(t.TempDir(), "rundock.prom")
	if _, err := run(statusOptions{output: "prometheus", textfile: tf}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tf)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("textfile does not parse: %v\n%s", err, data)
	}
	if f := fams["rundock_record_present"]; f == nil || f.Metric[0].GetGauge().GetValue() != 1 {
		t.Errorf("rundock_record_present: %v\n%s", f, data)
	}
	entries, _ := os.ReadDir(filepath.Dir(tf))
	if len(entries) != 1 {
		t.Errorf("textfile directory holds %d files, want only rundock.prom (no temp file left)", len(entries))
	}
	if _, err := run(statusOptions{output: "prometheus", textfile: filepath.Join(t.TempDir(), "rundock.txt")}); err == nil || !strings.Contains(err.Error(), "*.prom") {
		t.Errorf("textfile not *.prom: %v", err)
	}
}
