package etcd

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Protocol buffers, by hand: the few etcd messages this client sends and reads, with the
// field numbers of etcd's api/etcdserverpb/rpc.proto and api/mvccpb/kv.proto. Encoding
// appends to a byte slice; decoding walks a message's fields and skips the ones it does
// not know, as protobuf requires. A decoded key or value aliases the answer's bytes.

// Wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// errMalformed is wrapped by every decoding error: etcd's answer is not the message expected.
var errMalformed = errors.New("malformed protobuf")

func appendTag(b []byte, num, typ int) []byte {
	return binary.AppendUvarint(b, uint64(num)<<3|uint64(typ))
}

// appendInt appends an int64, enum or bool field; proto3 leaves out zero values.
func appendInt(b []byte, num int, v int64) []byte {
	if v == 0 {
		return b
	}
	return binary.AppendUvarint(appendTag(b, num, wireVarint), uint64(v))
}

func appendBool(b []byte, num int, v bool) []byte {
	if !v {
		return b
	}
	return appendInt(b, num, 1)
}

// appendString appends a bytes or string field; proto3 leaves out empty ones.
func appendString(b []byte, num int, s string) []byte {
	if s == "" {
		return b
	}
	b = binary.AppendUvarint(appendTag(b, num, wireBytes), uint64(len(s)))
	return append(b, s...)
}

// appendMessage appends a message field made by enc, which appends the message's
// fields. It is written even when empty: a oneof's presence is its tag.
func appendMessage(b []byte, num int, enc func([]byte) []byte) []byte {
	b = appendTag(b, num, wireBytes)
	// A length below 128 takes one byte: reserve it, then move the body when longer.
	at := len(b)
	b = append(b, 0)
	b = enc(b)
	n := len(b) - at - 1
	if n < 0x80 {
		b[at] = byte(n)
		return b
	}
	var l [binary.MaxVarintLen64]byte
	ln := binary.PutUvarint(l[:], uint64(n))
	b = append(b, l[1:ln]...) // grow by the extra length bytes
	copy(b[at+ln:], b[at+1:at+1+n])
	copy(b[at:], l[:ln])
	return b
}

// field is one field of a message being decoded: its number, wire type, and its value
// (u for varints and fixed values, b for length-delimited ones).
type field struct {
	num, typ int
	u        uint64
	b        []byte
}

// nextField reads the field at the start of b and returns it and what follows it.
func nextField(b []byte) (field, []byte, error) {
	key, n := binary.Uvarint(b)
	if n <= 0 {
		return field{}, nil, fmt.Errorf("%w: bad field key", errMalformed)
	}
	b = b[n:]
	f := field{num: int(key >> 3), typ: int(key & 7)}
	if key>>3 == 0 || key>>3 > 1<<29 {
		return field{}, nil, fmt.Errorf("%w: field number %d", errMalformed, key>>3)
	}
	switch f.typ {
	case wireVarint:
		f.u, n = binary.Uvarint(b)
		if n <= 0 {
			return field{}, nil, fmt.Errorf("%w: bad varint in field %d", errMalformed, f.num)
		}
		b = b[n:]
	case wireFixed64:
		if len(b) < 8 {
			return field{}, nil, fmt.Errorf("%w: short fixed64 in field %d", errMalformed, f.num)
		}
		f.u, b = binary.LittleEndian.Uint64(b), b[8:]
	case wireFixed32:
		if len(b) < 4 {
			return field{}, nil, fmt.Errorf("%w: short fixed32 in field %d", errMalformed, f.num)
		}
		f.u, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
	case wireBytes:
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return field{}, nil, fmt.Errorf("%w: bad length in field %d", errMalformed, f.num)
		}
		f.b, b = b[n:n+int(l)], b[n+int(l):]
	default:
		return field{}, nil, fmt.Errorf("%w: wire type %d in field %d", errMalformed, f.typ, f.num)
	}
	return f, b, nil
}

// fields calls fn for each field of the message b, stopping at the first error.
func fields(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
		b = rest
	}
	return nil
}

// is reports whether f is field num with wire type typ; a field of a known number
// with another wire type is skipped like an unknown one.
func (f field) is(num, typ int) bool { return f.num == num && f.typ == typ }

