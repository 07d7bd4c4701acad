package etcdclient

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/rundock/rundock/internal/etcd"
)

// Error is an etcd failure explained on one line: the endpoints, what went wrong (a
// refused password, a permission the user lacks, a certificate the other side does not
// trust, no answer) and the fix. errors.Is still finds the client's error it wraps
// (etcd.ErrPermissionDenied, context.DeadlineExceeded, ...).
type Error struct {
	Endpoints string // comma-separated
	Problem   string // what went wrong, with the client's own words where they help
	Fix       string
	err       error
}

func (e *Error) Error() string {
	return fmt.Sprintf("etcd %s: %s: %s", e.Endpoints, e.Problem, e.Fix)
}

// Unwrap returns the client's error: an *etcd.StatusError, an *etcd.ContextError (a
// call whose context ended, with the connection failure before it) or a transport error.
func (e *Error) Unwrap() error { return e.err }

// explainer turns the failures of one client's unary calls into an *Error when it
// recognizes them; others pass unchanged. A call whose deadline passed before it ever
// reached etcd carries the client's last connection failure (etcd.ContextError), and the
// cause is that one.
type explainer struct {
	cfg    Config
	user   string                      // the user etcd sees: --user, else the client certificate's CommonName
	client atomic.Pointer[etcd.Client] // set once New returned it
}

func newExplainer(c Config) *explainer {
	ex := &explainer{cfg: c, user: c.User}
	if ex.user == "" && c.Cert != "" {
		if cn := commonName(c.Cert); cn != "" {
			ex.user = cn + " (the CommonName of --cert " + c.Cert + ")"
		}
	}
	return ex
}

// explain is the client's etcd.Config.Explain: it returns the *Error for err, or err
// when it has nothing better to say.
func (ex *explainer) explain(ctx context.Context, call etcd.Call, err error) error {
	if _, ok := explained(err); ok {
		return err // a re-authentication's failure, explained already
	}
	mk := func(problem, fix string) *Error {
		return &Error{Endpoints: strings.Join(ex.cfg.Endpoints, ","), Problem: problem, Fix: fix, err: err}
	}
	var st *etcd.StatusError
	if errors.As(err, &st) {
		msg := st.Message
		switch {
		case st.Code == etcd.CodePermissionDenied || errors.Is(err, etcd.ErrPermissionDenied):
			return mk(fmt.Sprintf("permission denied: user %s may not %s", ex.who(), what(call)),
				"grant the user's role that permission on the records' prefix (README, \"etcd roles\"), or use a user whose role has it")
		case strings.HasSuffix(call.Method, "/Authenticate") && errors.Is(err, etcd.ErrAuthFailed):
			return mk(fmt.Sprintf("authentication failed for user %q (%s)", ex.cfg.User, msg),
				"check --user and the password in --password-file (or $"+EnvPassword+"): the user must exist in etcd with that password")
		case errors.Is(err, etcd.ErrUserEmpty) && ex.cfg.Password == "":
			return mk("auth is enabled and this client names no user ("+msg+")",
				"pass --user and --password-file, or a client certificate (--cert, --key) whose CommonName is an etcd user, with etcd started with --client-cert-auth")
		case st.Code != etcd.CodeUnavailable:
			return err
		}
	}
	if problem, fix := ex.connProblem(err.Error()); problem != "" {
		return mk(problem, fix)
	}
	return err
}

