// Package lease keeps one etcd key alive under a lease: grant, put with the lease, renew
// with the client's KeepAlive, and tell the caller when the lease is lost so it can
// grant a new one. The key vanishes on its own within the TTL when the process dies.
package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Holder holds Key under a lease of TTL seconds. It is not safe for concurrent use: one
// loop owns it.
type Holder struct {
	Client *clientv3.Client
	Key    string
	TTL    int64

	id   clientv3.LeaseID
	stop context.CancelFunc
	lost chan struct{}
}

// ID returns the current lease, 0 when none.
func (h *Holder) ID() clientv3.LeaseID { return h.id }

// Lost returns a channel closed when the current lease's keepalive ends without the
// holder ending it: the lease expired (an outage longer than the TTL, a partition) or
// etcd refused to renew it. With no lease the channel is nil, which blocks forever.
func (h *Holder) Lost() <-chan struct{} { return h.lost }

// Put writes value at Key under the current lease, granting one (and starting its
// keepalive) when there is none. After an error the lease is dropped: the next Put
// grants a fresh one, and the old one expires within the TTL.
func (h *Holder) Put(ctx context.Context, value string) error {
	if h.id == 0 {
		resp, err := h.Client.Grant(ctx, h.TTL)
		if err != nil {
			return fmt.Errorf("cannot grant a %ds lease: %w", h.TTL, err)
		}
		// The keepalive outlives ctx (a per-call timeout): a KeepAlive tied to a
		// context with a deadline silently stops renewing.
		kctx, cancel := context.WithCancel(context.Background())
		ch, err := h.Client.KeepAlive(kctx, resp.ID)
		if err != nil {
			cancel()
			return fmt.Errorf("cannot keep lease %x alive: %w", resp.ID, err)
		}
		lost := make(chan struct{})
		go h.renew(kctx, resp.ID, ch, lost)
		h.id, h.stop, h.lost = resp.ID, cancel, lost
	}
	if _, err := h.Client.Put(ctx, h.Key, value, clientv3.WithLease(h.id)); err != nil {
		h.Drop()
		return fmt.Errorf("cannot put %s: %w", h.Key, err)
	}
	return nil
}

// renew drains the keepalive responses and closes lost when the keepalive ends on its own.
// It also bridges a stalled keepalive: the client's stream stays on one member, and when
// that member is cut off (not down: its TCP connection just goes silent) nothing fails
// until gRPC's keepalive gives up (10 s at least), longer than a short lease lives. When
// no renewal came for a period and a half, it renews on a fresh stream with a short
// timeout, which the client's round-robin balancer sends to a member that may answer.
func (h *Holder) renew(ctx context.Context, id clientv3.LeaseID, ch <-chan *clientv3.LeaseKeepAliveResponse, lost chan struct{}) {
	period := time.Duration(h.TTL) * time.Second / 3
	bridge := min(max(period/3, 500*time.Millisecond), 2*time.Second)
	stalled := time.NewTimer(period + period/2)
	defer stalled.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch: // drain, or the client logs and drops responses
			if !ok {
				if ctx.Err() == nil {
					close(lost)
				}
				return
			}
			stalled.Reset(period + period/2)
		case <-stalled.C:
			cctx, cancel := context.WithTimeout(ctx, bridge)
			_, err := h.Client.KeepAliveOnce(cctx, id)
			cancel()
			if errors.Is(err, rpctypes.ErrLeaseNotFound) {
				if ctx.Err() == nil {
					close(lost)
				}
				return
			}
			if err == nil {
				stalled.Reset(period)
			} else {
				stalled.Reset(bridge)
			}
		}
	}
}

// Drop stops renewing the current lease and forgets it without telling etcd; the lease
// and the key expire within the TTL.
func (h *Holder) Drop() {
	if h.stop != nil {
		h.stop()
	}
	h.id, h.stop, h.lost = 0, nil, nil
}

// Withdraw deletes Key and revokes the lease. Renewal stops first, so even when etcd
// cannot be reached the key expires within the TTL. A lease etcd no longer knows is not
// an error: its keys are gone with it.
func (h *Holder) Withdraw(ctx context.Context) error {
	id := h.id
	h.Drop()
	if _, err := h.Client.Delete(ctx, h.Key); err != nil {
		return fmt.Errorf("cannot delete %s: %w", h.Key, err)
	}
	if id != 0 {
		if _, err := h.Client.Revoke(ctx, id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return fmt.Errorf("cannot revoke lease %x: %w", id, err)
		}
	}
	return nil
}
