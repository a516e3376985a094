// Package digest computes SHA-256 and HMAC-SHA-256 of a whole message in
// one call, with the x86 SHA extensions when the CPU has them.
//
// The controller hashes every event it logs into the chain and computes an
// HMAC for every pickup code it issues and every code typed at a cabinet.
// Through crypto/sha256 and crypto/hmac, a code's HMAC takes about 165 ns
// on the machine the benchmarks run on, of which the two SHA-256 blocks it
// needs are some 90: the rest is restoring, padding and copying hash states
// through the hash.Hash interface. A logged event's hash (two blocks: the
// previous hash and 35–83 canonical bytes) takes about 138 ns through
// sha256.Sum256. Here the states are eight words and the blocks are padded
// in place, so the HMAC takes about 110 ns and the event's hash about 88.
//
// Only the compression function is not the standard library's, and it is
// Go's own SHA-NI routine, copied unchanged (block_amd64.s). Where the CPU
// lacks the SHA extensions, on other architectures, and when built with the
// purego tag, Sum256 is crypto/sha256's and an HMAC is crypto/hmac. Tests
// check both ways against the standard library for keys and messages of
// every length around the block boundaries, and a fuzz target does for any.
package digest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// Size is the length of a SHA-256 or HMAC-SHA-256 in bytes.
const Size = sha256.Size

const blockSize = sha256.BlockSize

// iv is SHA-256's initial state.
var iv = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

// Sum256 returns the SHA-256 of msg.
func Sum256(msg []byte) [Size]byte { return sum256(msg, haveSHANI) }

func sum256(msg []byte, fast bool) [Size]byte {
	if !fast {
		return sha256.Sum256(msg)
	}
	h := iv
	finish(&h, msg, 0)
	return bigEndian(&h)
}

// finish hashes msg into h, whose state has taken `before` bytes already
// (whole blocks), and pads the end: msg's whole blocks straight from msg,
// then its tail and the padding in one block or two.
func finish(h *[8]uint32, msg []byte, before int) {
	whole := len(msg) &^ (blockSize - 1)
	if whole > 0 {
		blockSHANI(h, msg[:whole])
	}
	var b [2 * blockSize]byte
	t := copy(b[:], msg[whole:])
	b[t] = 0x80
	end := blockSize
	if t >= blockSize-8 {
		end = 2 * blockSize
	}
	binary.BigEndian.PutUint64(b[end-8:end], uint64(before+len(msg))<<3)
	blockSHANI(h, b[:end])
}

func bigEndian(h *[8]uint32) (sum [Size]byte) {
	for i, v := range h {
		binary.BigEndian.PutUint32(sum[4*i:], v)
	}
	return sum
}

// An HMAC computes HMAC-SHA-256 under one key. It is not safe for
// concurrent use.
type HMAC struct {
	in, out [8]uint32 // SHA-256 states after the key's inner and outer pad blocks
	std     hash.Hash // crypto/hmac, where there is no SHA-NI
	buf     [Size]byte
}

// NewHMAC returns an HMAC for key (of any length, as crypto/hmac takes it).
func NewHMAC(key []byte) *HMAC { return newHMAC(key, haveSHANI) }

func newHMAC(key []byte, fast bool) *HMAC {
	if !fast {
		return &HMAC{std: hmac.New(sha256.New, key)}
	}
	var k [blockSize]byte
	if len(key) > len(k) {
		s := sum256(key, true)
		copy(k[:], s[:])
	} else {
		copy(k[:], key)
	}
	var pad [blockSize]byte
	x := &HMAC{in: iv, out: iv}
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

// Sum returns HMAC-SHA-256(key, msg).
func (x *HMAC) Sum(msg []byte) [Size]byte {
	if x.std != nil {
		var sum [Size]byte
		x.std.Reset()
		x.std.Write(msg)
		copy(sum[:], x.std.Sum(x.buf[:0]))
		return sum
	}
	h := x.in
	finish(&h, msg, blockSize)
	inner := bigEndian(&h)
	h = x.out
	finish(&h, inner[:], blockSize)
	return bigEndian(&h)
}
