package allocator_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/stretchr/testify/require"
)

// benchBank builds n compartments as cabinets of 20 (8 S, 8 M, 4 L), half
// of them occupied at random, as a bank in steady state is.
func benchBank(b *testing.B, n int) (*allocator.Allocator, []allocator.Request) {
	cat, err := allocator.NewCatalog([]allocator.Class{
		{Name: "S", WidthMm: 380, HeightMm: 80, DepthMm: 640},
		{Name: "M", WidthMm: 380, HeightMm: 190, DepthMm: 640},
		{Name: "L", WidthMm: 380, HeightMm: 410, DepthMm: 640},
	})
	require.NoError(b, err)
	comps, err := allocator.StackLayout(cat, []allocator.ClassCount{{Class: 0, Count: 8}, {Class: 1, Count: 8}, {Class: 2, Count: 4}})
	require.NoError(b, err)
	specs := make([]allocator.CabinetSpec, n/20)
	for i := range specs {
		specs[i] = allocator.CabinetSpec{Name: fmt.Sprintf("c%d", i), Compartments: comps}
	}
	inv, err := allocator.NewInventory(cat, specs)
	require.NoError(b, err)
	require.Equal(b, n, inv.Len())
	p, err := allocator.New("best-fit", cat, allocator.Config{})
	require.NoError(b, err)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, i := range rng.Perm(n)[:n/2] {
		require.NoError(b, inv.Reserve(allocator.CompartmentID(i)))
		require.NoError(b, inv.Occupy(allocator.CompartmentID(i)))
	}
	reqs := make([]allocator.Request, 1024)
	for i := range reqs {
		switch u := rng.Float64(); {
		case u < 0.55:
			reqs[i].Class = 0
		case u < 0.85:
			reqs[i].Class = 1
		default:
			reqs[i].Class = 2
		}
	}
	return allocator.NewAllocator(inv, p), reqs
}

// BenchmarkAllocate is one allocate + release with best-fit on a half-full
// bank, mixed sizes. The cost must not grow with the bank.
func BenchmarkAllocate(b *testing.B) {
	for _, n := range []int{60, 200, 2000} {
		b.Run(fmt.Sprintf("compartments=%d", n), func(b *testing.B) {
			a, reqs := benchBank(b, n)
			inv := a.Inventory()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id, err := a.Assign(reqs[i&1023])
				if err != nil {
					b.Fatal(err)
				}
				if err := inv.Release(id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
