package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// LeaseID is an etcd lease; 0 is no lease.
type LeaseID int64

// LeaseResponse is the answer to Grant, KeepAliveOnce, KeepAlive, TimeToLive and Revoke
// (which sets Header only). TTL is the lease's remaining seconds; TimeToLive answers -1
// for a lease that does not exist (expired or revoked).
type LeaseResponse struct {
	Header     ResponseHeader
	ID         LeaseID
	TTL        int64
	GrantedTTL int64    // TimeToLive: the TTL the lease was granted with
	Keys       [][]byte // TimeToLive: the keys on the lease (etcd sends none unless asked)
	Error      string   // Grant: etcd's refusal
}

// Methods of etcd's Lease service.
const (
	methodGrant      = "/etcdserverpb.Lease/LeaseGrant"
	methodRevoke     = "/etcdserverpb.Lease/LeaseRevoke"
	methodKeepAlive  = "/etcdserverpb.Lease/LeaseKeepAlive"
	methodTimeToLive = "/etcdserverpb.Lease/LeaseTimeToLive"
)

// keepAliveRetry is the wait before a failed renewal is tried again (etcd's own client
// waits as long).
const keepAliveRetry = 500 * time.Millisecond

// appendID appends a message whose only field is a lease ID (field 1): LeaseRevoke,
// LeaseKeepAlive and LeaseTimeToLive requests.
func appendID(b []byte, id LeaseID) []byte { return appendInt(b, 1, int64(id)) }

// Grant grants a lease of ttl seconds.
func (c *Client) Grant(ctx context.Context, ttl int64) (*LeaseResponse, error) {
	var r *LeaseResponse
	err := c.call(ctx, Call{Method: methodGrant}, retryUnsent, appendInt(nil, 1, ttl),
		func(b []byte) (err error) { r, err = decodeLease(b, true); return err })
	if err != nil {
		return nil, err
	}
	if r.Error != "" {
		return nil, fmt.Errorf("cannot grant a %ds lease: %s", ttl, r.Error)
	}
	return r, nil
}

// Revoke revokes lease id, which deletes its keys. A lease etcd does not know gives an
// error that is ErrLeaseNotFound.
func (c *Client) Revoke(ctx context.Context, id LeaseID) (*LeaseResponse, error) {
	r := &LeaseResponse{ID: id}
	err := c.call(ctx, Call{Method: methodRevoke, Verb: "revoke", Lease: id}, retryAll, appendID(nil, id),
		func(b []byte) error { return decodeHeaderOnly(b, &r.Header) })
	if err != nil {
		return nil, err
	}
	return r, nil
}

// TimeToLive returns lease id's remaining TTL, -1 when etcd does not know it.
func (c *Client) TimeToLive(ctx context.Context, id LeaseID) (*LeaseResponse, error) {
	var r *LeaseResponse
	err := c.call(ctx, Call{Method: methodTimeToLive}, retryAll, appendID(nil, id),
		func(b []byte) (err error) { r, err = decodeLease(b, false); return err })
	return r, err
}

// KeepAliveOnce renews lease id once, on a LeaseKeepAlive stream of one request and one
// answer. A lease etcd does not know gives an error that is ErrLeaseNotFound.
func (c *Client) KeepAliveOnce(ctx context.Context, id LeaseID) (*LeaseResponse, error) {
	r, err := c.keepAliveOnce(ctx, id)
	if err != nil && c.cfg.Explain != nil {
		return nil, c.cfg.Explain(ctx, Call{Method: methodKeepAlive}, err)
	}
	return r, err
}

func (c *Client) keepAliveOnce(ctx context.Context, id LeaseID) (*LeaseResponse, error) {
	var r *LeaseResponse
	err := c.invoke(ctx, methodKeepAlive, retryAll, appendID(nil, id),
		func(b []byte) (err error) { r, err = decodeLease(b, false); return err })
	if err != nil {
		return nil, err
	}
	if r.TTL <= 0 { // etcd answers a lease it does not know with TTL 0
		return nil, &StatusError{Code: CodeNotFound, Message: ErrLeaseNotFound.Error()}
	}
	return r, nil
}

// KeepAlive renews lease id, granted for ttl seconds, every third of its TTL until ctx
// ends or the client is closed, and sends each renewal's answer on the returned channel
// (the latest only, when the reader lags). Each renewal is a short stream of its own,
// so it goes to whichever endpoint answers; a renewal without an answer within a sixth
// of the TTL moves to the next endpoint, and a failed one is tried again after 500 ms.
//
// The channel closes when renewing ends: ctx ended, etcd no longer knows the lease
// (expired, revoked), or no renewal succeeded for the lease's TTL, after which etcd
// has dropped it.
func (c *Client) KeepAlive(ctx context.Context, id LeaseID, ttl int64) <-chan *LeaseResponse {
	ch := make(chan *LeaseResponse, 1)
	if !c.spawn(func() { defer close(ch); c.keepAlive(ctx, id, ttl, ch) }) {
		close(ch)
	}
	return ch
}

func (c *Client) keepAlive(ctx context.Context, id LeaseID, ttl int64, ch chan *LeaseResponse) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.ctx, cancel)()
	expires := time.Now().Add(time.Duration(ttl) * time.Second)
	t := time.NewTimer(0) // the first renewal at once, as etcd's client does
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		period := time.Duration(ttl) * time.Second / 3
		actx, acancel := context.WithTimeout(ctx, min(max(period/2, 500*time.Millisecond), 2*time.Second))
		r, err := c.keepAliveOnce(actx, id)
		acancel()
		now := time.Now()
		switch {
		case err == nil:
			ttl = r.TTL
			expires = now.Add(time.Duration(ttl) * time.Second)
			select {
			case ch <- r:
			default: // the reader lags: replace the answer it has not read
				select {
				case <-ch:
				default:
				}
				ch <- r
			}
			t.Reset(time.Duration(ttl) * time.Second / 3)
		case errors.Is(err, ErrLeaseNotFound), ctx.Err() != nil, !now.Before(expires):
			return
		default:
			t.Reset(min(keepAliveRetry, expires.Sub(now)))
		}
	}
}
