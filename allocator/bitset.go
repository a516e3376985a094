package allocator

import "math/bits"

// bitset is a three-level hierarchical bitset over [0, n): level 0 holds the
// bits, level 1 a bit per non-empty level-0 word, level 2 a bit per non-empty
// level-1 word. Finding the next set bit from any position costs a handful
// of word operations whatever n is (up to 2^18), which is what keeps an
// allocation flat as a bank grows.
type bitset struct {
	l0, l1, l2 []uint64
	count      int
}

const maxBitsetLen = 64 * 64 * 64

func newBitset(n int) bitset {
	if n > maxBitsetLen {
		panic("allocator: more than 262144 compartments or cabinets in one inventory")
	}
	w0 := (n + 63) / 64
	w1 := (w0 + 63) / 64
	w2 := (w1 + 63) / 64
	return bitset{l0: make([]uint64, max(w0, 1)), l1: make([]uint64, max(w1, 1)), l2: make([]uint64, max(w2, 1))}
}

func (b *bitset) has(i int) bool { return b.l0[i>>6]&(1<<(uint(i)&63)) != 0 }

func (b *bitset) set(i int) {
	w := i >> 6
	m := uint64(1) << (uint(i) & 63)
	if b.l0[w]&m != 0 {
		return
	}
	b.count++
	b.l0[w] |= m
	b.l1[w>>6] |= 1 << (uint(w) & 63)
	b.l2[w>>12] |= 1 << (uint(w>>6) & 63)
}

func (b *bitset) clear(i int) {
	w := i >> 6
	m := uint64(1) << (uint(i) & 63)
	if b.l0[w]&m == 0 {
		return
	}
	b.count--
	b.l0[w] &^= m
	if b.l0[w] == 0 {
		w1 := w >> 6
		b.l1[w1] &^= 1 << (uint(w) & 63)
		if b.l1[w1] == 0 {
			b.l2[w1>>6] &^= 1 << (uint(w1) & 63)
		}
	}
}

// next returns the smallest set bit ≥ from, or -1.
func (b *bitset) next(from int) int {
	if from < 0 {
		from = 0
	}
	w := from >> 6
	if w >= len(b.l0) {
		return -1
	}
	if x := b.l0[w] >> (uint(from) & 63); x != 0 {
		return from + bits.TrailingZeros64(x)
	}
	// The next non-empty level-0 word after w.
	w = b.nextWord(w + 1)
	if w < 0 {
		return -1
	}
	return w<<6 + bits.TrailingZeros64(b.l0[w])
}

// nextWord returns the index of the first non-empty level-0 word ≥ w, or -1.
func (b *bitset) nextWord(w int) int {
	w1 := w >> 6
	if w1 >= len(b.l1) {
		return -1
	}
	if x := b.l1[w1] >> (uint(w) & 63); x != 0 {
		return w + bits.TrailingZeros64(x)
	}
	w1++
	w2 := w1 >> 6
	if w2 >= len(b.l2) {
		return -1
	}
	x := b.l2[w2] >> (uint(w1) & 63)
	var found int
	if x != 0 {
		found = w1 + bits.TrailingZeros64(x)
	} else {
		found = -1
		for j := w2 + 1; j < len(b.l2); j++ {
			if b.l2[j] != 0 {
				found = j<<6 + bits.TrailingZeros64(b.l2[j])
				break
			}
		}
		if found < 0 {
			return -1
		}
	}
	return found<<6 + bits.TrailingZeros64(b.l1[found])
}

// nextIn returns the smallest set bit in [from, to), or -1.
func (b *bitset) nextIn(from, to int) int {
	i := b.next(from)
	if i < 0 || i >= to {
		return -1
	}
	return i
}

// first returns the smallest set bit, or -1.
func (b *bitset) first() int { return b.next(0) }

// nth returns the k-th set bit (0-based) in increasing order, or -1. It
// walks words with popcounts: O(n/64), for the random baseline only.
func (b *bitset) nth(k int) int {
	if k < 0 || k >= b.count {
		return -1
	}
	for w, x := range b.l0 {
		c := bits.OnesCount64(x)
		if k < c {
			for ; k > 0; k-- {
				x &= x - 1
			}
			return w<<6 + bits.TrailingZeros64(x)
		}
		k -= c
	}
	return -1
}
