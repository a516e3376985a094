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
	})
}
