package etcdclient

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/testenv"
)

// A connection reset before etcd ever answered is, on a TLS endpoint, etcd refusing the
// client certificate (TLS 1.3 may lose the alert): it reads like the alert, so a caller
// logging each kind once logs it once. After an answer, a reset is a member going away
// and is left as it is.
func TestExplain_ResetBeforeFirstAnswer(t *testing.T) {
	const reset = "cannot reach https://127.0.0.1:2379: write tcp 127.0.0.1:40000->127.0.0.1:2379: write: connection reset by peer"
	const alert = "cannot reach https://127.0.0.1:2379: remote error: tls: bad certificate"
	const cutShort = "cannot reach https://127.0.0.1:2379: http2: client conn could not be established"
	cfg := Config{Endpoints: []string{"https://127.0.0.1:2379"}, CACert: "/ca.crt", Cert: "/a.crt", Key: "/a.key"}
	ex := newExplainer(cfg)
	want := "etcd refused the client certificate --cert /a.crt"
	for _, msg := range []string{reset, alert, cutShort} {
		if p, _ := ex.connProblem(msg); p != want {
			t.Errorf("connProblem(%q) = %q before any answer, want %q", msg, p, want)
		}
	}
	noCert := newExplainer(Config{Endpoints: cfg.Endpoints, CACert: "/ca.crt"})
	if p, _ := noCert.connProblem(reset); !strings.Contains(p, "requires a client certificate") {
		t.Errorf("without --cert: connProblem(reset) = %q, want the missing certificate named", p)
	}

	e := testenv.StartEtcd(t)
	cli := testenv.WireClient(t, e.Endpoint)
	ex.client.Store(cli)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Get(ctx, "/x"); err != nil {
		t.Fatal(err)
	}
	if p, _ := ex.connProblem(reset); p != "" {
		t.Errorf("after an answer: connProblem(reset) = %q, want it left unexplained", p)
	}
	if p, _ := ex.connProblem(alert); p != want {
		t.Errorf("after an answer: connProblem(alert) = %q, want %q", p, want)
	}
}
