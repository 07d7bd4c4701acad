package etcd

import (
	"bytes"
	"testing"
)

// FuzzDecodeResponse feeds hostile bytes to every decoder: none may panic, and a
// decoded key must lie within the input (no copy of memory from elsewhere).
func FuzzDecodeResponse(f *testing.F) {
	kv := appendMessage(nil, 2, func(b []byte) []byte { return appendPut(b, "/k", "v", 7) }) // a RangeResponse kv
	f.Add(kv)
	f.Add(appendMessage(nil, 11, func(b []byte) []byte {
		return appendMessage(appendInt(b, 1, 1), 2, func(b []byte) []byte { return appendPut(b, "/k", "", 0) })
	}))
	f.Add(appendMessage(nil, 3, func(b []byte) []byte { return appendMessage(b, 1, func(b []byte) []byte { return kv }) }))
	f.Add(appendInt(appendInt(nil, 2, 9), 3, 5))
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := decodeRange(b); err == nil {
			for _, kv := range r.Kvs {
				if len(kv.Key) > 0 && !bytes.Contains(b, kv.Key) {
					t.Fatalf("key %q not in the input", kv.Key)
				}
			}
		}
		decodeTxn(b)
		decodeWatch(b)
		decodeLease(b, true)
		decodeLease(b, false)
		decodeDelete(b)
		decodeAuthenticate(b)
		var h ResponseHeader
		decodeHeaderOnly(b, &h)
	})
}

// TestAppendMessage_LongBody: a message of 128 bytes or more takes a longer length
// prefix, moved in place.
func TestAppendMessage_LongBody(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 300, 20000} {
		v := string(bytes.Repeat([]byte{'x'}, n))
		b := appendMessage([]byte{0xaa}, 5, func(b []byte) []byte { return appendString(b, 1, v) })
		f, rest, err := nextField(b[1:])
		if err != nil || len(rest) != 0 || f.num != 5 {
			t.Fatalf("n=%d: %v %d %v", n, f.num, len(rest), err)
		}
		inner, _, err := nextField(f.b)
		if n > 0 && (err != nil || string(inner.b) != v) {
			t.Fatalf("n=%d: inner %d bytes, %v", n, len(inner.b), err)
		}
	}
}
