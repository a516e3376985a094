package controller

import "math/bits"

// deadlineQueue holds the core's pending deadlines and yields them in
// (at, seq) order, the same total order the heap alone would.
//
// Almost every deadline is "now plus a fixed setting": a command's retry
// (AckTimeout) and expiry (CommandTTL), a door's open limit, a
// reservation's timeout, a parcel's reminder and expiry. Each kind is
// therefore scheduled in time order, and a FIFO per kind keeps it sorted
// for the price of an append; the earliest deadline is the earliest of a
// few queue heads. A deadline that would break its FIFO's order (an expiry
// with the chilled window after a normal one, or one re-derived after an
// exception is resolved) goes to the heap, which takes any order.
//
// A parcel's reservation, reminder and expiry deadlines are dropped when it
// finishes (drop): they hold it no longer, and popping them later reads
// nothing but the entry. Otherwise every picked-up parcel stayed in memory
// until its expiry (48 hours of them in the city: 70 MB), and was read
// again, long out of cache, when that fell due.
type deadlineQueue struct {
	seq   uint64
	n     int
	src   int // source's answer while known
	known bool
	full  uint16 // bit i: FIFO i holds deadlines
	// compactAt is the heap length at which schedule next drops its stale
	// deadlines (the heap's are not dropped one by one).
	compactAt int
	heap      deadlineHeap
	fifos     [nFifos]deadlineFIFO
}

// deadlineRef is where a deadline was put: a FIFO (fifo()-1) and its
// position among all that went through it (abs()); fifo() 0: the heap, or
// nowhere. One word: a parcel keeps three.
type deadlineRef uint64

func makeRef(abs uint64, fifo int) deadlineRef { return deadlineRef(abs<<8 | uint64(fifo)) }

func (r deadlineRef) fifo() int   { return int(uint8(r)) }
func (r deadlineRef) abs() uint64 { return uint64(r) >> 8 }

// Two FIFOs per kind, so that two interleaved ascending streams of one kind
// (normal and chilled expiries) both stay out of the heap.
const nFifos = 2 * (int(dlDoorOpen) + 1)

// deadlineFIFO is a queue of deadlines in (at, seq) order: a ring whose
// size is a power of two, doubling when full, so its memory follows the
// most deadlines it held at once, whatever the number pushed through it.
type deadlineFIFO struct {
	ring   []deadline
	head   int
	n      int
	popped uint64 // deadlines popped so far: the position of the head
}

func (f *deadlineFIFO) len() int { return f.n }

func (f *deadlineFIFO) at(i int) *deadline { return &f.ring[(f.head+i)&(len(f.ring)-1)] }

func (f *deadlineFIFO) first() *deadline { return &f.ring[f.head] }

func (f *deadlineFIFO) last() *deadline { return f.at(f.n - 1) }

// push appends d and returns its position.
func (f *deadlineFIFO) push(d deadline) uint64 {
	if f.n == len(f.ring) {
		ring := make([]deadline, max(8, 2*len(f.ring)))
		for i := range f.n {
			ring[i] = *f.at(i)
		}
		f.ring, f.head = ring, 0
	}
	*f.at(f.n) = d
	f.n++
	return f.popped + uint64(f.n) - 1
}

func (f *deadlineFIFO) pop() deadline {
	d := f.ring[f.head]
	f.ring[f.head] = deadline{} // let go of its parcel or command
	f.head = (f.head + 1) & (len(f.ring) - 1)
	f.n--
	f.popped++
	return d
}

// Len is the number of pending deadlines, stale and dropped ones included.
func (q *deadlineQueue) Len() int { return q.n }

// push adds a deadline, numbering it, and says where it went.
func (q *deadlineQueue) push(d deadline) deadlineRef {
	q.seq++
	d.seq = q.seq
	q.n++
	to := nFifos // the heap, unless a FIFO takes it in order
	for i := 2 * int(d.kind); i < 2*int(d.kind)+2; i++ {
		if f := &q.fifos[i]; f.n == 0 || f.last().at <= d.at {
			to = i
			break
		}
	}
	if q.known && (q.src < 0 || before(&d, q.peek())) {
		q.src = to // the new earliest; else the earliest stays so (or unknown)
	}
	if to == nFifos {
		q.heap.push(d)
		return 0
	}
	q.full |= 1 << to
	return makeRef(q.fifos[to].push(d), to+1)
}

// drop empties the deadline at ref if it is still p's: it stays in its
// place, at its time, holding nothing, and is stale (kind 0).
func (q *deadlineQueue) drop(ref deadlineRef, p *parcel) {
	if ref.fifo() == 0 {
		return
	}
	f := &q.fifos[ref.fifo()-1]
	abs := ref.abs()
	if abs < f.popped || abs-f.popped >= uint64(f.n) {
		return // popped already
	}
	if d := f.at(int(abs - f.popped)); d.p == p {
		*d = deadline{at: d.at, seq: d.seq}
	}
}

// source is where the earliest deadline is: a FIFO's index, nFifos for the
// heap, or -1 when none is pending.
func (q *deadlineQueue) source() int {
	if !q.known {
		q.src, q.known = q.find(), true
	}
	return q.src
}

func (q *deadlineQueue) find() int {
	best := -1
	var first *deadline
	for m := q.full; m != 0; m &= m - 1 {
		i := bits.TrailingZeros16(m)
		if f := q.fifos[i].first(); first == nil || before(f, first) {
			best, first = i, f
		}
	}
	if len(q.heap.items) > 0 && (first == nil || before(&q.heap.items[0], first)) {
		best = nFifos
	}
	return best
}

// peek returns the earliest deadline, or nil.
func (q *deadlineQueue) peek() *deadline {
	switch i := q.source(); {
	case i < 0:
		return nil
	case i == nFifos:
		return &q.heap.items[0]
	default:
		return q.fifos[i].first()
	}
}

// pop removes and returns the earliest deadline; there must be one.
func (q *deadlineQueue) pop() deadline {
	q.n--
	i := q.source()
	q.known = false
	if i < nFifos {
		f := &q.fifos[i]
		d := f.pop()
		if f.n == 0 {
			q.full &^= 1 << i
		}
		return d
	}
	return q.heap.pop()
}
