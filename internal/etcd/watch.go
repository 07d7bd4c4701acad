package etcd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// EventType says what happened to a watched key.
type EventType int

// Event types, as etcd numbers them.
const (
	EventTypePut    EventType = 0
	EventTypeDelete EventType = 1
)

func (t EventType) String() string {
	switch t {
	case EventTypePut:
		return "PUT"
	case EventTypeDelete:
		return "DELETE"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one change of a watched key; Kv is the key after it (for a delete: the key
// and the revision of the delete).
type Event struct {
	Type   EventType
	Kv     *KeyValue
	PrevKv *KeyValue
}

// WatchResponse is one answer of a watch: events, or the watch's end (Canceled, with
// Err saying why).
type WatchResponse struct {
	Header          ResponseHeader
	WatchID         int64
	Created         bool
	Canceled        bool
	CompactRevision int64 // the watch's start revision was compacted: watch from this one
	CancelReason    string
	Events          []*Event

	err error
}

// Err returns why the watch ended, nil when it goes on: ErrCompacted for a start
// revision that was compacted, etcd's reason for a watch it canceled, the failure of
// the stream.
func (r WatchResponse) Err() error {
	switch {
	case r.err != nil:
		return r.err
	case r.CompactRevision != 0:
		return fmt.Errorf("%w (compacted at revision %d)", &StatusError{Code: CodeOutOfRange, Message: ErrCompacted.Error()}, r.CompactRevision)
	case r.Canceled && r.CancelReason != "":
		return &StatusError{Code: CodeUnknown, Message: r.CancelReason}
	case r.Canceled:
		return errors.New("watch canceled by etcd")
	}
	return nil
}

// WatchOptions are the choices of a watch.
type WatchOptions struct {
	Prefix        bool  // watch every key starting with the key
	Rev           int64 // the first revision to see; 0: from now
	RequireLeader bool  // refuse (and end) the watch when the member has no leader
}

const methodWatch = "/etcdserverpb.Watch/Watch"

// Watch watches key (with o.Prefix, every key below it) from o.Rev and sends each batch
// of events on the returned channel. It does not re-establish a watch: when the stream
// fails or etcd cancels the watch, a last answer with Canceled set and Err saying why is
// sent and the channel closes. It closes without that answer when ctx ends or the
// client is closed.
func (c *Client) Watch(ctx context.Context, key string, o WatchOptions) <-chan WatchResponse {
	ch := make(chan WatchResponse)
	if !c.spawn(func() { defer close(ch); c.watch(ctx, key, o, ch) }) {
		close(ch)
	}
	return ch
}

func (c *Client) watch(parent context.Context, key string, o WatchOptions, ch chan<- WatchResponse) {
	// ctx ends with the caller's, on Close, or when the stream's endpoint fails.
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	defer context.AfterFunc(c.ctx, func() { cancel(nil) })()
	send := func(r WatchResponse) bool {
		select {
		case ch <- r:
			return true
		case <-parent.Done():
			return false
		case <-c.ctx.Done():
			return false
		}
	}
	fail := func(err error) {
		if parent.Err() != nil || c.ctx.Err() != nil {
			return // ended on purpose: no news
		}
		if cause := context.Cause(ctx); ctx.Err() != nil && cause != nil {
			err = cause
		}
		send(WatchResponse{Canceled: true, err: err})
	}
	end := ""
	if o.Prefix {
		end = prefixEnd(key)
	}
	req := appendWatchCreate(make([]byte, 5, 64), key, end, o.Rev)
	binary.BigEndian.PutUint32(req[1:5], uint32(len(req)-5))
	resp, i, err := c.openWatch(ctx, req, o.RequireLeader)
	if err != nil {
		fail(fmt.Errorf("cannot watch %s: %w", key, err))
		return
	}
	// End the request body first: closing the response waits for its writer.
	defer func() { cancel(nil); resp.Body.Close() }()
	s := &stream{endpoint: i, cancel: cancel}
	c.mu.Lock()
	if c.streams == nil {
		c.streams = map[*stream]struct{}{}
	}
	c.streams[s] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.streams, s)
		c.mu.Unlock()
	}()
	var pre [5]byte
	for {
		msg, err := readMessage(resp.Body, &pre)
		if err == io.EOF {
			err = errors.New("stream ended")
			if st := status(resp.Trailer); st != nil && st.Code != CodeOK {
				err = st
			}
		}
		if err != nil {
			fail(fmt.Errorf("watch of %s ended: %w", key, err))
			return
		}
		wr, err := decodeWatch(msg)
		if err != nil {
			fail(fmt.Errorf("watch of %s: cannot decode an answer: %w", key, err))
			return
		}
		if wr.Canceled || wr.CompactRevision != 0 {
			wr.Canceled = true
			send(*wr)
			return
		}
		if len(wr.Events) == 0 {
			continue // created, or a progress notice
		}
		if !send(*wr) {
			return
		}
	}
}

// openWatch opens a watch stream whose first message is req (framed), on the endpoint in
// use or, when it cannot be reached or has no leader, on the next ones, each tried once.
// It returns the stream's response and the index of its endpoint.
func (c *Client) openWatch(ctx context.Context, req []byte, leader bool) (*http.Response, int, error) {
	var last error
	reauthed := false
	for tries := 0; tries < len(c.endpoints); {
		ep, i, token := c.endpoint()
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost, ep+methodWatch, &streamBody{msg: req, done: ctx.Done(), closed: make(chan struct{})})
		if err != nil {
			return nil, 0, err
		}
		hr.Header = header(token, leader)
		resp, err := c.tr.RoundTrip(hr)
		if err != nil {
			if ctx.Err() != nil {
				return nil, 0, ctx.Err()
			}
			last = fmt.Errorf("cannot reach %s: %w", ep, err)
			c.failed(i, last)
			tries++
			continue
		}
		err = headerStatus(resp)
		if err == nil {
			c.answered()
			return resp, i, nil
		}
		resp.Body.Close()
		var st *StatusError
		switch {
		case errors.As(err, &st) && st.Code == CodeUnauthenticated && st.Message == ErrInvalidAuthToken.Error() && c.cfg.User != "" && !reauthed:
			reauthed = true
			if err := c.authenticate(ctx); err != nil {
				return nil, 0, err
			}
		case errors.As(err, &st) && st.Code == CodeUnavailable:
			last = err
			c.failed(i, nil)
			tries++
		default:
			return nil, 0, err
		}
	}
	return nil, 0, last
}

// streamBody is the request body of a stream: its first message, then nothing until the
// stream ends or the transport closes the body (ending the body would half-close the
// stream).
type streamBody struct {
	msg    []byte
	done   <-chan struct{}
	once   sync.Once
	closed chan struct{}
}

func (b *streamBody) Read(p []byte) (int, error) {
	if len(b.msg) > 0 {
		n := copy(p, b.msg)
		b.msg = b.msg[n:]
		return n, nil
	}
	select {
	case <-b.done:
	case <-b.closed:
	}
	return 0, errors.New("stream closed")
}

// Close ends a blocked Read: the transport closes the body when the stream goes.
func (b *streamBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}
