package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/apply"
)

// Off a terminal: one line per long step the log does not show, no carriage return, no
// repeats for a wait's updates.
func TestProgress_Lines(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, []string{"a", "b", "c"})
	p.event(apply.Event{Service: "a", Step: apply.StepApply})
	p.event(apply.Event{Service: "a", Step: apply.WriteFile, Detail: "write x", Logged: true})
	p.event(apply.Event{Service: "c", Step: apply.StepApply})
	p.event(apply.Event{Service: "c", Step: apply.Pull, Detail: "pulling nginx:1.25", Long: true})
	p.event(apply.Event{Service: "c", Step: apply.Restart, Detail: "restart /etc/sv/docker-c", Long: true, Logged: true})
	p.event(apply.Event{Service: "c", Step: apply.WaitServing, Detail: "waiting for serving: no container c", Long: true, Limit: time.Minute})
	p.event(apply.Event{Service: "c", Step: apply.WaitServing, Detail: "waiting for serving: container x is starting", Long: true, Update: true})
	p.logger().Info("restart /etc/sv/docker-c", "service", "c")
	p.Close()
	out := buf.String()
	want := "[3/3] c: pulling nginx:1.25\n[3/3] c: waiting for serving: no container c\n"
	if !strings.HasPrefix(out, want) || strings.ContainsAny(out, "\r\033") || !strings.Contains(out, `msg="restart /etc/sv/docker-c"`) {
		t.Errorf("output\n%q\nwant it to start with\n%q, no carriage return, and the log line", out, want)
	}
}

// On a terminal: the status line is rewritten in place, cut to the width, and log lines
// clear it first; Close leaves no status line.
func TestProgress_Terminal(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, tty: true, width: 60, names: []string{"web"}, pos: -1, stop: make(chan struct{})}
	p.event(apply.Event{Service: "web", Step: apply.WaitServing, Detail: "waiting for serving", Long: true, Started: time.Now().Add(-3 * time.Second), Limit: time.Minute})
	if got, want := buf.String(), "\r\033[K[1/1] web: waiting for serving (3 s of 60)"; got != want {
		t.Errorf("status line %q, want %q", got, want)
	}
	buf.Reset()
	p.event(apply.Event{Service: "web", Step: apply.Pull, Detail: "pulling registry.example.com/a/very/long/image/name/that/goes/on:tag", Long: true})
	if s := strings.TrimPrefix(buf.String(), "\r\033[K"); len([]rune(s)) != 59 || !strings.HasSuffix(s, "…") {
		t.Errorf("long line not cut to 59 runes: %q", s)
	}
	buf.Reset()
	p.Write([]byte("log line\n"))
	if !strings.HasPrefix(buf.String(), "\r\033[Klog line\n\r\033[K[1/1] web") {
		t.Errorf("log line around the status line: %q", buf.String())
	}
	buf.Reset()
	p.Close()
	if buf.String() != "\r\033[K" {
		t.Errorf("Close wrote %q", buf.String())
	}
}