func (f field) int() int64 { return int64(f.u) }

// Field numbers of the messages below, from rpc.proto and kv.proto.

func decodeHeader(b []byte, h *ResponseHeader) error {
	return fields(b, func(f field) error {
		switch {
		case f.is(1, wireVarint):
			h.ClusterID = f.u
		case f.is(2, wireVarint):
			h.MemberID = f.u
		case f.is(3, wireVarint):
			h.Revision = f.int()
		case f.is(4, wireVarint):
			h.RaftTerm = f.u
		}
		return nil
	})
}

func decodeKeyValue(b []byte) (*KeyValue, error) {
	kv := &KeyValue{}
	return kv, fields(b, func(f field) error {
		switch {
		case f.is(1, wireBytes):
			kv.Key = f.b
		case f.is(2, wireVarint):
			kv.CreateRevision = f.int()
		case f.is(3, wireVarint):
			kv.ModRevision = f.int()
		case f.is(4, wireVarint):
			kv.Version = f.int()
		case f.is(5, wireBytes):
			kv.Value = f.b
		case f.is(6, wireVarint):
			kv.Lease = f.int()
		}
		return nil
	})
}

// appendRange appends a RangeRequest's fields: key 1, range_end 2.
func appendRange(b []byte, key, end string) []byte {
	return appendString(appendString(b, 1, key), 2, end)
}

func decodeRange(b []byte) (*RangeResponse, error) {
	r := &RangeResponse{}
	return r, fields(b, func(f field) error {
		switch {
		case f.is(1, wireBytes):
			return decodeHeader(f.b, &r.Header)
		case f.is(2, wireBytes):
			kv, err := decodeKeyValue(f.b)
			r.Kvs = append(r.Kvs, kv)
			return err
		case f.is(3, wireVarint):
			r.More = f.u != 0
		case f.is(4, wireVarint):
			r.Count = f.int()
		}
		return nil
	})
}

// appendPut appends a PutRequest's fields: key 1, value 2, lease 3.
func appendPut(b []byte, key, value string, lease LeaseID) []byte {
	return appendInt(appendString(appendString(b, 1, key), 2, value), 3, int64(lease))
}

// decodeHeaderOnly decodes a message whose field 1 is its ResponseHeader (PutResponse,
// LeaseRevokeResponse), ignoring the rest.
func decodeHeaderOnly(b []byte, h *ResponseHeader) error {
	return fields(b, func(f field) error {
		if f.is(1, wireBytes) {
			return decodeHeader(f.b, h)
		}
		return nil
	})
}

func decodeDelete(b []byte) (*DeleteResponse, error) {
	r := &DeleteResponse{}
	return r, fields(b, func(f field) error {
		switch {
		case f.is(1, wireBytes):
			return decodeHeader(f.b, &r.Header)
		case f.is(2, wireVarint):
			r.Deleted = f.int()
		}
		return nil
	})
}

// appendOp appends a RequestOp's oneof: request_range 1, request_put 2,
// request_delete_range 3.
func appendOp(b []byte, op Op) []byte {
	switch op.kind {
	case opGet:
		return appendMessage(b, 1, func(b []byte) []byte { return appendRange(b, op.key, op.end) })
	case opPut:
		return appendMessage(b, 2, func(b []byte) []byte { return appendPut(b, op.key, op.value, op.lease) })
	default:
		return appendMessage(b, 3, func(b []byte) []byte { return appendRange(b, op.key, op.end) })
	}
}

// appendCompare appends a Compare's fields: result 1, target 2, key 3, then the value
// of the target: mod_revision 6 or lease 8.
func appendCompare(b []byte, c Cmp) []byte {
	b = appendInt(b, 2, int64(c.Target))
	b = appendString(b, 3, c.Key)
	num := 6
	if c.Target == CmpLease {
		num = 8
	}
	// A oneof member is written even when zero: etcd must know which target it holds.
	return binary.AppendUvarint(appendTag(b, num, wireVarint), uint64(c.Value))
}

