package dockerapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rundock/rundock/internal/testenv"
)

// fakeEngine serves handler on a unix socket in a temporary directory, answering
// /_ping with API-Version version, and returns a client of it. The real engine is
// exercised by ./integration; this fake is for the answers a test must choose.
func fakeEngine(t *testing.T, version string, handler http.HandlerFunc) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_ping" {
			if version != "" {
				w.Header().Set("Api-Version", version)
			}
			io.WriteString(w, "OK")
			return
		}
		handler(w, r)
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func notFound(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprintf(w, `{"message":%q}`+"\n", msg)
}

func TestClient_ContainerInspect(t *testing.T) {
	c := fakeEngine(t, "1.47", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1.47/containers/web/json":
			io.WriteString(w, `{"Id":"abc","Image":"sha256:1","Config":{"Image":"web:1"},
				"State":{"Status":"running","Running":true,"StartedAt":"2026-01-02T03:04:05.5Z","Health":{"Status":"healthy","Log":[{"Output":"ok\n"}]}},
				"NetworkSettings":{"Networks":{"bridge":{"IPAddress":"172.17.0.2"},"none":null},"Ports":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}],"81/tcp":null}}}`)
		default:
			notFound(w, "No such container: gone")
		}
	})
	ctx := context.Background()
	info, err := c.ContainerInspect(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != "abc" || info.Image != "sha256:1" || info.Config.Image != "web:1" || !info.State.Running ||
		info.State.Health.Status != "healthy" || info.State.Health.Log[0].Output != "ok\n" ||
		info.NetworkSettings.Networks["bridge"].IPAddress != "172.17.0.2" || info.NetworkSettings.Networks["none"] != nil ||
		info.NetworkSettings.Ports["80/tcp"][0].HostPort != "8080" {
		t.Fatalf("decoded %+v", info)
	}

	_, err = c.ContainerInspect(ctx, "gone")
	if !IsNotFound(err) {
		t.Fatalf("missing container: %v, want not found", err)
	}
	if want := "cannot inspect container gone: No such container: gone"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

func TestClient_Version(t *testing.T) {
	tests := []struct {
		name, engine, want, wantErr string
	}{
		{name: "the engine's", engine: "1.41", want: "/v1.41/"},
		{name: "capped", engine: "1.52", want: "/v" + maxVersion + "/"},
		{name: "not said", engine: "", want: "/v" + minVersion + "/"},
		{name: "ErrTooOld", engine: "1.12", wantErr: "older than " + minVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var paths []string
			c := fakeEngine(t, tt.engine, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				paths = append(paths, r.URL.Path)
				mu.Unlock()
				io.WriteString(w, `[]`)
			})
			for range 2 {
				_, err := c.ContainerList(context.Background())
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if len(paths) != 2 || !strings.HasPrefix(paths[0], tt.want) {
				t.Fatalf("paths %q, want two under %s", paths, tt.want)
			}
		})
	}
}

func TestClient_ContainerList(t *testing.T) {
	c := fakeEngine(t, "1.47", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1.47/containers/json" || r.URL.Query().Get("all") != "1" {
			t.Errorf("request %s, want /containers/json?all=1", r.URL)
		}
		io.WriteString(w, `[{"Id":"a1","Names":["/web"],"Image":"web:1","ImageID":"sha256:1","State":"running","Status":"Up 2 minutes (healthy)"},
			{"Id":"b2","Names":["/db","/web/db"],"Image":"db","ImageID":"sha256:2","State":"exited","Status":"Exited (0) 1 hour ago"}]`)
	})
	list, err := c.ContainerList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "a1" || list[0].Names[0] != "/web" || list[0].State != "running" ||
		list[0].Status != "Up 2 minutes (healthy)" || list[1].ImageID != "sha256:2" || len(list[1].Names) != 2 {
		t.Fatalf("decoded %+v", list)
	}
}

