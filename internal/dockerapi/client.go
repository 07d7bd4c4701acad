// Package dockerapi is a small client of the Docker Engine API over net/http: the few
// calls rundock and the announcer make (inspect, list, remove, logs, pull, events, and
// start, stop, kill and wait for the latency bench), with JSON types that hold only the
// fields they read. It replaces the Docker SDK, which links OpenTelemetry and much else
// into every binary and every announcer process.
//
// The engine is found as the Docker CLI and the SDK's FromEnv find it:
//
//   - DOCKER_HOST: unix:///path or tcp://host[:port]; unset means
//     unix:///var/run/docker.sock. Other schemes (ssh://, npipe://, fd://) are refused
//     with an error that says so.
//   - DOCKER_TLS_VERIFY: when non-empty, a tcp:// engine is spoken to over TLS, its
//     certificate verified against ca.pem and the client authenticated with cert.pem
//     and key.pem from DOCKER_CERT_PATH (default ~/.docker). TLS without verification,
//     which the SDK did when DOCKER_CERT_PATH was set without DOCKER_TLS_VERIFY, is
//     refused with an error.
//   - DOCKER_API_VERSION: when set, that API version is used as is, with no negotiation.
package dockerapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultHost is the engine's address when DOCKER_HOST is unset.
const DefaultHost = "unix:///var/run/docker.sock"

// The API version is negotiated once per Client from GET /_ping's API-Version header
// rather than fixed in the path, because no single version works with every engine in
// use: Docker 29 refuses anything older than 1.44, and Debian bookworm's docker.io
// (20.10) refuses anything newer than 1.41. Every field this package reads is in every
// version from minVersion to maxVersion with the same meaning.
const (
	// minVersion is the oldest version with everything read here (State.Health, the
	// events' Action and Actor, the list's State); Docker 28's own minimum, too.
	minVersion = "1.24"
	// maxVersion is the newest version used, that of the SDK this package replaced
	// (v28.5), so an engine newer than that is spoken to as before.
	maxVersion = "1.51"
)

// Error is an error answer of the engine: its HTTP status and its "message".
type Error struct {
	StatusCode int
	Message    string
}

func (e *Error) Error() string {
	return e.Message
}

// IsNotFound reports whether err is the engine's answer that the container or image does
// not exist (HTTP 404).
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// Client talks to one Docker engine. It is safe for concurrent use; Close releases its
// idle connections.
type Client struct {
	host string // as configured, for errors
	base string // scheme and host of the request URLs
	http *http.Client

	mu      sync.Mutex
	version string // "" until negotiated
}

// FromEnv returns a client of the engine that DOCKER_HOST, DOCKER_TLS_VERIFY,
// DOCKER_CERT_PATH and DOCKER_API_VERSION name (see the package comment).
func FromEnv() (*Client, error) {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = DefaultHost
	}
	var tc *tls.Config
	if os.Getenv("DOCKER_TLS_VERIFY") != "" {
		dir := os.Getenv("DOCKER_CERT_PATH")
		if dir == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, fmt.Errorf("cannot find the Docker TLS files: DOCKER_CERT_PATH is unset and %w", err)
			}
			dir = filepath.Join(home, ".docker")
		}
		var err error
		if tc, err = tlsConfig(dir); err != nil {
			return nil, err
		}
	} else if os.Getenv("DOCKER_CERT_PATH") != "" {
		return nil, errors.New("DOCKER_CERT_PATH is set without DOCKER_TLS_VERIFY: TLS without verifying the engine's certificate is not supported; set DOCKER_TLS_VERIFY=1")
	}
	c, err := newClient(host, tc)
	if err != nil {
		return nil, err
	}
	c.version = os.Getenv("DOCKER_API_VERSION")
	return c, nil
}

// New returns a client of the engine at host (unix:///path or tcp://host:port), without
// TLS.
func New(host string) (*Client, error) {
	return newClient(host, nil)
}

