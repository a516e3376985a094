package digest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
)

func stdHMAC(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// ramp returns n bytes, each 7 more than the one before.
func ramp(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// paths are the two ways this package computes: with SHA-NI where this
// machine has it, and through the standard library.
func paths(t testing.TB) []bool {
	if !haveSHANI {
		t.Log("this CPU or build has no SHA-NI: only the standard library path is tested")
		return []bool{false}
	}
	return []bool{true, false}
}

// TestHMACIsCryptoHMAC: every key length around the block size (a key
// longer than a block is hashed first) and every message length over three
// blocks, where the padding takes one block or two.
func TestHMACIsCryptoHMAC(t *testing.T) {
	for _, fast := range paths(t) {
		for _, kl := range []int{0, 1, 16, 32, 63, 64, 65, 100, 200} {
			key := ramp(kl, 3)
			x := newHMAC(key, fast)
			for ml := 0; ml <= 3*sha256.BlockSize+1; ml++ {
				msg := ramp(ml, 11)
				got := x.Sum(msg)
				require.Equal(t, stdHMAC(key, msg), got[:], "fast %v, key %d bytes, message %d bytes", fast, kl, ml)
			}
		}
	}
}

// TestHMACKnownAnswer is RFC 4231's test case 2.
func TestHMACKnownAnswer(t *testing.T) {
	for _, fast := range paths(t) {
		got := newHMAC([]byte("Jefe"), fast).Sum([]byte("what do ya want for nothing?"))
		require.Equal(t, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", hex.EncodeToString(got[:]), "fast %v", fast)
	}
}

// TestHMACLeavesTheKeyAsItWas: an HMAC gives the same sum again after others.
func TestHMACLeavesTheKeyAsItWas(t *testing.T) {
	for _, fast := range paths(t) {
		x := newHMAC([]byte("k"), fast)
		first := x.Sum([]byte("cabinet|parcel|12345678"))
		x.Sum(ramp(150, 1))
		require.Equal(t, first, x.Sum([]byte("cabinet|parcel|12345678")), "fast %v", fast)
	}
}

func FuzzHMAC(f *testing.F) {
	f.Add([]byte("key"), []byte("cabinet-1|parcel-1.a|12345678"))
	f.Add(ramp(64, 0), ramp(55, 0))
	f.Add(ramp(65, 0), ramp(56, 0))
	f.Fuzz(func(t *testing.T, key, msg []byte) {
		want := stdHMAC(key, msg)
		for _, fast := range paths(t) {
			got := newHMAC(key, fast).Sum(msg)
			require.Equal(t, want, got[:], "fast %v", fast)
		}
	})
}

// BenchmarkHMAC: a pickup code's HMAC (cabinet|parcel|code), against
// crypto/hmac.
func BenchmarkHMAC(b *testing.B) {
	key := []byte("0123456789abcdef0123456789abcdef")
	msg := []byte("c-0001|site-01-0123.3f|12345678")
	for _, fast := range paths(b) {
		name := "crypto-hmac"
		if fast {
			name = "sha-ni"
		}
		b.Run(name, func(b *testing.B) {
			x := newHMAC(key, fast)
			b.ReportAllocs()
			for b.Loop() {
				x.Sum(msg)
			}
		})
	}
}

// TestSum256IsCryptoSHA256: every message length over four blocks.
func TestSum256IsCryptoSHA256(t *testing.T) {
	for _, fast := range paths(t) {
		for n := 0; n <= 4*sha256.BlockSize+1; n++ {
			msg := ramp(n, 5)
			require.Equal(t, sha256.Sum256(msg), sum256(msg, fast), "fast %v, message %d bytes", fast, n)
		}
	}
}

// TestSum256KnownAnswer is FIPS 180-2's "abc".
func TestSum256KnownAnswer(t *testing.T) {
	for _, fast := range paths(t) {
		got := sum256([]byte("abc"), fast)
		require.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", hex.EncodeToString(got[:]), "fast %v", fast)
	}
}

func FuzzSum256(f *testing.F) {
	f.Add([]byte("abc"))
	f.Add(ramp(55, 0))
	f.Add(ramp(56, 0))
	f.Fuzz(func(t *testing.T, msg []byte) {
		want := sha256.Sum256(msg)
		for _, fast := range paths(t) {
			require.Equal(t, want, sum256(msg, fast), "fast %v", fast)
		}
	})
}

// BenchmarkSum256: a logged event's hash, against crypto/sha256. The
// previous hash and an event's canonical bytes come to 67–115 bytes for the
// events of a parcel's lifecycle (two blocks with the padding): 100 here.
func BenchmarkSum256(b *testing.B) {
	msg := ramp(100, 1)
	for _, fast := range paths(b) {
		name := "crypto-sha256"
		if fast {
			name = "sha-ni"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sum256(msg, fast)
			}
		})
	}
}
