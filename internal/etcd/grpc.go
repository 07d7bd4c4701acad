// Package etcd is rundock's etcd v3 client: the few calls the announcer and rundock need
// (Range, Put, DeleteRange, Txn, the lease calls, Watch, Authenticate), spoken as gRPC over
// Go's own net/http HTTP/2 (h2c for http:// endpoints, h2 by ALPN over TLS), with the
// protobuf messages encoded by hand.
//
// Why not the official client: it links gRPC, protobuf and zap. Measured, their
// descriptors and goroutines were about half the heap of an announcer (one runs per
// service, aiming at 2 MiB private memory each), and they cost every rundock start
// ~2 ms and 7.5 MiB of binary.
//
// The client talks to one endpoint at a time and moves to the next on a connection
// failure: a dial error, a broken or GOAWAY'd connection, status Unavailable, a missed
// HTTP/2 ping (a member cut off without a FIN), or a call whose deadline passed without
// an answer. Calls that may run twice (Range, TimeToLive, LeaseKeepAlive, Revoke,
// Authenticate) are retried across the endpoints until their context ends; Put, Txn,
// DeleteRange and Grant only when the request never left (dial and TLS failures). It
// does not log: its callers log once, at the top.
package etcd

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rundock/rundock/internal/backoff"
)

// Config says how to reach etcd; zero durations take the defaults named on each field.
type Config struct {
	Endpoints      []string    // http://HOST:PORT or https://HOST:PORT
	TLS            *tls.Config // for https:// endpoints; nil: the system's CAs
	User, Password string      // etcd auth: New authenticates when User is set

	DialTimeout      time.Duration // TCP and TLS connect, and New's authentication; 5 s
	KeepAliveTime    time.Duration // HTTP/2 ping after this long without a frame; 5 s
	KeepAliveTimeout time.Duration // the ping's answer must come within this; 2 s
	RetryMin         time.Duration // wait after every endpoint failed, growing ...
	RetryMax         time.Duration // ... up to this: 200 ms to 2 s

	// Explain, when set, sees the error of every failed unary call, with what the call
	// asked for, and returns the error the caller gets (etcdclient turns it into one line
	// naming the fix).
	Explain func(ctx context.Context, c Call, err error) error
}

// Call says what a unary call asked for, for Config.Explain.
type Call struct {
	Method string  // e.g. /etcdserverpb.KV/Put
	Verb   string  // read, write, delete, revoke; "" for other calls
	Key    string  // the key read, written or deleted
	Lease  LeaseID // the lease revoked
}

// Client is a connection to an etcd cluster. It is safe for concurrent use.
type Client struct {
	cfg       Config
	endpoints []string // without a trailing '/'
	tr        *http.Transport
	ctx       context.Context // ends on Close: every watch and keepalive stops
	cancel    context.CancelFunc
	wg        sync.WaitGroup // watch and keepalive goroutines

	mu       sync.Mutex
	cur      int    // the endpoint in use
	token    string // auth token, "" without auth
	lastConn error  // the last connection failure, nil after an answer
	ever     bool   // has etcd answered any call (see Answered)
	closed   bool
	streams  map[*stream]struct{} // open watch streams
}

// stream is an open watch stream: which endpoint it is on, and how to end it.
type stream struct {
	endpoint int
	cancel   context.CancelCauseFunc
}

// Client defaults. A lease of 5 s (the shortest rundock allows) must survive the move to
// another member: a silent connection is noticed by an HTTP/2 ping within
// DefaultKeepAliveTime + DefaultKeepAliveTimeout, and a call that found no member
// answering waits DefaultRetryMin, growing to DefaultRetryMax, before trying them again.
const (
	DefaultDialTimeout      = 5 * time.Second
	DefaultKeepAliveTime    = 5 * time.Second
	DefaultKeepAliveTimeout = 2 * time.Second
	DefaultRetryMin         = 200 * time.Millisecond
	DefaultRetryMax         = 2 * time.Second

	// idleConnTimeout closes a connection with no call on it: etcd's gRPC server counts
	// the client's pings on a connection without streams and sends GOAWAY after the
	// third within two hours (its keepalive enforcement policy).
	idleConnTimeout = 12 * time.Second
	// maxMessage bounds one answer: a Range of a whole prefix may be large, a hostile
	// length must not allocate gigabytes.
	maxMessage = 64 << 20
)

