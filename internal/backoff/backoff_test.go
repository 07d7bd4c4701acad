package backoff

import (
	"context"
	"testing"
	"time"
)

func TestBackoff_Next(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	bases := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for round := 0; round < 2; round++ {
		for i, base := range bases {
			base *= time.Millisecond
			lo, hi := time.Duration(float64(base)*(1-Jitter)), time.Duration(float64(base)*(1+Jitter))
			if got := b.Next(); got < lo || got > hi {
				t.Fatalf("round %d, retry %d: %s, want %s to %s", round, i, got, lo, hi)
			}
		}
		b.Reset() // after a success the next delay is Min again
	}
}

func TestBackoff_JitterSpreads(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		b := Backoff{Min: time.Second, Max: time.Second}
		seen[b.Next()] = true
	}
	if len(seen) < 10 {
		t.Fatalf("50 first delays took only %d values: no jitter?", len(seen))
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep with a live context returned false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep with a cancelled context returned true")
	}
	if time.Since(start) > time.Second {
		t.Fatal("Sleep did not return at once on a cancelled context")
	}
}
