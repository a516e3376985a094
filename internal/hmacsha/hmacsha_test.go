package hmacsha

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
)

func stdSum(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// ramp returns n bytes that differ from one another.
func ramp(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// paths are the two ways a Key computes: the SHA-NI one where this machine
// has it, and crypto/hmac.
func paths(t testing.TB) []bool {
	if !haveSHANI {
		t.Log("this CPU or build has no SHA-NI: only the crypto/hmac path is tested")
		return []bool{false}
	}
	return []bool{true, false}
}

// TestSumIsHMACSHA256: every key length around the block size (a key
// longer than a block is hashed first) and every message length over three
// blocks, where the padding takes one block or two.
func TestSumIsHMACSHA256(t *testing.T) {
	for _, fast := range paths(t) {
		for _, kl := range []int{0, 1, 16, 32, 63, 64, 65, 100, 200} {
			key := ramp(kl, 3)
			x := newKey(key, fast)
			for ml := 0; ml <= 3*sha256.BlockSize+1; ml++ {
				msg := ramp(ml, 11)
				got := x.Sum(msg)
				require.Equal(t, stdSum(key, msg), got[:], "fast %v, key %d bytes, message %d bytes", fast, kl, ml)
			}
		}
	}
}

// TestSumKnownAnswer is RFC 4231's test case 2.
func TestSumKnownAnswer(t *testing.T) {
	for _, fast := range paths(t) {
		got := newKey([]byte("Jefe"), fast).Sum([]byte("what do ya want for nothing?"))
		require.Equal(t, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", hex.EncodeToString(got[:]), "fast %v", fast)
	}
}

// TestSumLeavesTheKeyAsItWas: a Key gives the same sum again after others.
func TestSumLeavesTheKeyAsItWas(t *testing.T) {
	for _, fast := range paths(t) {
		x := newKey([]byte("k"), fast)
		first := x.Sum([]byte("cabinet|parcel|12345678"))
		x.Sum(ramp(150, 1))
		require.Equal(t, first, x.Sum([]byte("cabinet|parcel|12345678")), "fast %v", fast)
	}
}

func FuzzSum(f *testing.F) {
	f.Add([]byte("key"), []byte("cabinet-1|parcel-1.a|12345678"))
	f.Add(ramp(64, 0), ramp(55, 0))
	f.Add(ramp(65, 0), ramp(56, 0))
	f.Fuzz(func(t *testing.T, key, msg []byte) {
		want := stdSum(key, msg)
		for _, fast := range paths(t) {
			got := newKey(key, fast).Sum(msg)
			require.Equal(t, want, got[:], "fast %v", fast)
		}
	})
}

// BenchmarkSum: a pickup code's HMAC (cabinet|parcel|code), against
// crypto/hmac.
func BenchmarkSum(b *testing.B) {
	key := []byte("0123456789abcdef0123456789abcdef")
	msg := []byte("c-0001|site-01-0123.3f|12345678")
	for _, fast := range paths(b) {
		name := "crypto-hmac"
		if fast {
			name = "sha-ni"
		}
		b.Run(name, func(b *testing.B) {
			x := newKey(key, fast)
			b.ReportAllocs()
			for b.Loop() {
				x.Sum(msg)
			}
		})
	}
}