// New returns a client of cfg's endpoints. It connects lazily, except that with a User
// it authenticates at once (within DialTimeout), so a wrong password or an unreachable
// etcd fails here.
func New(cfg Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("cannot create etcd client: no endpoints")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.DialTimeout, DefaultDialTimeout)
	def(&cfg.KeepAliveTime, DefaultKeepAliveTime)
	def(&cfg.KeepAliveTimeout, DefaultKeepAliveTimeout)
	def(&cfg.RetryMin, DefaultRetryMin)
	def(&cfg.RetryMax, DefaultRetryMax)
	c := &Client{cfg: cfg}
	for _, e := range cfg.Endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("cannot use etcd endpoint %q: write it as http://HOST:PORT or https://HOST:PORT", e)
		}
		c.endpoints = append(c.endpoints, u.Scheme+"://"+u.Host)
	}
	var protos http.Protocols
	protos.SetHTTP2(true)            // https://: h2 by ALPN
	protos.SetUnencryptedHTTP2(true) // http://: h2c with prior knowledge, as etcd's client port takes it
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: cfg.KeepAliveTime}
	c.tr = &http.Transport{
		DialContext:         dialer.DialContext,
		TLSClientConfig:     cfg.TLS,
		TLSHandshakeTimeout: cfg.DialTimeout,
		DisableCompression:  true,
		IdleConnTimeout:     idleConnTimeout,
		Protocols:           &protos,
		HTTP2:               &http.HTTP2Config{SendPingTimeout: cfg.KeepAliveTime, PingTimeout: cfg.KeepAliveTimeout},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if cfg.User != "" {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.DialTimeout)
		err := c.authenticate(ctx)
		cancel()
		if err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Close stops the client's watches and keepalives, waits for them, and closes its
// connections. It may be called more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	closed := c.closed
	c.closed = true
	c.mu.Unlock()
	if closed {
		return nil
	}
	c.cancel()
	c.wg.Wait()
	c.tr.CloseIdleConnections()
	return nil
}

// spawn runs f on a goroutine that Close waits for; it returns false, and runs nothing,
// when the client is closed.
func (c *Client) spawn(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// Endpoint returns the endpoint calls go to now.
func (c *Client) Endpoint() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endpoints[c.cur]
}

// endpoint returns the endpoint in use, its index, and the auth token.
func (c *Client) endpoint() (string, int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endpoints[c.cur], c.cur, c.token
}

// failed moves to the endpoint after i, unless another call moved on already, and
// remembers err as the last connection failure.
func (c *Client) failed(i int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == i {
		c.cur = (i + 1) % len(c.endpoints)
	}
	if err != nil {
		c.lastConn = err
		// A member that refuses new connections is stopping or gone: a stream still
		// open to it is stale (a stopping etcd serves its old streams for a while but
		// takes no new call, and a member's process may linger), so end it, and its
		// owner watches again where calls go now.
		if unsent(err) {
			for s := range c.streams {
				if s.endpoint == i {
					s.cancel(fmt.Errorf("endpoint %s failed: %w", c.endpoints[i], err))
				}
			}
		}
	}
}

func (c *Client) answered() {
	c.mu.Lock()
	c.lastConn, c.ever = nil, true
	c.mu.Unlock()
}

// Answered reports whether etcd has answered any call of c, with a result or an error
// of its own. Until then a connection etcd closes right after the TLS handshake is,
// with TLS 1.3, most likely etcd refusing the client certificate: the alert saying so
// may be lost when the connection is reset before it is read.
func (c *Client) Answered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ever
}

// Retry policies of a call: which failures may be retried on another endpoint.
type retry int

const (
	retryUnsent retry = iota // only a request that never left (Put, Txn, DeleteRange, Grant)
	retryAll                 // any connection failure: the call may run twice
)

