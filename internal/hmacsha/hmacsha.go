// Package hmacsha computes HMAC-SHA-256 in one call, with the x86 SHA
// extensions when the CPU has them.
//
// The controller computes an HMAC for every pickup code it issues and every
// code typed at a cabinet. crypto/hmac over crypto/sha256 takes about 160 ns
// for such a short message on the machine the benchmarks run on, of which
// the two SHA-256 blocks the message needs are some 90 ns: the rest is
// restoring, padding and copying hash states through the hash.Hash
// interface. A Key keeps the two keyed states as eight words each and pads
// the blocks itself, so a code's HMAC is the two blocks and little else
// (about 100 ns).
//
// Only the compression function is not the standard library's: it is Go's
// own SHA-NI routine, copied unchanged (block_amd64.s). Where the CPU lacks
// the SHA extensions, or on other architectures, or when built with the
// purego tag, a Key is crypto/hmac. Tests check the two against each other
// for keys and messages of every length around the block boundaries, and a
// fuzz target does for any.
package hmacsha

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// Size is the length of an HMAC-SHA-256 in bytes.
const Size = sha256.Size

// A Key computes HMAC-SHA-256 under one key. It is not safe for concurrent
// use.
type Key struct {
	in, out [8]uint32 // SHA-256 states after the key's inner and outer pad blocks
	std     hash.Hash // crypto/hmac, where there is no SHA-NI
	buf     [Size]byte
}

// New returns a Key for key (of any length, as crypto/hmac takes it).
func New(key []byte) *Key { return newKey(key, haveSHANI) }

func newKey(key []byte, fast bool) *Key {
	if !fast {
		return &Key{std: hmac.New(sha256.New, key)}
	}
	var k [sha256.BlockSize]byte
	if len(key) > len(k) {
		s := sha256.Sum256(key)
		copy(k[:], s[:])
	} else {
		copy(k[:], key)
	}
	var pad [sha256.BlockSize]byte
	x := &Key{in: iv, out: iv}
	for i := range pad {
		pad[i] = k[i] ^ 0x36
	}
	blockSHANI(&x.in, pad[:])
	for i := range pad {
		pad[i] = k[i] ^ 0x5c
	}
	blockSHANI(&x.out, pad[:])
	return x
}

// iv is SHA-256's initial state.
var iv = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

// Sum returns HMAC-SHA-256(key, msg).
func (x *Key) Sum(msg []byte) (sum [Size]byte) {
	if x.std != nil {
		x.std.Reset()
		x.std.Write(msg)
		copy(sum[:], x.std.Sum(x.buf[:0]))
		return sum
	}
	// Inner hash: the key's pad block is already in x.in; then msg's whole
	// blocks straight from msg, then its tail padded to one or two blocks.
	h := x.in
	whole := len(msg) &^ (sha256.BlockSize - 1)
	if whole > 0 {
		blockSHANI(&h, msg[:whole])
	}
	var b [2 * sha256.BlockSize]byte
	t := copy(b[:], msg[whole:])
	b[t] = 0x80
	end := sha256.BlockSize
	if t >= sha256.BlockSize-8 {
		end = 2 * sha256.BlockSize
	}
	binary.BigEndian.PutUint64(b[end-8:end], uint64(sha256.BlockSize+len(msg))<<3)
	blockSHANI(&h, b[:end])
	// Outer hash: the pad block is in x.out; then the inner digest, padded.
	var o [sha256.BlockSize]byte
	for i, v := range h {
		binary.BigEndian.PutUint32(o[4*i:], v)
	}
	o[Size] = 0x80
	binary.BigEndian.PutUint64(o[sha256.BlockSize-8:], uint64(sha256.BlockSize+Size)<<3)
	h = x.out
	blockSHANI(&h, o[:])
	for i, v := range h {
		binary.BigEndian.PutUint32(sum[4*i:], v)
	}
	return sum
}
