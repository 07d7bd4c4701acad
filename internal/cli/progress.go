package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/rundock/rundock/internal/apply"
)

// progress shows apply's steps (apply.Event) on stderr. On a terminal it keeps one status
// line at the bottom, rewritten in place and once a second, "[12/200] web: waiting for
// serving: ... (3 s of 60)", with the log lines scrolling above it. Elsewhere (Ansible's
// command module, CI, a pipe) it writes one plain line per long step as it starts that
// the log does not already show (pull, drain, wait for serving), and never a carriage
// return.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	width int
	names []string
	pos   int // index into names of the service being applied; -1 before the first
	cur   apply.Event
	line  bool // the status line is on the screen
	stop  chan struct{}
	done  sync.WaitGroup
}

// terminal reports whether w is a terminal and its width: the TCGETS ioctl golang.org/x/term
// makes, from golang.org/x/sys, which rundock already requires (x/term it does not).
func terminal(w io.Writer) (bool, int) {
	f, ok := w.(*os.File)
	if !ok {
		return false, 0
	}
	if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err != nil {
		return false, 0
	}
	width := 80
	if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
		width = int(ws.Col)
	}
	return true, width
}

// newProgress shows the progress of applying the services names, in their order, on w.
func newProgress(w io.Writer, names []string) *progress {
	p := &progress{w: w, names: names, pos: -1, stop: make(chan struct{})}
	p.tty, p.width = terminal(w)
	if p.tty {
		p.done.Add(1)
		go p.tick()
	}
	return p
}

// logger is the command's logger (see logger) writing through p, so that log lines and
// the status line do not overwrite each other.
func (p *progress) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(p, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// tick redraws the status line every second, so the time of a step that sends no
// events (a pull, sv restart) still moves.
func (p *progress) tick() {
	defer p.done.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			if p.cur.Service != "" {
				p.draw()
			}
			p.mu.Unlock()
		}
	}
}

// event takes one event from apply.
func (p *progress) event(e apply.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pos < 0 || p.names[p.pos] != e.Service {
		for i := p.pos + 1; i < len(p.names); i++ {
			if p.names[i] == e.Service {
				p.pos = i
				break
			}
		}
	}
	p.cur = e
	if p.tty {
		p.draw()
		return
	}
	if e.Long && !e.Update && !e.Logged {
		fmt.Fprintln(p.w, p.text(e, false))
	}
}

// text is the event as one line: position, service, detail and, with elapsed, the time.
func (p *progress) text(e apply.Event, elapsed bool) string {
	s := fmt.Sprintf("[%d/%d] %s", p.pos+1, len(p.names), e.Service)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if elapsed && e.Long {
		secs := int(time.Since(e.Started) / time.Second)
		if e.Limit > 0 {
			s += fmt.Sprintf(" (%d s of %d)", secs, int(e.Limit/time.Second))
		} else {
			s += fmt.Sprintf(" (%d s)", secs)
		}
	}
	return s
}

// draw rewrites the status line, cut to the terminal's width (a wrapped line could not be
// rewritten in place).
func (p *progress) draw() {
	s := p.text(p.cur, true)
	if limit := p.width - 1; limit > 1 && utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit-1]) + "…"
	}
	fmt.Fprint(p.w, "\r\033[K"+s)
	p.line = true
}

// clear removes the status line.
func (p *progress) clear() {
	if p.line {
		fmt.Fprint(p.w, "\r\033[K")
		p.line = false
	}
}

// Write writes log lines above the status line.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	n, err := p.w.Write(b)
	if p.tty && p.cur.Service != "" {
		p.draw()
	}
	return n, err
}

// Close stops the display and removes the status line; the results print after it.
func (p *progress) Close() {
	p.mu.Lock()
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.clear()
	p.cur = apply.Event{}
	p.mu.Unlock()
	p.done.Wait()
}
