package controller

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDeadlineHeapPopsInOrder: interleaved pushes and pops against a
// sorted reference; equal times come out in push order.
func TestDeadlineHeapPopsInOrder(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		rng := rand.New(rand.NewPCG(seed, 9))
		var h deadlineHeap
		var ref []deadline // kept sorted by (at, seq)
		var pushed uint64
		for step := 0; step < 20000; step++ {
			if rng.IntN(3) > 0 || len(ref) == 0 {
				d := deadline{at: int64(rng.IntN(500)), comp: int32(step)}
				pushed++
				d.seq = pushed
				h.push(d)
				i, _ := slices.BinarySearchFunc(ref, d, func(a, b deadline) int {
					if before(&a, &b) {
						return -1
					}
					return 1
				})
				ref = slices.Insert(ref, i, d)
				continue
			}
			got := h.pop()
			require.Equal(t, ref[0], got, "seed %d step %d", seed, step)
			ref = ref[1:]
		}
		for len(ref) > 0 {
			require.Equal(t, ref[0], h.pop())
			ref = ref[1:]
		}
		require.Empty(t, h.items)
	}
}

// TestDeadlineHeapFilterKeepsOrder: dropping items and re-heapifying leaves
// the survivors coming out in (at, seq) order.
func TestDeadlineHeapFilterKeepsOrder(t *testing.T) {
	for _, n := range []int{0, 1, 2, 5, 17, 1000} {
		rng := rand.New(rand.NewPCG(uint64(n), 3))
		var h deadlineHeap
		for i := 0; i < n; i++ {
			h.push(deadline{at: int64(rng.IntN(50)), seq: uint64(i + 1), comp: int32(i)})
		}
		var want []deadline
		for _, d := range h.items {
			if d.comp%3 != 0 {
				want = append(want, d)
			}
		}
		slices.SortFunc(want, func(a, b deadline) int {
			if before(&a, &b) {
				return -1
			}
			return 1
		})
		h.filter(func(d *deadline) bool { return d.comp%3 != 0 })
		var got []deadline
		for len(h.items) > 0 {
			got = append(got, h.pop())
		}
		require.Equal(t, want, got, "n=%d", n)
	}
}

// TestFinishedParcelsLeaveTheDeadlineHeap: a picked-up parcel's expiry and
// reminder are dropped when it finishes, so the deadlines keep alive only
// live parcels, not every parcel of the pickup window.
func TestFinishedParcelsLeaveTheDeadlineHeap(t *testing.T) {
	r := newRig(t, testSettings())
	for i := range 500 {
		id := "p" + itoa(uint64(i))
		r.deposit(id, "S")
		_, err := r.core.Pickup("a1", r.out.codes[id])
		require.NoError(t, err)
		r.doorCycle(false)
		require.Equal(t, StatePickedUp, r.state(id))
	}
	require.Zero(t, r.core.ActiveParcels())
	q := &r.core.deadlines
	for i := range q.fifos {
		for j := range q.fifos[i].len() {
			require.Nil(t, q.fifos[i].at(j).p, "a finished parcel's deadlines hold it no longer")
		}
	}
	require.Less(t, len(q.heap.items), 2*minCompact, "stale deadlines are compacted away")
	require.NoError(t, r.checker.Err())
	require.NoError(t, CheckCore(r.core))
}

// TestDeadlineQueueMatchesTheHeap: the FIFOs and their heap yield exactly
// the heap's (at, seq) order, through pushes in each kind's order (now plus
// a setting, two settings for expiries), out-of-order pushes, pops and
// drops (a dropped deadline comes out in its place, emptied); and the
// ordered pushes stay out of the heap.
func TestDeadlineQueueMatchesTheHeap(t *testing.T) {
	offsets := map[deadlineKind][]int64{
		dlReservation: {400}, dlReminder: {2400}, dlExpiry: {4800, 1200},
		dlCommand: {15}, dlDoorOpen: {120},
	}
	for _, tc := range []struct {
		name     string
		disorder float64 // share of pushes at a random earlier time
	}{{"ordered", 0}, {"some disorder", 0.05}, {"mostly disorder", 0.8}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 11))
			var q deadlineQueue
			var ref deadlineHeap
			type pushed struct {
				ref deadlineRef
				p   *parcel
			}
			var live []pushed
			dropped := map[*parcel]bool{}
			var now int64
			var maxHeap, drops int
			for step := range 30000 {
				now += int64(rng.IntN(3))
				switch r := rng.IntN(10); {
				case r < 6 || ref.items == nil:
					kind := deadlineKind(1 + rng.IntN(int(dlDoorOpen)))
					offs := offsets[kind]
					at := now + offs[rng.IntN(len(offs))]
					if rng.Float64() < tc.disorder {
						at = max(0, now-int64(rng.IntN(1000)))
					}
					d := deadline{at: at, kind: kind, comp: int32(step)}
					if kind <= dlExpiry {
						d.p = &parcel{}
					}
					r := q.push(d)
					d.seq = q.seq // the number the queue gave it
					ref.push(d)
					if d.p != nil {
						live = append(live, pushed{r, d.p})
					}
				case r < 9:
					for len(ref.items) > 0 && ref.items[0].at <= now {
						want := ref.pop()
						if dropped[want.p] {
							want = deadline{at: want.at, seq: want.seq}
						}
						require.Equal(t, want, *q.peek(), "step %d", step)
						require.Equal(t, want, q.pop(), "step %d", step)
					}
				default:
					if len(live) == 0 {
						break
					}
					i := rng.IntN(len(live))
					x := live[i]
					live = slices.Delete(live, i, i+1)
					q.drop(x.ref, x.p)
					if x.ref.fifo() != 0 && x.ref.abs() >= q.fifos[x.ref.fifo()-1].popped {
						dropped[x.p] = true // still pending in a FIFO: emptied
						drops++
					}
				}
				require.Equal(t, len(ref.items), q.Len())
				maxHeap = max(maxHeap, len(q.heap.items))
			}
			for len(ref.items) > 0 {
				want := ref.pop()
				if dropped[want.p] {
					want = deadline{at: want.at, seq: want.seq}
				}
				require.Equal(t, want, q.pop())
			}
			require.Nil(t, q.peek())
			require.Zero(t, q.Len())
			require.Positive(t, drops)
			if tc.disorder == 0 {
				require.Zero(t, maxHeap, "deadlines in their kind's order stay in the FIFOs")
			} else {
				require.NotZero(t, maxHeap, "the heap takes what the FIFOs cannot")
			}
		})
	}
}

// TestDeadlineFIFOMemoryFollowsTheLiveCount: a hundred thousand deadlines
// through a FIFO that never holds more than ten leave it the size of ten,
// not of the hundred thousand (nor of a dead prefix awaiting compaction).
func TestDeadlineFIFOMemoryFollowsTheLiveCount(t *testing.T) {
	var q deadlineQueue
	var at int64
	for i := range 100_000 {
		at += 15
		q.push(deadline{at: at, kind: dlCommand, comp: int32(i)})
		if q.Len() == 10 {
			d := q.pop()
			require.Equal(t, int32(i-9), d.comp, "in order across the ring's wrap")
		}
	}
	f := &q.fifos[2*int(dlCommand)]
	require.Equal(t, 9, f.len(), "the last push made ten, and one went")
	require.LessOrEqual(t, len(f.ring), 16)
	require.Empty(t, q.heap.items)
}