func newClient(host string, tc *tls.Config) (*Client, error) {
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("cannot use DOCKER_HOST %q: %w", host, err)
	}
	c := &Client{host: host}
	tr := &http.Transport{MaxIdleConns: 4, IdleConnTimeout: 0}
	switch u.Scheme {
	case "unix":
		if u.Path == "" {
			return nil, fmt.Errorf("cannot use DOCKER_HOST %q: no socket path (want unix:///path)", host)
		}
		if tc != nil {
			return nil, fmt.Errorf("cannot use DOCKER_HOST %q: DOCKER_TLS_VERIFY is set, TLS is for tcp:// only", host)
		}
		path := u.Path
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		c.base = "http://docker"
	case "tcp":
		addr := u.Host
		if u.Port() == "" {
			port := "2375"
			if tc != nil {
				port = "2376"
			}
			addr = net.JoinHostPort(u.Hostname(), port)
		}
		if u.Hostname() == "" {
			return nil, fmt.Errorf("cannot use DOCKER_HOST %q: no host (want tcp://host:port)", host)
		}
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("cannot use DOCKER_HOST %q: an engine under a path prefix is not supported (want tcp://host:port)", host)
		}
		tr.Proxy = http.ProxyFromEnvironment
		tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		c.base = "http://" + addr
		if tc != nil {
			tr.TLSClientConfig = tc
			c.base = "https://" + addr
		}
	default:
		return nil, fmt.Errorf("cannot use DOCKER_HOST %q: only unix:// and tcp:// engines are supported", host)
	}
	c.http = &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return c, nil
}

func tlsConfig(dir string) (*tls.Config, error) {
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("cannot read the Docker CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("cannot read the Docker CA certificate %s: no PEM certificate in it", filepath.Join(dir, "ca.pem"))
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return nil, fmt.Errorf("cannot read the Docker client certificate in %s: %w", dir, err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Close releases the client's idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// apiVersion returns the version to put in request paths, negotiating it on first use.
// A failed ping is not remembered: the next request asks again.
func (c *Client) apiVersion(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != "" {
		return c.version, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/_ping", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.send(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	v := resp.Header.Get("Api-Version")
	switch {
	case v == "":
		v = minVersion // engines before 1.25 do not say
	case olderThan(v, minVersion):
		return "", fmt.Errorf("the Docker engine at %s speaks API %s, older than %s, the oldest supported", c.host, v, minVersion)
	case olderThan(maxVersion, v):
		v = maxVersion
	}
	c.version = v
	return v, nil
}

// negotiated returns the API version in use ("" before the first request).
func (c *Client) negotiated() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// olderThan reports whether API version a ("1.41") is older than b.
func olderThan(a, b string) bool {
	am, an, _ := strings.Cut(a, ".")
	bm, bn, _ := strings.Cut(b, ".")
	ai, _ := strconv.Atoi(am)
	bi, _ := strconv.Atoi(bm)
	if ai != bi {
		return ai < bi
	}
	aj, _ := strconv.Atoi(an)
	bj, _ := strconv.Atoi(bn)
	return aj < bj
}

// send does req and turns an error status into an *Error.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("cannot reach the Docker engine at %s: %w", c.host, err)
	}
	if resp.StatusCode < 400 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var m struct {
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &m) == nil && m.Message != "" {
		msg = m.Message
	}
	if msg == "" {
		msg = resp.Status
	}
	return nil, &Error{StatusCode: resp.StatusCode, Message: msg}
}

// do sends a request to the versioned path ("/containers/json"); the caller closes the
// answer's body.
func (c *Client) do(ctx context.Context, method, path string, query url.Values) (*http.Response, error) {
	v, err := c.apiVersion(ctx)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(c.base)
	if err != nil {
		return nil, err
	}
	// Path, not RawPath: an image reference keeps its slashes (/images/a/b:1/json is
	// what the engine routes), and what a URL cannot hold is escaped.
	u.Path = "/v" + v + path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	return c.send(req)
}

// getJSON decodes the answer of a GET into out.
func (c *Client) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	resp, err := c.do(ctx, http.MethodGet, path, query)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("cannot decode the engine's answer: %w", err)
	}
	return nil
}

// call sends a request whose answer's body is not needed.
func (c *Client) call(ctx context.Context, method, path string, query url.Values) error {
	resp, err := c.do(ctx, method, path, query)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.Body.Close()
}
