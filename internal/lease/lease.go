// Package lease keeps an etcd key (and the keys that go with it) alive under a lease:
// grant, put with the lease, renew with the client's KeepAlive, and tell the caller when
// the lease is lost so it can grant a new one. The keys vanish on their own within the
// TTL when the process dies.
package lease

import (
	"context"
	"errors"
	"fmt"

	"github.com/rundock/rundock/internal/etcd"
)

// Holder holds Key, and the Extra keys with it, under a lease of TTL seconds. It is not
// safe for concurrent use: one loop owns it.
//
// It writes and deletes a key only where the key is its own: absent, on one of its own
// leases (the current one or one it dropped), or on no lease at all (a hand-written
// value). Every Put and delete is a transaction comparing each key's mod revision and
// lease with what the holder last saw, so a key another holder took meanwhile on its own
// live lease is never overwritten or deleted: Put returns a *HeldError instead. A Put
// writes all the keys in one transaction or none of them.
type Holder struct {
	Client *etcd.Client
	Key    string
	Extra  []string // more keys, written and withdrawn with Key (a service's named ports)
	TTL    int64

	id   etcd.LeaseID
	stop context.CancelFunc
	lost chan struct{}

	former  []etcd.LeaseID // leases this holder dropped, newest last
	seen    []keyState     // each key (Key, then Extra) as the holder last wrote or read it
	rev     int64          // etcd's revision at the holder's last answer
	put     bool           // has a Put succeeded yet?
	adopted etcd.LeaseID   // the lease the last Put adopted the key from, 0 for none
}

// keyState is the key's mod revision and lease as seen; the zero value is an absent key.
// The holder keeps in it only a state it may replace (absent, its own, on no lease).
type keyState struct {
	modRev int64
	lease  etcd.LeaseID
}

// maxFormer bounds the dropped leases the holder still counts as its own: enough for a
// burst of failed puts, while each of them expires within the TTL anyway.
const maxFormer = 16

// maxRaces bounds the compare-and-put rounds of one Put or Withdraw against writers that
// change the key between the holder's read and its write.
const maxRaces = 3

// ErrHeld is wrapped by the error of a Put that found the key on another holder's live
// lease; see HeldError.
var ErrHeld = errors.New("key held by another live lease")

// HeldError says who holds the key: another announcer writing the same key (two services
// configured alike), or this announcer's previous run until its lease expires.
type HeldError struct {
	Key         string
	Lease       etcd.LeaseID
	Value       string
	ModRevision int64
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("cannot put %s: %v %x (value %s, revision %d)", e.Key, ErrHeld, e.Lease, e.Value, e.ModRevision)
}

func (e *HeldError) Unwrap() error { return ErrHeld }

// ID returns the current lease, 0 when none.
func (h *Holder) ID() etcd.LeaseID { return h.id }

// Rev returns etcd's revision at the holder's last answer from etcd (0 before the first):
// a change of Key at a later revision was made by someone else, or by a write whose
// answer the holder never got.
func (h *Holder) Rev() int64 { return h.rev }

// Adopted returns the other lease the last successful Put took the key from (see Put),
// 0 when it took none.
func (h *Holder) Adopted() etcd.LeaseID { return h.adopted }

// Owns reports whether lease is the holder's current lease or one it dropped.
func (h *Holder) Owns(lease etcd.LeaseID) bool {
	if lease == 0 {
		return false
	}
	if lease == h.id {
		return true
	}
	for _, l := range h.former {
		if l == lease {
			return true
		}
	}
	return false
}

// Lost returns a channel closed when the current lease's keepalive ends without the
// holder ending it: the lease expired (an outage longer than the TTL, a partition) or
// etcd refused to renew it. With no lease the channel is nil, which blocks forever.
func (h *Holder) Lost() <-chan struct{} { return h.lost }