// appendTxn appends a TxnRequest's fields: compare 1, success 2, failure 3.
func appendTxn(b []byte, cmps []Cmp, then, els []Op) []byte {
	for _, c := range cmps {
		b = appendMessage(b, 1, func(b []byte) []byte { return appendCompare(b, c) })
	}
	for _, op := range then {
		b = appendMessage(b, 2, func(b []byte) []byte { return appendOp(b, op) })
	}
	for _, op := range els {
		b = appendMessage(b, 3, func(b []byte) []byte { return appendOp(b, op) })
	}
	return b
}

func decodeTxn(b []byte) (*TxnResponse, error) {
	r := &TxnResponse{}
	return r, fields(b, func(f field) error {
		switch {
		case f.is(1, wireBytes):
			return decodeHeader(f.b, &r.Header)
		case f.is(2, wireVarint):
			r.Succeeded = f.u != 0
		case f.is(3, wireBytes):
			op := &ResponseOp{}
			r.Responses = append(r.Responses, op)
			return fields(f.b, func(f field) error {
				var err error
				switch {
				case f.is(1, wireBytes):
					op.Range, err = decodeRange(f.b)
				case f.is(2, wireBytes):
					op.Put = &PutResponse{}
					err = decodeHeaderOnly(f.b, &op.Put.Header)
				case f.is(3, wireBytes):
					op.Delete, err = decodeDelete(f.b)
				}
				return err
			})
		}
		return nil
	})
}

// decodeLease decodes LeaseGrantResponse, LeaseKeepAliveResponse and
// LeaseTimeToLiveResponse, which share their first fields: header 1, ID 2, TTL 3; then
// grantedTTL 4 and keys 5 of LeaseTimeToLiveResponse, or error 4 of LeaseGrantResponse.
func decodeLease(b []byte, grant bool) (*LeaseResponse, error) {
	r := &LeaseResponse{}
	return r, fields(b, func(f field) error {
		switch {
		case f.is(1, wireBytes):
			return decodeHeader(f.b, &r.Header)
		case f.is(2, wireVarint):
			r.ID = LeaseID(f.int())
		case f.is(3, wireVarint):
			r.TTL = f.int()
		case f.is(4, wireVarint) && !grant:
			r.GrantedTTL = f.int()
		case f.is(4, wireBytes) && grant:
			r.Error = string(f.b)
		case f.is(5, wireBytes) && !grant:
			r.Keys = append(r.Keys, f.b)
		}
		return nil
	})
}

// appendWatchCreate appends a WatchRequest holding a WatchCreateRequest
// (create_request 1): key 1, range_end 2, start_revision 3.
func appendWatchCreate(b []byte, key, end string, rev int64) []byte {
	return appendMessage(b, 1, func(b []byte) []byte {
		return appendInt(appendString(appendString(b, 1, key), 2, end), 3, rev)
	})
}

func decodeWatch(b []byte) (*WatchResponse, error) {
	r := &WatchResponse{}
	return r, fields(b, func(f field) error {
		switch {
		case f.is(1, wireBytes):
			return decodeHeader(f.b, &r.Header)
		case f.is(2, wireVarint):
			r.WatchID = f.int()
		case f.is(3, wireVarint):
			r.Created = f.u != 0
		case f.is(4, wireVarint):
			r.Canceled = f.u != 0
		case f.is(5, wireVarint):
			r.CompactRevision = f.int()
		case f.is(6, wireBytes):
			r.CancelReason = string(f.b)
		case f.is(11, wireBytes):
			ev := &Event{}
			r.Events = append(r.Events, ev)
			return fields(f.b, func(f field) error {
				var err error
				switch {
				case f.is(1, wireVarint):
					ev.Type = EventType(f.int())
				case f.is(2, wireBytes):
					ev.Kv, err = decodeKeyValue(f.b)
				case f.is(3, wireBytes):
					ev.PrevKv, err = decodeKeyValue(f.b)
				}
				return err
			})
		}
		return nil
	})
}

// appendAuthenticate appends an AuthenticateRequest's fields: name 1, password 2.
func appendAuthenticate(b []byte, name, password string) []byte {
	return appendString(appendString(b, 1, name), 2, password)
}

func decodeAuthenticate(b []byte) (token string, err error) {
	err = fields(b, func(f field) error {
		if f.is(2, wireBytes) {
			token = string(f.b)
		}
		return nil
	})
	return token, err
}
