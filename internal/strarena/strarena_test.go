package strarena

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestArenaStringsKeepTheirBytes(t *testing.T) {
	var a Arena
	var got []string
	var buf []byte
	for i := range 5000 {
		buf = strconv.AppendInt(append(buf[:0], "cab-"...), int64(i), 10)
		got = append(got, a.String(buf))
		buf[0] = 'X' // the caller's buffer is theirs to reuse
	}
	runtime.GC()
	for i, s := range got {
		require.Equal(t, "cab-"+strconv.Itoa(i), s)
	}
	require.Equal(t, "", a.String(nil))
	long := make([]byte, ChunkSize)
	for i := range long {
		long[i] = 'a' + byte(i%26)
	}
	s := a.String(long)
	long[0] = 'Z'
	require.Equal(t, byte('a'), s[0], "a long string is copied on its own")
	require.Len(t, s, ChunkSize)
}

func TestArenaAllocatesAChunkForManyStrings(t *testing.T) {
	var a Arena
	b := []byte("city-12-c123456")
	allocs := testing.AllocsPerRun(1000, func() { _ = a.String(b) })
	require.Less(t, allocs, 0.05, "one chunk per %d strings", ChunkSize/len(b))
}

func BenchmarkArenaString(b *testing.B) {
	var a Arena
	id := []byte("city-12-c123456")
	for b.Loop() {
		_ = a.String(id)
	}
}

func BenchmarkPlainString(b *testing.B) {
	id := []byte("city-12-c123456")
	var s string
	for b.Loop() {
		s = string(id)
	}
	_ = s
}
