package etcd

import "context"

// ResponseHeader is the header of every etcd answer.
type ResponseHeader struct {
	ClusterID, MemberID uint64
	Revision            int64 // the store's revision when the call was answered
	RaftTerm            uint64
}

// KeyValue is a key as etcd holds it. Key and Value alias the answer they came in.
type KeyValue struct {
	Key, Value     []byte
	CreateRevision int64
	ModRevision    int64
	Version        int64
	Lease          int64 // 0: on no lease
}

// RangeResponse is the answer to Get and GetPrefix.
type RangeResponse struct {
	Header ResponseHeader
	Kvs    []*KeyValue
	More   bool
	Count  int64
}

// PutResponse is the answer to Put.
type PutResponse struct {
	Header ResponseHeader
}

// DeleteResponse is the answer to Delete.
type DeleteResponse struct {
	Header  ResponseHeader
	Deleted int64
}

// TxnResponse is the answer to Txn: Succeeded says whether the comparisons held, and
// Responses are the answers of the operations of the branch that ran, in order.
type TxnResponse struct {
	Header    ResponseHeader
	Succeeded bool
	Responses []*ResponseOp
}

// ResponseOp is the answer to one operation of a Txn: one field is set, the one of
// its kind.
type ResponseOp struct {
	Range  *RangeResponse
	Put    *PutResponse
	Delete *DeleteResponse
}

// Methods of etcd's KV service.
const (
	methodRange  = "/etcdserverpb.KV/Range"
	methodPut    = "/etcdserverpb.KV/Put"
	methodDelete = "/etcdserverpb.KV/DeleteRange"
	methodTxn    = "/etcdserverpb.KV/Txn"
)

// Get reads key.
func (c *Client) Get(ctx context.Context, key string) (*RangeResponse, error) {
	return c.get(ctx, key, "")
}

// GetPrefix reads every key that starts with prefix.
func (c *Client) GetPrefix(ctx context.Context, prefix string) (*RangeResponse, error) {
	return c.get(ctx, prefix, prefixEnd(prefix))
}

func (c *Client) get(ctx context.Context, key, end string) (*RangeResponse, error) {
	var r *RangeResponse
	err := c.call(ctx, Call{Method: methodRange, Verb: "read", Key: key}, retryAll, appendRange(nil, key, end),
		func(b []byte) (err error) { r, err = decodeRange(b); return err })
	return r, err
}

// Put writes value at key, on lease (0 for none).
func (c *Client) Put(ctx context.Context, key, value string, lease LeaseID) (*PutResponse, error) {
	r := &PutResponse{}
	err := c.call(ctx, Call{Method: methodPut, Verb: "write", Key: key}, retryUnsent, appendPut(nil, key, value, lease),
		func(b []byte) error { return decodeHeaderOnly(b, &r.Header) })
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Delete deletes key.
func (c *Client) Delete(ctx context.Context, key string) (*DeleteResponse, error) {
	var r *DeleteResponse
	err := c.call(ctx, Call{Method: methodDelete, Verb: "delete", Key: key}, retryUnsent, appendRange(nil, key, ""),
		func(b []byte) (err error) { r, err = decodeDelete(b); return err })
	return r, err
}

// CmpTarget is what a Cmp compares.
type CmpTarget int

// Compare targets, as etcd numbers them.
const (
	CmpModRevision CmpTarget = 2
	CmpLease       CmpTarget = 4
)

// Cmp is one comparison of a Txn: the key's Target equals Value. A key that does not
// exist has mod revision 0 and lease 0.
type Cmp struct {
	Key    string
	Target CmpTarget
	Value  int64
}

// ModRevisionIs compares key's mod revision with rev.
func ModRevisionIs(key string, rev int64) Cmp {
	return Cmp{Key: key, Target: CmpModRevision, Value: rev}
}

// LeaseIs compares key's lease with id.
func LeaseIs(key string, id LeaseID) Cmp { return Cmp{Key: key, Target: CmpLease, Value: int64(id)} }

type opKind int

const (
	opGet opKind = iota
	opPut
	opDelete
)

// Op is one operation of a Txn: OpGet, OpPut or OpDelete.
type Op struct {
	kind     opKind
	key, end string
	value    string
	lease    LeaseID
}

// OpGet reads key.
func OpGet(key string) Op { return Op{kind: opGet, key: key} }

// OpPut writes value at key on lease (0 for none).
func OpPut(key, value string, lease LeaseID) Op {
	return Op{kind: opPut, key: key, value: value, lease: lease}
}

// OpDelete deletes key.
func OpDelete(key string) Op { return Op{kind: opDelete, key: key} }

// Txn runs then if every comparison in cmps holds, else els, atomically.
func (c *Client) Txn(ctx context.Context, cmps []Cmp, then, els []Op) (*TxnResponse, error) {
	what := Call{Method: methodTxn}
	for _, op := range then {
		if op.kind != opGet {
			what.Verb, what.Key = "write", op.key
			if op.kind == opDelete {
				what.Verb = "delete"
			}
			break
		}
	}
	if what.Verb == "" && len(cmps) > 0 {
		what.Verb, what.Key = "read", cmps[0].Key
	}
	var r *TxnResponse
	err := c.call(ctx, what, retryUnsent, appendTxn(nil, cmps, then, els),
		func(b []byte) (err error) { r, err = decodeTxn(b); return err })
	return r, err
}

// prefixEnd is the range end that makes a range of every key starting with prefix: the
// prefix with its last byte below 0xff incremented, and what follows it cut.
func prefixEnd(prefix string) string {
	end := []byte(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return string(end[:i+1])
		}
	}
	return "\x00" // every key from prefix on
}