// connProblem recognizes a connection error's message; it returns "" when it does not.
// Problems carry no addresses or ports that change between attempts, so a caller that
// logs each kind of failure once logs this once.
func (ex *explainer) connProblem(msg string) (problem, fix string) {
	cause := func(marker string) string {
		if i := strings.Index(msg, marker); i >= 0 {
			return strings.TrimRight(msg[i:], `")`)
		}
		return marker
	}
	switch {
	case msg == "":
		return "", ""
	case strings.Contains(msg, "x509: certificate signed by unknown authority"):
		return "etcd's server certificate is not signed by a CA in --cacert " + quoteOr(ex.cfg.CACert, "(none: the system's CAs)") + " (x509: certificate signed by unknown authority)",
			"pass the CA certificate that signed etcd's --cert-file as --cacert"
	case strings.Contains(msg, "x509: certificate is valid for"), strings.Contains(msg, "x509: cannot validate certificate"):
		return "etcd's server certificate does not name the host of the endpoint (" + cause("x509:") + ")",
			"use a host name or IP in the certificate's subject alternative names, or reissue it with this one"
	case strings.Contains(msg, "x509:"):
		return "etcd's server certificate is not accepted (" + cause("x509:") + ")",
			"check --cacert and etcd's --cert-file"
	case strings.Contains(msg, "remote error: tls:"), ex.tls() && ex.neverAnswered() && closedEarly(msg):
		// With TLS 1.3 the server checks the client certificate after the client's side
		// of the handshake is done: its alert comes with the first read, or is lost when
		// the connection is reset first. Both say the same, so both read the same here
		// (a caller that logs each kind of failure once logs this once).
		if ex.cfg.Cert == "" {
			return "etcd refused the TLS connection: it requires a client certificate (--client-cert-auth) and none was given",
				"pass --cert and --key with a certificate signed by the CA in etcd's --trusted-ca-file"
		}
		return "etcd refused the client certificate --cert " + ex.cfg.Cert,
			"use a client certificate signed by the CA in etcd's --trusted-ca-file, valid now and made for client authentication (etcd's log names the reason)"
	case strings.Contains(msg, "first record does not look like a TLS handshake"), strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return "the endpoint does not speak TLS (tls: first record does not look like a TLS handshake)",
			"start etcd with --cert-file and --key-file, or, with no TLS and no user, write the endpoint as http://"
	case strings.Contains(msg, "connection refused"):
		return "unreachable (" + cause("dial tcp") + ")", "is etcd running and listening on that address?"
	case strings.Contains(msg, "no such host"):
		return "unreachable (" + cause("dial tcp") + ")", "check the host name in --etcd-endpoints"
	}
	return "", ""
}

// closedEarly reports whether msg says the connection was closed under the client: reset,
// a broken pipe, or HTTP/2's setup cut short (the server's SETTINGS never came).
func closedEarly(msg string) bool {
	return strings.Contains(msg, "broken pipe") || strings.Contains(msg, "connection reset") ||
		strings.Contains(msg, "client conn could not be established")
}

// neverAnswered reports whether etcd has answered none of the client's calls yet: a reset
// then is the TLS refusal, not a member going away.
func (ex *explainer) neverAnswered() bool {
	c := ex.client.Load()
	return c == nil || !c.Answered()
}

// tls reports whether any endpoint is https://: a reset connection then may be a TLS
// refusal.
func (ex *explainer) tls() bool {
	for _, e := range ex.cfg.Endpoints {
		if strings.HasPrefix(e, "https://") {
			return true
		}
	}
	return false
}

// who names the user etcd checks permissions for.
func (ex *explainer) who() string {
	if ex.user == "" {
		return "(none)"
	}
	if ex.user == ex.cfg.User {
		return fmt.Sprintf("%q", ex.user)
	}
	return ex.user
}

// what says what a denied request wanted, with the key.
func what(c etcd.Call) string {
	switch c.Verb {
	case "write", "delete", "read":
		return c.Verb + " " + c.Key
	case "revoke":
		return fmt.Sprintf("revoke lease %x (that needs write permission on every key attached to it)", int64(c.Lease))
	}
	return "call " + c.Method
}

func quoteOr(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

// commonName is the CommonName of the first certificate in the PEM file, "" when it
// cannot be read (New reports unreadable files itself).
func commonName(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return ""
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return ""
	}
	return c.Subject.CommonName
}

// explained returns err's *Error, if it has one.
func explained(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
