package controller

import "math/bits"

// idWindowLen is how many of a cabinet's latest events idWindow remembers.
//
// The protocol numbers a cabinet's events one by one and gives each a
// unique id; a message the broker delivers twice repeats both, and the
// sequence number alone finds it. The ids find the other kind of
// duplicate: an event the cabinet sent again under a new sequence number
// (firmware that resends what it thinks was lost). That resend follows the
// original closely, a few events later at most, so a short window finds it.
const idWindowLen = 16

// has reads the window's tags as exactly four words: with fewer, its
// constant indexes fail to compile, and with more, this does.
const _ uint = 4 - idWindowLen/4

// idWindow remembers the ids of a cabinet's last idWindowLen handled events
// as 64-bit fingerprints (idPrint): 168 bytes per cabinet whatever the
// ids' length. Two different ids share a fingerprint with probability
// about 2⁻⁶⁴ per pair: 16 pairs per event, so once in 10¹⁸ events. The
// fingerprint is a fixed function of the id, so a run repeats exactly.
//
// Every event a cabinet sends is checked, so the check is made cheap: each
// fingerprint also has a 16-bit tag, four to a word, and the four words
// are compared with a new event's tag a whole word at a time (SWAR). Only
// when a tag matches (a repeat, or by chance once in 2,000 events) are the
// fingerprints compared.
type idWindow struct {
	tags   [idWindowLen / 4]uint64 // tag i in bits 16(i%4)… of word i/4; 0: empty
	prints [idWindowLen]uint64
	next   uint8
}

const (
	lanes16 = 0x0001_0001_0001_0001 // 1 in each 16-bit lane
	highs16 = 0x8000_8000_8000_8000 // the top bit of each lane
)

// tagOf is a fingerprint's tag: its top 15 bits and a 1, so never 0.
func tagOf(f uint64) uint64 { return f>>48 | 1 }

// has reports whether an id with fingerprint f is in the window.
func (w *idWindow) has(f uint64) bool {
	// A lane of x is 0 where the tags match; (x-1)&^x sets the top bit of
	// such a lane (and maybe of lanes above it, which only sends us to the
	// exact comparison). The four words are written out: as a loop, the
	// check took a third more instructions (make count).
	t := tagOf(f) * lanes16
	x0, x1, x2, x3 := w.tags[0]^t, w.tags[1]^t, w.tags[2]^t, w.tags[3]^t
	hit := ((x0-lanes16)&^x0 | (x1-lanes16)&^x1 | (x2-lanes16)&^x2 | (x3-lanes16)&^x3) & highs16
	if hit == 0 {
		return false
	}
	for _, p := range &w.prints {
		if p == f {
			return true
		}
	}
	return false
}

// add puts f in the window in place of the oldest.
func (w *idWindow) add(f uint64) {
	i := w.next % idWindowLen
	w.prints[i] = f
	word, shift := i/4, 16*(i%4)
	w.tags[word] = w.tags[word]&^(0xffff<<shift) | tagOf(f)<<shift
	w.next = i + 1
}

// idPrint is a 64-bit fingerprint of an event id, never 0: the id read
// eight bytes at a time (a short tail read as overlapping words, as wyhash
// does), each word folded in by a 64×64→128-bit multiply. It is not a
// defence against chosen collisions; an attacker who can forge a cabinet's
// events has easier ways to disturb it.
func idPrint(s string) uint64 {
	const k0, k1 = 0x9e3779b97f4a7c15, 0xbf58476d1ce4e5b9
	n := len(s)
	h := uint64(n) * k0
	var w uint64
	switch {
	case n >= 8:
		for t := s; len(t) > 8; t = t[8:] {
			hi, lo := bits.Mul64(h^le64(t), k1)
			h = hi ^ lo
		}
		w = le64(s[n-8:]) // the last eight bytes, overlapping the word before if need be
	case n >= 4:
		w = uint64(le32(s))<<32 | uint64(le32(s[n-4:]))
	case n > 0:
		w = uint64(s[0])<<16 | uint64(s[n>>1])<<8 | uint64(s[n-1])
	}
	hi, lo := bits.Mul64(h^w^k0, k1)
	if h = hi ^ lo; h == 0 {
		return 1
	}
	return h
}

func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func le32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}