// call runs one unary call: req is the request message, decode reads the answer. A
// failure goes through Config.Explain.
func (c *Client) call(ctx context.Context, what Call, pol retry, req []byte, decode func([]byte) error) error {
	err := c.invoke(ctx, what.Method, pol, req, decode)
	if err != nil && c.cfg.Explain != nil {
		return c.cfg.Explain(ctx, what, err)
	}
	return err
}

func (c *Client) invoke(ctx context.Context, method string, pol retry, req []byte, decode func([]byte) error) error {
	if err := c.ctx.Err(); err != nil {
		return fmt.Errorf("cannot call %s: client closed", method)
	}
	body := make([]byte, 5, 5+len(req))
	binary.BigEndian.PutUint32(body[1:], uint32(len(req)))
	body = append(body, req...)
	bo := backoff.Backoff{Min: c.cfg.RetryMin, Max: c.cfg.RetryMax}
	reauthed, failures := false, 0
	for {
		ep, i, token := c.endpoint()
		msg, err := c.roundTrip(ctx, ep, method, body, token, false)
		if err == nil {
			c.answered()
			if err := decode(msg); err != nil {
				return fmt.Errorf("cannot decode the answer of %s from %s: %w", method, ep, err)
			}
			return nil
		}
		var st *StatusError
		switch {
		case errors.As(err, &st):
			c.answered() // etcd answered, with an error
			if st.Code == CodeUnauthenticated && st.Message == ErrInvalidAuthToken.Error() && c.cfg.User != "" && !reauthed {
				reauthed = true
				if err := c.authenticate(ctx); err != nil {
					return err
				}
				continue
			}
			if st.Code != CodeUnavailable {
				return err
			}
			c.failed(i, nil)
			if pol != retryAll {
				return err
			}
		case ctx.Err() != nil:
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				c.failed(i, nil) // no answer in time: the member may be cut off
			}
			return c.ctxError(ctx)
		default:
			c.failed(i, err)
			if pol != retryAll && !unsent(err) {
				return err
			}
		}
		failures++
		if failures%len(c.endpoints) == 0 && !backoff.Sleep(ctx, bo.Next()) {
			return c.ctxError(ctx)
		}
	}
}

// ContextError is the error of a call whose context ended before etcd answered. Last,
// when not nil, is the connection failure before it: usually the reason why.
type ContextError struct {
	Err  error // ctx.Err()
	Last error
}

func (e *ContextError) Error() string {
	if e.Last == nil {
		return e.Err.Error()
	}
	return e.Err.Error() + " (last connection failure: " + e.Last.Error() + ")"
}

// Unwrap returns both errors: errors.Is finds context.DeadlineExceeded and the cause.
func (e *ContextError) Unwrap() []error {
	if e.Last == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Last}
}

func (c *Client) ctxError(ctx context.Context) error {
	c.mu.Lock()
	last := c.lastConn
	c.mu.Unlock()
	return &ContextError{Err: ctx.Err(), Last: last}
}

// unsent reports whether err means the request never reached etcd: no connection, or
// a TLS handshake that failed.
func unsent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var rh tls.RecordHeaderError
	var alert tls.AlertError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &rh) || errors.As(err, &alert) || errors.As(err, &verify) ||
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// header makes a gRPC request's headers.
func header(token string, leader bool) http.Header {
	h := http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}}
	if token != "" {
		h["Token"] = []string{token}
	}
	if leader {
		h["Hasleader"] = []string{"true"} // etcd refuses the stream when its member has no leader
	}
	return h
}

// roundTrip sends one framed request to ep and returns the one answer message, or a
// *StatusError for a gRPC status other than OK, or the transport's error.
func (c *Client) roundTrip(ctx context.Context, ep, method string, body []byte, token string, leader bool) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep+method, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("cannot make request %s: %w", method, err)
	}
	req.Header = header(token, leader)
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", ep, err)
	}
	defer resp.Body.Close()
	if err := headerStatus(resp); err != nil {
		return nil, err
	}
	var pre [5]byte
	msg, err := readMessage(resp.Body, &pre)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("cannot read answer of %s from %s: %w", method, ep, err)
	}
	if err == nil {
		// The status follows the message, in the trailers, after the end of the body.
		if _, err := readMessage(resp.Body, &pre); err != io.EOF {
			if err == nil {
				err = errors.New("more than one message")
			}
			return nil, fmt.Errorf("cannot read answer of %s from %s: %w", method, ep, err)
		}
	}
	if st := status(resp.Trailer); st != nil {
		if st.Code != CodeOK {
			return nil, st
		}
		if msg == nil {
			return nil, fmt.Errorf("cannot read answer of %s from %s: no message", method, ep)
		}
		return msg, nil
	}
	return nil, fmt.Errorf("cannot read answer of %s from %s: no grpc-status", method, ep)
}

