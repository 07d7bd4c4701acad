package upstreams

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/nginx"
	"github.com/rundock/rundock/internal/testenv"
)

// simulate drives a debounce with a fake clock the way Watcher.watch does: changes at the
// given offsets, each render taking renderTook, and returns the offsets of the renders and
// the changes each of them took in.
func simulate(quiet, maxDelay, renderTook time.Duration, changes []time.Duration) (renders []time.Duration, batches []int) {
	t0 := time.Unix(1_000_000, 0)
	d := debounce{quiet: quiet, maxDelay: maxDelay}
	var (
		deadline time.Time // the timer; zero when stopped
		clock    = t0      // the loop is busy rendering until clock
		held     int
	)
	render := func(at time.Time) {
		renders = append(renders, at.Sub(t0))
		batches = append(batches, held)
		held = 0
		clock = at.Add(renderTook)
		d.rendered(clock)
		deadline = time.Time{}
	}
	for _, off := range changes {
		at := t0.Add(off)
		if !deadline.IsZero() && !deadline.After(at) {
			render(deadline)
		}
		if clock.After(at) {
			at = clock // the event waited in the channel while rendering
		}
		held++
		now, wait := d.change(at)
		if now {
			render(at)
			continue
		}
		deadline = at.Add(wait)
	}
	if !deadline.IsZero() {
		render(deadline)
	}
	return renders, batches
}

func every(n int, step time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i) * step
	}
	return out
}

func TestDebounce(t *testing.T) {
	const q, max = 200 * time.Millisecond, 2 * time.Second
	ms := time.Millisecond
	tests := []struct {
		name        string
		took        time.Duration
		changes     []time.Duration
		wantRenders []time.Duration
		wantBatches []int
	}{
		{name: "lone change renders at once", changes: []time.Duration{0},
			wantRenders: []time.Duration{0}, wantBatches: []int{1}},
		{name: "lone changes further apart than quiet each render at once",
			changes:     []time.Duration{0, 300 * ms, 600 * ms},
			wantRenders: []time.Duration{0, 300 * ms, 600 * ms}, wantBatches: []int{1, 1, 1}},
		{name: "a second change within quiet waits quiet after it",
			changes:     []time.Duration{0, 50 * ms},
			wantRenders: []time.Duration{0, 250 * ms}, wantBatches: []int{1, 1}},
		{name: "a pair then a lone change",
			changes:     []time.Duration{0, 50 * ms, 1000 * ms},
			wantRenders: []time.Duration{0, 250 * ms, 1000 * ms}, wantBatches: []int{1, 1, 1}},
		{name: "a change just after a trailing render is held again",
			changes:     []time.Duration{0, 50 * ms, 300 * ms},
			wantRenders: []time.Duration{0, 250 * ms, 500 * ms}, wantBatches: []int{1, 1, 1}},
		{name: "burst of 50 in 2 s: leading render, then one at max delay",
			changes:     every(50, 40*ms),
			wantRenders: []time.Duration{0, 40*ms + max}, wantBatches: []int{1, 49}},
		{name: "burst of 50 in 2 s with 30 ms renders",
			took: 30 * ms, changes: every(50, 40*ms),
			wantRenders: []time.Duration{0, 40*ms + max}, wantBatches: []int{1, 49}},
		{name: "burst of 100 in 4 s: one render per max delay",
			changes:     every(100, 40*ms),
			wantRenders: []time.Duration{0, 40*ms + max, 40*ms + 2*max}, wantBatches: []int{1, 50, 49}},
		{name: "changes in one instant: one leading render, one trailing",
			changes:     []time.Duration{0, 0, 0, 0},
			wantRenders: []time.Duration{0, q}, wantBatches: []int{1, 3}},
		{name: "change during a slow render is held",
			took: 500 * ms, changes: []time.Duration{0, 100 * ms},
			wantRenders: []time.Duration{0, 500*ms + q}, wantBatches: []int{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			renders, batches := simulate(q, max, tt.took, tt.changes)
			if !slices.Equal(renders, tt.wantRenders) || !slices.Equal(batches, tt.wantBatches) {
				t.Errorf("renders at %v taking %v changes; want %v taking %v", renders, batches, tt.wantRenders, tt.wantBatches)
			}
		})
	}
}

// TestDebounce_BurstReloads: any burst of changes no further apart than quiet costs one
// render at its start and one per max delay it lasts, whatever the spacing.
func TestDebounce_BurstReloads(t *testing.T) {
	const q, max = 200 * time.Millisecond, 2 * time.Second
	for _, step := range []time.Duration{time.Millisecond, 10 * time.Millisecond, 40 * time.Millisecond, 199 * time.Millisecond} {
		n := int(2*time.Second/step) + 1
		if n > 50 {
			n = 50
		}
		changes := every(n, step)
		renders, batches := simulate(q, max, 0, changes)
		span := changes[len(changes)-1]
		limit := 2 + int(span/max)
		total := 0
		for _, b := range batches {
			total += b
		}
		if len(renders) > limit || total != n {
			t.Errorf("step %v: %d changes over %v rendered %d times (%v), %d changes rendered; want at most %d renders, all %d changes",
				step, n, span, len(renders), renders, total, limit, n)
		}
	}
}