func TestClient_ContainerRemove(t *testing.T) {
	c := fakeEngine(t, "1.47", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodDelete || r.URL.Query().Get("force") != "1" {
			t.Errorf("request %s %s, want a forced DELETE", r.Method, r.URL)
		}
		if r.URL.Path == "/v1.47/containers/web" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		notFound(w, "No such container: gone")
	})
	if err := c.ContainerRemove(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	if err := c.ContainerRemove(context.Background(), "gone"); !IsNotFound(err) {
		t.Fatalf("missing container: %v, want not found", err)
	}
}

func TestClient_ImageInspect(t *testing.T) {
	c := fakeEngine(t, "1.47", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1.47/images/127.0.0.1:5000/team/web:1/json" {
			io.WriteString(w, `{"Id":"sha256:1"}`)
			return
		}
		notFound(w, "No such image: "+r.URL.Path)
	})
	info, err := c.ImageInspect(context.Background(), "127.0.0.1:5000/team/web:1")
	if err != nil || info.ID != "sha256:1" {
		t.Fatalf("got %+v, %v", info, err)
	}
	for _, ref := range []string{"web:2", ""} {
		if _, err := c.ImageInspect(context.Background(), ref); !IsNotFound(err) {
			t.Fatalf("missing image %q: %v, want not found", ref, err)
		}
	}
}

func TestClient_ImagePull(t *testing.T) {
	tests := []struct {
		name, ref, fromImage, tag, stream, wantErr string
		status                                     int
	}{
		{name: "ok", ref: "nginx", fromImage: "nginx", tag: "latest",
			stream: `{"status":"Pulling from library/nginx"}` + "\n" + `{"status":"Digest: sha256:1"}` + "\n"},
		{name: "tag and registry", ref: "127.0.0.1:5000/team/web:1", fromImage: "127.0.0.1:5000/team/web", tag: "1", stream: `{"status":"ok"}`},
		{name: "registry port, no tag", ref: "127.0.0.1:5000/team/web", fromImage: "127.0.0.1:5000/team/web", tag: "latest", stream: `{}`},
		{name: "digest", ref: "web@sha256:" + strings.Repeat("a", 64), fromImage: "web", tag: "sha256:" + strings.Repeat("a", 64), stream: `{}`},
		{name: "tag and digest", ref: "web:1@sha256:" + strings.Repeat("a", 64), fromImage: "web", tag: "sha256:" + strings.Repeat("a", 64), stream: `{}`},
		{name: "ErrInStream", ref: "127.0.0.1:9/rundock/echo:v9", fromImage: "127.0.0.1:9/rundock/echo", tag: "v9",
			stream:  `{"status":"Pulling"}` + "\n" + `{"errorDetail":{"message":"connection refused"},"error":"connection refused"}` + "\n",
			wantErr: "cannot pull 127.0.0.1:9/rundock/echo:v9: connection refused"},
		{name: "ErrStatus", ref: "private/web:1", fromImage: "private/web", tag: "1", status: http.StatusNotFound,
			stream: `{"message":"pull access denied for private/web"}`, wantErr: "cannot pull private/web:1: pull access denied for private/web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeEngine(t, "1.47", func(w http.ResponseWriter, r *http.Request) {
				q := r.URL.Query()
				if r.Method != http.MethodPost || r.URL.Path != "/v1.47/images/create" || q.Get("fromImage") != tt.fromImage || q.Get("tag") != tt.tag {
					t.Errorf("request %s %s, want fromImage=%s tag=%s", r.Method, r.URL, tt.fromImage, tt.tag)
				}
				if tt.status != 0 {
					w.WriteHeader(tt.status)
				}
				io.WriteString(w, tt.stream)
			})
			err := c.ImagePull(context.Background(), tt.ref)
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// frame is one frame of Docker's multiplexed stream.
func frame(stream byte, s string) string {
	var h [8]byte
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(s)))
	return string(h[:]) + s
}