// Put writes value at Key, and extra[i] at Extra[i], under the current lease, granting
// one (and starting its keepalive) when there is none. It replaces only keys of its own
// or on no lease and returns a *HeldError (wrapping ErrHeld) when another live lease
// holds one of them. After any other error the lease is dropped: the next Put grants a
// fresh one, and the old one expires within the TTL. It panics when len(extra) is not
// len(Extra): that is the caller's bug.
//
// One exception: until its first successful Put, the holder adopts a key on another
// lease that holds exactly value (see Adopted). That is the record of this announcer's
// previous run, killed before it could withdraw, whose lease lives on for up to the TTL;
// and were it another announcer's, it announces the very same thing. Adopting it once
// at start cannot turn into a fight: after its first Put the holder never takes a key
// from a live lease again.
func (h *Holder) Put(ctx context.Context, value string, extra ...string) error {
	if len(extra) != len(h.Extra) {
		panic(fmt.Sprintf("lease: Put of %d extra values for %d extra keys", len(extra), len(h.Extra)))
	}
	keys, values := h.keys(), append([]string{value}, extra...)
	h.adopted = 0
	if h.id == 0 {
		resp, err := h.Client.Grant(ctx, h.TTL)
		if err != nil {
			return fmt.Errorf("cannot grant a %ds lease: %w", h.TTL, err)
		}
		// The keepalive outlives ctx (a per-call timeout): a KeepAlive tied to a
		// context with a deadline stops renewing at the deadline.
		kctx, cancel := context.WithCancel(context.Background())
		ch := h.Client.KeepAlive(kctx, resp.ID, resp.TTL)
		lost := make(chan struct{})
		go h.renew(kctx, ch, lost)
		h.id, h.stop, h.lost = resp.ID, cancel, lost
	}
	puts := make([]etcd.Op, len(keys))
	for i, k := range keys {
		puts[i] = etcd.OpPut(k, values[i], h.id)
	}
	all := make([]int, len(keys))
	for i := range all {
		all[i] = i
	}
	for range maxRaces {
		ok, kvs, err := h.swap(ctx, all, puts)
		if err != nil {
			h.Drop()
			return fmt.Errorf("cannot put %s: %w", h.Key, err)
		}
		if ok {
			for i := range h.seen {
				h.seen[i] = keyState{modRev: h.rev, lease: h.id}
			}
			h.put = true
			return nil
		}
		h.adopted = 0
		for i, kv := range kvs {
			if kv != nil && kv.Lease != 0 && !h.Owns(etcd.LeaseID(kv.Lease)) {
				if !h.put && string(kv.Value) == values[i] {
					h.seen[i], h.adopted = stateOf(kv), etcd.LeaseID(kv.Lease)
					continue
				}
				// h.seen[i] stays as it was: were it the other lease's state, the next
				// compare would match it and overwrite the other's record.
				return &HeldError{Key: keys[i], Lease: etcd.LeaseID(kv.Lease), Value: string(kv.Value), ModRevision: kv.ModRevision}
			}
			h.seen[i] = stateOf(kv) // absent, ours or on no lease: replace it as now seen
		}
	}
	return fmt.Errorf("cannot put %s: it changed under every one of %d writes", h.Key, maxRaces)
}

// keys returns Key and Extra, and sizes seen to match on first use.
func (h *Holder) keys() []string {
	keys := append([]string{h.Key}, h.Extra...)
	if len(h.seen) != len(keys) {
		h.seen = make([]keyState, len(keys))
	}
	return keys
}

// swap runs ops if the keys at the indexes idx are all still as h.seen says, else reads
// them: ok tells which, and kvs are the keys as read (nil where absent), in idx's order.
func (h *Holder) swap(ctx context.Context, idx []int, ops []etcd.Op) (ok bool, kvs []*etcd.KeyValue, err error) {
	keys := h.keys()
	cmps := make([]etcd.Cmp, 0, 2*len(idx))
	gets := make([]etcd.Op, len(idx))
	for n, i := range idx {
		cmps = append(cmps, etcd.ModRevisionIs(keys[i], h.seen[i].modRev), etcd.LeaseIs(keys[i], h.seen[i].lease))
		gets[n] = etcd.OpGet(keys[i])
	}
	resp, err := h.Client.Txn(ctx, cmps, ops, gets)
	if err != nil {
		return false, nil, err
	}
	h.rev = resp.Header.Revision
	if resp.Succeeded {
		return true, nil, nil
	}
	kvs = make([]*etcd.KeyValue, len(idx))
	for n := range idx {
		if n >= len(resp.Responses) || resp.Responses[n].Range == nil {
			return false, nil, fmt.Errorf("cannot read %s: etcd's answer lacks its read", keys[idx[n]])
		}
		if got := resp.Responses[n].Range.Kvs; len(got) > 0 {
			kvs[n] = got[0]
		}
	}
	return false, kvs, nil
}