// TestDebounce_AfterListing: the render after listing counts, so a change right after it waits.
func TestDebounce_AfterListing(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	d := debounce{quiet: 200 * time.Millisecond, maxDelay: 2 * time.Second, last: t0}
	if now, wait := d.change(t0.Add(50 * time.Millisecond)); now || wait != 200*time.Millisecond {
		t.Errorf("change 50 ms after the listing's render: now=%v wait=%v; want held 200ms", now, wait)
	}
	d = debounce{quiet: 200 * time.Millisecond, maxDelay: 2 * time.Second, last: t0}
	if now, _ := d.change(t0.Add(time.Second)); !now {
		t.Error("change 1 s after the listing's render was held; want rendered at once")
	}
}

// TestWatcher_NamedPortsAndMetadata runs the Watcher on a real etcd and installs through
// the real nginx -t: a named-port record or a metadata record that is put, changed or
// deleted below the domain is rendered like an instance record (the watch and the listing
// cover the domain's whole subtree, not only NAME/INSTANCE).
func TestWatcher_NamedPortsAndMetadata(t *testing.T) {
	testenv.Need(t, "nginx")
	e := testenv.StartEtcd(t)
	client := testenv.EtcdClient(t, e.Endpoint)
	dir := t.TempDir()
	output := filepath.Join(dir, "up.conf")
	n := &nginx.Installer{Output: output, CheckCmd: "nginx -t -q -p " + dir + " -c " + nginxConf(t, dir, output), ReloadCmd: "true"}
	cfg := &Config{ServiceMap: map[string]Entry{
		"web":         {},
		"web_canary":  {Service: "web", Tags: []string{"canary"}},
		"web_metrics": {Service: "web", PortName: "metrics"},
	}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tmpl, err := NewTemplate("built-in", DefaultTemplate)
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.SyncBuffer
	w := NewWatcher(testenv.WireClient(t, e.Endpoint), domain, cfg, tmpl, n)
	w.Quiet, w.MaxDelay = 10*time.Millisecond, 50*time.Millisecond
	w.Log = slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	put := func(k, v string) {
		if _, err := client.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	del := func(k string) {
		if _, err := client.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	// servers is each upstream's server lines in the installed file.
	servers := func() map[string]string {
		b, _ := os.ReadFile(output)
		out := map[string]string{}
		var cur string
		for _, l := range strings.Split(string(b), "\n") {
			l = strings.TrimSpace(l)
			switch {
			case strings.HasPrefix(l, "upstream "):
				cur = strings.Fields(l)[1]
				out[cur] = ""
			case strings.HasPrefix(l, "server "):
				out[cur] = strings.TrimSpace(out[cur] + " " + strings.TrimSuffix(strings.Fields(l)[1], ";"))
			}
		}
		return out
	}
	steps := []struct {
		name string
		edit func()
		want map[string]string
	}{
		{name: "instance records only", edit: func() {
			put(key(t, "web", "a"), `{"host":"10.0.0.1","port":8080,"ttl":60}`)
			put(key(t, "web", "b"), `{"host":"10.0.0.2","port":8080,"ttl":60}`)
		}, want: map[string]string{"docker_web": "10.0.0.1:8080 10.0.0.2:8080", "docker_web_canary": Down, "docker_web_metrics": Down}},
		{name: "metadata put", edit: func() { put(textKey(t, "web", "b"), meta("b", "canary")) },
			want: map[string]string{"docker_web": "10.0.0.1:8080 10.0.0.2:8080", "docker_web_canary": "10.0.0.2:8080", "docker_web_metrics": Down}},
		{name: "metadata changed", edit: func() {
			put(textKey(t, "web", "b"), meta("b", "stable"))
			put(textKey(t, "web", "a"), meta("a", "canary"))
		},
			want: map[string]string{"docker_web": "10.0.0.1:8080 10.0.0.2:8080", "docker_web_canary": "10.0.0.1:8080", "docker_web_metrics": Down}},
		{name: "named port put", edit: func() { put(portKey(t, "web", "metrics", "a"), `{"host":"10.0.0.1","port":9100,"ttl":60}`) },
			want: map[string]string{"docker_web": "10.0.0.1:8080 10.0.0.2:8080", "docker_web_canary": "10.0.0.1:8080", "docker_web_metrics": "10.0.0.1:9100"}},
		{name: "named port changed", edit: func() { put(portKey(t, "web", "metrics", "a"), `{"host":"10.0.0.1","port":9101,"ttl":60}`) },
			want: map[string]string{"docker_web": "10.0.0.1:8080 10.0.0.2:8080", "docker_web_canary": "10.0.0.1:8080", "docker_web_metrics": "10.0.0.1:9101"}},
		{name: "metadata deleted", edit: func() { del(textKey(t, "web", "a")) },
			want: map[string]string{"docker_web": "10.0.0.1:8080 10.0.0.2:8080", "docker_web_canary": Down, "docker_web_metrics": "10.0.0.1:9101"}},
		{name: "named port deleted", edit: func() { del(portKey(t, "web", "metrics", "a")) },
			want: map[string]string{"docker_web": "10.0.0.1:8080 10.0.0.2:8080", "docker_web_canary": Down, "docker_web_metrics": Down}},
	}
	for _, st := range steps {
		st.edit()
		testenv.EventuallyMsg(t, 5*time.Second, func() string {
			return fmt.Sprintf("%s: upstreams %v, want %v\nlog:\n%s", st.name, servers(), st.want, logs.String())
		}, func() bool { return maps.Equal(servers(), st.want) })
	}
}