func TestClient_ContainerLogs(t *testing.T) {
	const raw, multiplexed = "application/vnd.docker.raw-stream", "application/vnd.docker.multiplexed-stream"
	tests := []struct {
		name, version, contentType, body, want, wantErr string
	}{
		{name: "multiplexed", version: "1.47", contentType: multiplexed,
			body: frame(1, "out 1\n") + frame(2, "err 1\n") + frame(1, "out 2\n"), want: "out 1\nerr 1\nout 2\n"},
		{name: "multiplexed said raw before API 1.42", version: "1.41", contentType: raw, body: frame(2, "x") + frame(1, ""), want: "x"},
		{name: "tty", version: "1.47", contentType: raw, body: "raw\r\n", want: "raw\r\n"},
		{name: "ErrEngine", version: "1.47", contentType: multiplexed, body: frame(1, "a") + frame(3, "log driver failed\n"), want: "a",
			wantErr: "cannot read the log of container web: log driver failed"},
		{name: "ErrTruncated", version: "1.47", contentType: multiplexed, body: frame(1, "abc")[:9], want: "a", wantErr: "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeEngine(t, tt.version, func(w http.ResponseWriter, r *http.Request) {
				q := r.URL.Query()
				if r.URL.Path != "/v"+tt.version+"/containers/web/logs" || q.Get("stdout") != "1" || q.Get("stderr") != "1" || q.Get("tail") != "20" {
					t.Errorf("request %s", r.URL)
				}
				w.Header().Set("Content-Type", tt.contentType)
				io.WriteString(w, tt.body)
			})
			rc, err := c.ContainerLogs(context.Background(), "web", 20)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if string(got) != tt.want {
				t.Errorf("read %q, want %q", got, tt.want)
			}
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestClient_Events(t *testing.T) {
	release := make(chan struct{})
	var gotFilters string
	c := fakeEngine(t, "1.47", func(w http.ResponseWriter, r *http.Request) {
		gotFilters = r.URL.Query().Get("filters")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, `{"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"web"}},"time":1,"timeNano":1000000001}`+"\n")
		io.WriteString(w, `{"Type":"container","Action":"health_status: healthy","Actor":{"ID":"abc","Attributes":{"name":"web"}},"timeNano":2}`+"\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, errs := c.Events(ctx, map[string][]string{"type": {"container"}, "event": {"start", "die"}})
	// Events returned: the subscription is in place before any event is sent.
	var f map[string]map[string]bool
	if err := json.Unmarshal([]byte(gotFilters), &f); err != nil || !f["type"]["container"] || !f["event"]["start"] || !f["event"]["die"] || len(f) != 2 {
		t.Fatalf("filters %q (%v), want type=container, event=start and die", gotFilters, err)
	}
	close(release)
	for _, want := range []Message{
		{Type: "container", Action: "start", Actor: Actor{ID: "abc", Attributes: map[string]string{"name": "web"}}, TimeNano: 1000000001},
		{Type: "container", Action: "health_status: healthy", Actor: Actor{ID: "abc", Attributes: map[string]string{"name": "web"}}, TimeNano: 2},
	} {
		select {
		case m := <-msgs:
			if m.Action != want.Action || m.Type != want.Type || m.Actor.ID != want.Actor.ID || m.Actor.Attributes["name"] != "web" || m.TimeNano != want.TimeNano {
				t.Fatalf("event %+v, want %+v", m, want)
			}
		case err := <-errs:
			t.Fatalf("stream ended: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
	}
	cancel()
	select {
	case err := <-errs:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end on cancel")
	}
	if err, ok := <-errs; ok {
		t.Fatalf("errs not closed after its error: %v", err)
	}
}

func TestClient_EventsEnd(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{name: "ErrEngineEnds", handler: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"Type":"container","Action":"die"}`+"\n")
		}, want: "the engine ended the stream"},
		{name: "ErrRefused", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"message":"invalid filter 'nope'"}`)
		}, want: "cannot follow Docker events: invalid filter 'nope'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeEngine(t, "1.47", tt.handler)
			msgs, errs := c.Events(context.Background(), nil)
			for {
				select {
				case <-msgs:
					continue
				case err := <-errs:
					if err == nil || !strings.Contains(err.Error(), tt.want) {
						t.Fatalf("stream error %v, want %q", err, tt.want)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("the stream did not end")
				}
				break
			}
		})
	}
}

func TestClient_Unreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	c, err := New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ContainerInspect(context.Background(), "web")
	if err == nil || IsNotFound(err) || !strings.Contains(err.Error(), "cannot inspect container web: cannot reach the Docker engine at unix://"+sock) {
		t.Fatalf("error %v, want unreachable", err)
	}
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name, host, tlsVerify, certPath, wantErr string
	}{
		{name: "default"},
		{name: "unix", host: "unix:///run/docker.sock"},
		{name: "tcp", host: "tcp://127.0.0.1:2375"},
		{name: "tcp without port", host: "tcp://docker.example.com"},
		{name: "ErrScheme", host: "ssh://me@host", wantErr: "only unix:// and tcp://"},
		{name: "ErrNoPath", host: "unix://", wantErr: "no socket path"},
		{name: "ErrPathPrefix", host: "tcp://h:2375/docker", wantErr: "path prefix"},
		{name: "ErrUnverifiedTLS", host: "tcp://h:2376", certPath: "/nonexistent", wantErr: "DOCKER_TLS_VERIFY"},
		{name: "ErrNoCerts", host: "tcp://h:2376", tlsVerify: "1", certPath: "/nonexistent", wantErr: "cannot read the Docker CA certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tt.host)
			t.Setenv("DOCKER_TLS_VERIFY", tt.tlsVerify)
			t.Setenv("DOCKER_CERT_PATH", tt.certPath)
			t.Setenv("DOCKER_API_VERSION", "")
			c, err := FromEnv()
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			c.Close()
		})
	}
}