func stateOf(kv *etcd.KeyValue) keyState {
	if kv == nil {
		return keyState{}
	}
	return keyState{modRev: kv.ModRevision, lease: etcd.LeaseID(kv.Lease)}
}

// renew drains the keepalive's answers and closes lost when the keepalive ends on its
// own. The client's KeepAlive renews on a fresh stream each time, so a renewal moves to
// another member when the one in use is down or cut off, and it ends once no renewal
// succeeded for the TTL: there is no stalled stream to bridge here.
func (h *Holder) renew(ctx context.Context, ch <-chan *etcd.LeaseResponse, lost chan struct{}) {
	for range ch {
	}
	if ctx.Err() == nil {
		close(lost)
	}
}

// Drop stops renewing the current lease and forgets it without telling etcd; the lease
// and the key expire within the TTL. The holder still counts the lease as its own, so a
// later Put or Withdraw may replace or delete a key left on it.
func (h *Holder) Drop() {
	if h.stop != nil {
		h.stop()
	}
	if h.id != 0 {
		h.former = append(h.former, h.id)
		if len(h.former) > maxFormer {
			h.former = h.former[len(h.former)-maxFormer:]
		}
	}
	h.id, h.stop, h.lost = 0, nil, nil
}

// Withdraw revokes the lease, which deletes the keys with it, and deletes each key still
// on an earlier lease of the holder's (a put whose answer was lost, a lease etcd restored
// after a restart). A key on another lease or on none is left alone: it is not the
// holder's. Renewal stops first, so even when etcd cannot be reached the keys expire
// within the TTL. A lease etcd no longer knows is not an error: its keys are gone with it.
func (h *Holder) Withdraw(ctx context.Context) error {
	keys := h.keys()
	id := h.id
	h.Drop()
	left := make([]int, 0, len(keys)) // the keys that may still be ours
	if id != 0 {
		resp, err := h.Client.Revoke(ctx, id)
		switch {
		case err == nil:
			h.rev = resp.Header.Revision
		case !errors.Is(err, etcd.ErrLeaseNotFound):
			return fmt.Errorf("cannot revoke lease %x: %w", id, err)
		}
	}
	for i := range keys {
		if id != 0 && h.seen[i].lease == id { // the key went with the lease
			h.seen[i] = keyState{}
			continue
		}
		left = append(left, i)
	}
	for _, i := range left {
		if err := h.withdrawKey(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// withdrawKey deletes keys[i] when it is on a lease of the holder's.
func (h *Holder) withdrawKey(ctx context.Context, i int) error {
	key := h.keys()[i]
	resp, err := h.Client.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", key, err)
	}
	h.rev = resp.Header.Revision
	var kv *etcd.KeyValue
	if len(resp.Kvs) > 0 {
		kv = resp.Kvs[0]
	}
	for range maxRaces {
		switch {
		case kv == nil:
			h.seen[i] = keyState{}
			return nil
		case kv.Lease == 0: // a hand-written value: Put may replace it, Withdraw leaves it
			h.seen[i] = stateOf(kv)
			return nil
		case !h.Owns(etcd.LeaseID(kv.Lease)):
			return nil // another's: h.seen[i] must never match it (see Put)
		}
		h.seen[i] = stateOf(kv)
		ok, now, err := h.swap(ctx, []int{i}, []etcd.Op{etcd.OpDelete(key)})
		if err != nil {
			return fmt.Errorf("cannot delete %s: %w", key, err)
		}
		if ok {
			h.seen[i] = keyState{}
			return nil
		}
		kv = now[0]
	}
	return fmt.Errorf("cannot delete %s: it changed under every one of %d deletes", key, maxRaces)
}
