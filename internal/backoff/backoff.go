// Package backoff spaces the retries of rundock's long-running loops: capped exponential
// delays with jitter, so announcers and watchers on many hosts do not retry in step, and a
// reset after each success, so the next failure is retried quickly again.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Jitter is the spread of each delay: Next returns its base delay ±20%.
const Jitter = 0.2

// Backoff hands out retry delays: Min first, then twice the previous one, at most Max,
// each spread by Jitter. The zero value is not usable: set Min and Max. It is not safe for
// concurrent use: one loop owns it.
type Backoff struct {
	Min, Max time.Duration

	d time.Duration // the last base delay; 0 after Reset
}

// Next returns the delay before the next retry and doubles the base for the one after.
func (b *Backoff) Next() time.Duration {
	b.d = min(max(2*b.d, b.Min), b.Max)
	return b.d + time.Duration((rand.Float64()*2*Jitter-Jitter)*float64(b.d))
}

// Reset starts again from Min: call it after a success.
func (b *Backoff) Reset() { b.d = 0 }

// Sleep waits d or until ctx ends, and reports whether the full d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