func TestFromEnv_TLS(t *testing.T) {
	// DOCKER_CERT_PATH holds ca.pem, cert.pem and key.pem, as the Docker docs lay it out.
	dir := t.TempDir()
	ca := testenv.NewCA(t, t.TempDir(), "docker-ca")
	cli, srvPair := ca.Client(t, "rundock"), ca.Server(t, "dockerd")
	for name, src := range map[string]string{"ca.pem": ca.CertFile, "cert.pem": cli.Cert, "key.pem": cli.Key} {
		if err := os.Link(src, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	srvCert, err := tls.LoadX509KeyPair(srvPair.Cert, srvPair.Key)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			t.Errorf("request without a client certificate")
		}
		if r.URL.Path == "/_ping" {
			w.Header().Set("Api-Version", "1.47")
			return
		}
		io.WriteString(w, `[{"Id":"a1","Names":["/web"]}]`)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()

	t.Setenv("DOCKER_HOST", "tcp://"+srv.Listener.Addr().String())
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	t.Setenv("DOCKER_CERT_PATH", dir)
	t.Setenv("DOCKER_API_VERSION", "")
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	list, err := c.ContainerList(context.Background())
	if err != nil || len(list) != 1 || list[0].ID != "a1" {
		t.Fatalf("list over TLS: %+v, %v", list, err)
	}

	// The same engine spoken to without TLS fails rather than falls back.
	t.Setenv("DOCKER_TLS_VERIFY", "")
	t.Setenv("DOCKER_CERT_PATH", "")
	plain, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.ContainerList(context.Background()); err == nil {
		t.Fatal("plain HTTP to a TLS engine succeeded")
	}
}

func TestFromEnv_APIVersion(t *testing.T) {
	var got string
	c := fakeEngine(t, "1.47", func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Path
		io.WriteString(w, `[]`)
	})
	// A pinned version is used as it is, not the engine's 1.47.
	t.Setenv("DOCKER_HOST", c.host)
	t.Setenv("DOCKER_TLS_VERIFY", "")
	t.Setenv("DOCKER_CERT_PATH", "")
	t.Setenv("DOCKER_API_VERSION", "1.43")
	p, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.ContainerList(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got != "/v1.43/containers/json" {
		t.Fatalf("path %s, want /v1.43/containers/json", got)
	}
}
