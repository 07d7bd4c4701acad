package apply

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rundock/rundock/internal/defaults"
	"github.com/rundock/rundock/internal/etcd"
	"github.com/rundock/rundock/internal/etcdclient"
	"github.com/rundock/rundock/internal/safefs"
	"github.com/rundock/rundock/internal/skydns"
	"github.com/rundock/rundock/internal/spec"
)

// logLines is how many of the container's last log lines a failed wait reports.
const logLines = 10

// waitServing waits until svc's container (one other than notID) runs, is healthy when it
// has a health check, and, when announced and not in maintenance, its record is in etcd;
// at most svc.WaitTimeout seconds. The error says what was missing last, with the
// container's last log lines and health output.
func waitServing(ctx context.Context, svc spec.Service, root string, c Containers, notID string) (Container, error) {
	if notID != "" {
		// The old container drains and stops first; wait_timeout counts from then.
		stop := time.Now().Add(stopWait(svc))
		tk := newTicker(ctx, svc.Name, StepDrain, stopWait(svc))
		for {
			ct, err := c.Inspect(ctx, svc.Name)
			if err == nil && ct.ID != notID {
				break
			}
			tk.tick("draining and stopping the old container " + short(notID))
			if time.Now().After(stop) {
				return ct, fmt.Errorf("%s: the old container %s still runs after %s (drain %d s, stop_timeout %d s): check sv status %s", svc.Name, short(notID), stopWait(svc), svc.Drain, svc.StopTimeout, root)
			}
			select {
			case <-ctx.Done():
				return ct, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	deadline := time.Now().Add(time.Duration(svc.WaitTimeout) * time.Second)
	var rec *recordCheck
	if svc.Announce != 0 {
		if on, _ := readMaintenance(root); !on {
			r, err := newRecordCheck(svc, svc.Instance, recordPort(svc, root))
			if err != nil {
				return Container{}, err
			}
			defer r.close()
			rec = r
		}
	}
	var last Container
	var missing string
	tk := newTicker(ctx, svc.Name, WaitServing, time.Duration(svc.WaitTimeout)*time.Second)
	for {
		ct, err := c.Inspect(ctx, svc.Name)
		switch {
		case err != nil:
			missing = err.Error()
		case ct.ID == "":
			missing = "no container " + svc.Name
		case ct.ID == notID:
			missing = "the old container " + short(notID) + " still runs"
		case !ct.Running:
			missing = "container " + short(ct.ID) + " is not running"
		case !ct.Serving():
			missing = "container " + short(ct.ID) + " is " + ct.Health
		case rec != nil:
			missing = rec.check(ctx)
		default:
			missing = ""
		}
		if ct.ID != "" {
			last = ct
		}
		if missing == "" {
			return ct, nil
		}
		tk.tick("waiting for serving: " + missing)
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("%s does not serve yet (%s): %w", svc.Name, missing, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	msg := fmt.Sprintf("%s did not serve within wait_timeout %d s: %s", svc.Name, svc.WaitTimeout, missing)
	if last.HealthLog != "" {
		msg += "; last health check: " + oneLine(last.HealthLog)
	}
	if lines := tailLog(svc, logLines); lines != "" {
		msg += "; last log lines:\n" + lines
	}
	return last, fmt.Errorf("%s", msg)
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// tailLog returns the last n lines of the service's svlogd log ("" without one).
func tailLog(svc spec.Service, n int) string {
	if !svc.Log {
		return ""
	}
	b, err := safefs.ReadFile(filepath.Join(svc.LogDir, svc.Name, "current"))
	if err != nil {
		return ""
	}
	return lastLines(string(b), n)
}

// recordCheck looks for the service's record in etcd.
type recordCheck struct {
	cli  *etcd.Client
	key  string
	port int
}

// newRecordCheck checks the record of svc's instance with port.
func newRecordCheck(svc spec.Service, instance string, port int) (*recordCheck, error) {
	key, err := skydns.InstanceKey(defaults.Prefix, svc.Domain, svc.AnnounceName, instance)
	if err != nil {
		return nil, fmt.Errorf("cannot wait for the record of %s: %w", svc.Name, err)
	}
	if svc.Dual() { // the IPv4 record; the IPv6 one comes in the same transaction
		key = skydns.FamilyKey(key, skydns.FamilyIPv4)
	}
	cfg := etcdclient.Config{Endpoints: svc.EtcdEndpoints, CACert: svc.EtcdCACert, Cert: svc.EtcdCert, Key: svc.EtcdKey, User: svc.EtcdUser}
	if svc.EtcdPasswordFile != "" {
		b, err := os.ReadFile(svc.EtcdPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read etcd_password_file: %w", err)
		}
		cfg.Password = string(trimNewline(b))
	}
	cli, err := etcdclient.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot wait for the record of %s: %w", svc.Name, err)
	}
	return &recordCheck{cli: cli, key: key, port: port}, nil
}

func (r *recordCheck) close() { r.cli.Close() }

// check returns "" when the record is in etcd with the announced port, else what is not.
func (r *recordCheck) check(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := r.cli.Get(ctx, r.key)
	if err != nil {
		return "cannot read " + r.key + " from etcd: " + err.Error()
	}
	if len(resp.Kvs) == 0 {
		return "no record " + r.key + " in etcd yet"
	}
	rec, err := skydns.Decode(resp.Kvs[0].Value)
	if err != nil || rec.Port != r.port {
		return fmt.Sprintf("the record %s is %s, not this service's port %d", r.key, resp.Kvs[0].Value, r.port)
	}
	return ""
}
