package apply

import (
	"context"
	"time"
)

// Event is a step of an apply as it starts, for a progress display: Execute reports each
// action, and the waits of a deploy report again while they wait, at most once a second.
type Event struct {
	// Service is the service being applied.
	Service string
	// Step is the action's kind (Pull, WaitServing, ...), or StepApply as a service's
	// plan starts to run, StepDrain while the old container drains and stops.
	Step Kind
	// Detail says what the step does or, in a wait, what it still waits for.
	Detail string
	// Long is true for a step that can take seconds or minutes (pull, stop, restart,
	// the waits), the ones a line-oriented display prints.
	Long bool
	// Logged is true for an action the executor also logs (Options.Logger), so a
	// line-oriented display need not repeat it.
	Logged bool
	// Started is when the step started; Limit how long it may take (0: unknown).
	Started time.Time
	Limit   time.Duration
	// Update is true for a later report of a step already reported.
	Update bool
}

// Steps that are no action of a plan.
const (
	// StepApply starts the execution of one service's plan.
	StepApply Kind = "apply"
	// StepDrain is the wait for the container a deploy replaces to drain and stop.
	StepDrain Kind = "drain"
)

// progressInterval is the least time between two reports of one wait.
const progressInterval = time.Second

type progressKey struct{}

// WithProgress returns a context under which Apply and Services report their steps to f,
// which must return quickly. The progress sink rides on the context rather than Options
// because it belongs to one call's caller, like a deadline, and reaches the waits deep in
// a deploy without being passed down; the Ansible module never sets it, so it prints
// nothing but its JSON.
func WithProgress(ctx context.Context, f func(Event)) context.Context {
	return context.WithValue(ctx, progressKey{}, f)
}

// report sends e to the context's progress function, if any.
func report(ctx context.Context, e Event) {
	if f, ok := ctx.Value(progressKey{}).(func(Event)); ok && f != nil {
		if e.Started.IsZero() {
			e.Started = time.Now()
		}
		f(e)
	}
}

// ticker reports a wait's progress: the first call reports the step, later ones at most
// once per progressInterval.
type ticker struct {
	ctx   context.Context
	e     Event
	last  time.Time
	begun bool
}

func newTicker(ctx context.Context, service string, step Kind, limit time.Duration) *ticker {
	return &ticker{ctx: ctx, e: Event{Service: service, Step: step, Long: true, Started: time.Now(), Limit: limit}}
}

// tick reports detail unless the last report is less than progressInterval old.
func (t *ticker) tick(detail string) {
	now := time.Now()
	if t.begun && now.Sub(t.last) < progressInterval {
		return
	}
	t.e.Detail, t.e.Update = detail, t.begun
	t.begun, t.last = true, now
	report(t.ctx, t.e)
}

// actionEvent is the event of an action that starts.
func actionEvent(svc string, a Action, stopWait time.Duration) Event {
	e := Event{Service: svc, Step: a.Kind, Detail: a.String(), Logged: !a.Quiet}
	switch a.Kind {
	case Pull:
		e.Long, e.Limit, e.Detail = true, pullTimeout, "pulling "+a.Path
	case Restart, Stop, Unlink:
		e.Long, e.Limit = true, stopWait
		if a.Async {
			e.Long = false // sv term returns at once; the drain is waited for later
		}
	case WaitPickup:
		e.Long, e.Limit = true, pickupTimeout
	case WaitServing:
		e.Long, e.Detail = true, "waiting for serving"
	case StartNext:
		e.Long, e.Limit = true, nextStartTimeout
	case WaitNext:
		e.Long, e.Detail = true, "waiting for the new container beside the old one"
	}
	return e
}
