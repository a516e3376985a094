//go:build soak

package world

import (
	"runtime"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/stretchr/testify/require"
)

// TestCityMemoryIsBoundedByLiveState: the city network's live heap once
// parcels reach steady state (day 4) is what it still is on day 8. Memory
// follows the parcels in lockers, not the horizon (KPIs stream, percentiles
// are sketches). Peak RSS grows a little longer than this: GC headroom.
// Run with `make soak` (about 20 seconds).
func TestCityMemoryIsBoundedByLiveState(t *testing.T) {
	sc, problems, err := scenarios.Load("../../scenarios/city-network.yaml")
	require.NoError(t, err)
	require.Empty(t, problems.Errors())
	sc.Duration = scenarios.Duration(8 * 24 * time.Hour)
	w, err := New(sc, Options{Seed: 1})
	require.NoError(t, err)
	live := func(day int) uint64 {
		_, err := w.RunUntil(time.Duration(day) * 24 * time.Hour)
		require.NoError(t, err)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		t.Logf("day %d: live heap %d MB", day, ms.HeapAlloc>>20)
		return ms.HeapAlloc
	}
	day4 := live(4)
	day8 := live(8)
	runtime.KeepAlive(w) // or the collector frees the world before day 8 is measured
	require.Greater(t, day8, uint64(100<<20), "the world is alive when measured")
	require.Less(t, float64(day8), 1.1*float64(day4), "the live heap grew with the horizon")
}
