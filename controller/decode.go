package controller

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrBadEncoding is returned for bytes that are not an event's canonical form.
var ErrBadEncoding = errors.New("not a canonical event encoding")

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || (n > 1 && r.b[n-1] == 0) { // overlong: not canonical
		r.err = ErrBadEncoding
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 || (n > 1 && r.b[n-1] == 0) { // overlong: not canonical
		r.err = ErrBadEncoding
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = ErrBadEncoding
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > 1<<16 {
		r.err = ErrBadEncoding
		return ""
	}
	return string(r.bytes(int(n)))
}

func (r *reader) int32() int32 {
	v := r.varint()
	if v < -1<<31 || v >= 1<<31 {
		r.err = ErrBadEncoding
	}
	return int32(v)
}

// DecodeCanonical reads an event back from its canonical bytes (what
// AppendCanonical writes, and what a store keeps). Prev and Hash are not
// part of them; the caller sets them and Verify checks them.
func DecodeCanonical(b []byte) (Event, error) {
	r := &reader{b: b}
	var e Event
	e.Seq = r.uvarint()
	e.At = r.varint()
	kind := r.bytes(1)
	if r.err == nil {
		e.Kind = Kind(kind[0])
	}
	e.Parcel = r.string()
	e.Cabinet = r.int32()
	e.Compartment = r.int32()
	e.Command = r.string()
	e.CabinetSeq = r.uvarint()
	e.Num = r.varint()
	e.Num2 = r.varint()
	e.Text = r.string()
	var flags byte
	if f := r.bytes(1); r.err == nil {
		flags = f[0]
		if flags&^flagsKnown != 0 {
			r.err = ErrBadEncoding
		}
	}
	// A flagged field is never all zeros: that event's canonical form
	// leaves it out, and every event has exactly one form.
	if flags&flagDigest != 0 {
		if copy(e.Digest[:], r.bytes(32)); r.err == nil && e.Digest == ([32]byte{}) {
			r.err = ErrBadEncoding
		}
	}
	if r.err == nil && flags&flagSpec != 0 {
		s := &ParcelSpec{}
		s.Class = r.string()
		s.LengthMm = int(r.int32())
		s.WidthMm = int(r.int32())
		s.HeightMm = int(r.int32())
		s.Zone = r.string()
		s.MaxTopMm = int(r.int32())
		s.PreferCabinet = r.string()
		e.Spec = s
	}
	switch {
	case r.err != nil:
		return Event{}, r.err
	case len(r.b) != 0:
		return Event{}, fmt.Errorf("%w: %d trailing bytes", ErrBadEncoding, len(r.b))
	case e.Kind == KindInvalid || e.Kind >= numKinds:
		return Event{}, fmt.Errorf("%w: unknown kind %d", ErrBadEncoding, e.Kind)
	}
	return e, nil
}
