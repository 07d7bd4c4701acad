package dockerapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Message is one event of GET /events.
type Message struct {
	Type     string // container, image, network, ...
	Action   string // start, die, health_status: healthy, ...
	Actor    Actor
	TimeNano int64 `json:"timeNano"`
}

// Actor is the object an event is about.
type Actor struct {
	ID         string
	Attributes map[string]string // name, image, signal, oldName, exitCode, ...
}

// Events subscribes to the engine's events that pass filters (for example
// {"type": {"container"}, "container": {"web"}, "event": {"start", "die"}}: any of a
// key's values, every key). It returns once the engine has accepted the subscription,
// so no event that happens after Events returns is missed, or once that failed.
//
// Events arrive on the first channel until the stream ends; then the second yields why
// (ctx's error after a cancel, the engine's or the connection's error otherwise) and is
// closed. The first channel is never closed: select on both.
func (c *Client) Events(ctx context.Context, filters map[string][]string) (<-chan Message, <-chan error) {
	msgs := make(chan Message)
	errs := make(chan error, 1)
	fail := func(err error) {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		errs <- err
		close(errs)
	}
	// The engine's filter format: every value a key of a map to true.
	f := map[string]map[string]bool{}
	for k, vs := range filters {
		f[k] = map[string]bool{}
		for _, v := range vs {
			f[k][v] = true
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		fail(fmt.Errorf("cannot follow Docker events: %w", err))
		return msgs, errs
	}
	resp, err := c.do(ctx, http.MethodGet, "/events", url.Values{"filters": {string(b)}})
	if err != nil {
		fail(fmt.Errorf("cannot follow Docker events: %w", err))
		return msgs, errs
	}
	go func() {
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var m Message
			if err := dec.Decode(&m); err != nil {
				if errors.Is(err, io.EOF) {
					err = errors.New("the engine ended the stream")
				}
				fail(fmt.Errorf("cannot read Docker events: %w", err))
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				fail(nil)
				return
			}
		}
	}()
	return msgs, errs
}
