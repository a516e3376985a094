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
				h.push(d)
				pushed++
				d.seq = pushed
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
			h.push(deadline{at: int64(rng.IntN(50)), comp: int32(i)})
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
// reminder are stale; compaction drops them, so the heap (and the parcels it
// points to) stays bounded by the live ones, not by the pickup window.
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
	require.Less(t, len(r.core.deadlines.items), 2*minCompact, "stale deadlines are compacted away")
	require.NoError(t, r.checker.Err())
	require.NoError(t, CheckCore(r.core))
}