// headerStatus returns the error of a response that is not a gRPC answer, or the
// status of a trailers-only response (an error before any message), nil otherwise.
func headerStatus(resp *http.Response) error {
	if st := status(resp.Header); st != nil && st.Code != CodeOK {
		return st
	}
	if resp.StatusCode != http.StatusOK {
		code := CodeUnknown
		switch resp.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
			code = CodeUnavailable
		}
		return &StatusError{Code: code, Message: "HTTP status " + resp.Status}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/grpc") {
		return &StatusError{Code: CodeUnknown, Message: "not a gRPC answer: content-type " + strconv.Quote(ct)}
	}
	return nil
}

// readMessage reads one length-prefixed gRPC message; io.EOF when the body ended
// cleanly before one.
func readMessage(r io.Reader, pre *[5]byte) ([]byte, error) {
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("truncated message prefix: %w", err)
		}
		return nil, err
	}
	if pre[0] != 0 {
		return nil, fmt.Errorf("compressed message (flag %d), which was not asked for", pre[0])
	}
	n := binary.BigEndian.Uint32(pre[1:])
	if n > maxMessage {
		return nil, fmt.Errorf("message of %d bytes, more than %d", n, maxMessage)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("truncated message: %w", err)
	}
	return msg, nil
}

// status returns the gRPC status in h, nil when h has none.
func status(h http.Header) *StatusError {
	v := h.Get("Grpc-Status")
	if v == "" {
		return nil
	}
	code, err := strconv.Atoi(v)
	if err != nil {
		code = int(CodeUnknown)
	}
	msg := h.Get("Grpc-Message")
	if m, err := url.PathUnescape(msg); err == nil {
		msg = m
	}
	return &StatusError{Code: Code(code), Message: msg}
}

// Code is a gRPC status code.
type Code int

// The gRPC status codes this client looks at.
const (
	CodeOK               Code = 0
	CodeUnknown          Code = 2
	CodeInvalidArgument  Code = 3
	CodeDeadlineExceeded Code = 4
	CodeNotFound         Code = 5
	CodePermissionDenied Code = 7
	CodeOutOfRange       Code = 11
	CodeUnavailable      Code = 14
	CodeUnauthenticated  Code = 16
)

// StatusError is etcd's answer to a call it refused: a gRPC status and its message,
// etcd's own words ("etcdserver: permission denied"). errors.Is matches it with the
// sentinel of the same message.
type StatusError struct {
	Code    Code
	Message string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return "gRPC status " + strconv.Itoa(int(e.Code))
	}
	return e.Message
}

// Is reports whether target is the sentinel error of e's message.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrPermissionDenied, ErrAuthFailed, ErrUserEmpty, ErrInvalidAuthToken,
		ErrLeaseNotFound, ErrCompacted, ErrFutureRev, ErrNoLeader:
		return e.Message == target.Error()
	}
	return false
}

// Errors etcd answers with, by their messages (etcd's api/v3rpc/rpctypes): errors.Is
// finds them in a call's error.
var (
	ErrPermissionDenied = errors.New("etcdserver: permission denied")
	ErrAuthFailed       = errors.New("etcdserver: authentication failed, invalid user ID or password")
	ErrUserEmpty        = errors.New("etcdserver: user name is empty")
	ErrInvalidAuthToken = errors.New("etcdserver: invalid auth token")
	ErrLeaseNotFound    = errors.New("etcdserver: requested lease not found")
	ErrCompacted        = errors.New("etcdserver: mvcc: required revision has been compacted")
	ErrFutureRev        = errors.New("etcdserver: mvcc: required revision is a future revision")
	ErrNoLeader         = errors.New("etcdserver: no leader")
)
