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
