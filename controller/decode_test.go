package controller

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCanonicalRoundTrip(t *testing.T) {
	r := newRig(t, testSettings())
	chaos(t, r, 3, 400)
	for _, e := range r.log.Events() {
		b := e.AppendCanonical(nil)
		got, err := DecodeCanonical(b)
		require.NoError(t, err)
		got.Prev, got.Hash = e.Prev, e.Hash
		require.Equal(t, e, got)
	}
	for _, bad := range [][]byte{nil, {1}, {1, 2, 0}, append(r.log.Events()[0].AppendCanonical(nil), 9)} {
		_, err := DecodeCanonical(bad)
		require.ErrorIs(t, err, ErrBadEncoding)
	}
}

// TestCanonicalOptionalFields: digest and spec are written only when
// set, and every event has exactly one encoding.
func TestCanonicalOptionalFields(t *testing.T) {
	plain := Event{Seq: 7, At: 42, Kind: Deposited, Parcel: "p1", Cabinet: 0, Compartment: 3}
	withAll := plain
	withAll.Digest[0] = 1
	withAll.Spec = &ParcelSpec{Class: "S"}
	base := plain.AppendCanonical(nil)
	flagsAt := len(base) - 1 // the flags byte ends an event without options
	require.Zero(t, base[flagsAt])
	require.Len(t, withAll.AppendCanonical(nil), len(base)+32+2+6, "digest, and a spec: class S (2 bytes) and six empty fields")

	tests := []struct {
		name string
		b    []byte
	}{
		{"an unknown flag", append(append([]byte{}, base[:flagsAt]...), 1<<5)},
		{"a flagged digest of zeros", append(append(append([]byte{}, base[:flagsAt]...), flagDigest), make([]byte, 32)...)},
		{"the retired lookup flag", append(append(append([]byte{}, base[:flagsAt]...), 1<<2), make([]byte, 16)...)},
		{"a flagged digest cut short", append(append(append([]byte{}, base[:flagsAt]...), flagDigest), 1, 2, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCanonical(tt.b)
			require.ErrorIs(t, err, ErrBadEncoding)
		})
	}
	for _, e := range []Event{plain, withAll} {
		got, err := DecodeCanonical(e.AppendCanonical(nil))
		require.NoError(t, err)
		require.Equal(t, e, got)
	}
}

// FuzzDecodeCanonical: a store's bytes are outside input. Whatever they
// are, decoding returns an event that re-encodes to the same bytes, or an
// error.
func FuzzDecodeCanonical(f *testing.F) {
	r := newRig(f, testSettings())
	r.deposit("p1", "S")
	for _, e := range r.log.Events() {
		f.Add(e.AppendCanonical(nil))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeCanonical(b)
		if err != nil {
			require.ErrorIs(t, err, ErrBadEncoding)
			return
		}
		require.Equal(t, b, e.AppendCanonical(nil))
		// A checker reading a forged log reports, never panics or runs away.
		k := NewChecker(CodeLimits{})
		k.Rehash = false
		k.Check(&e)
	})
}
