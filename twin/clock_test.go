package twin

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestManualClockFiresInOrder: random timers, some stopped, some scheduled
// from inside a firing one, against a sorted reference: every unstopped
// timer fires once, at its time, in (time, scheduling) order.
func TestManualClockFiresInOrder(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		rng := rand.New(rand.NewPCG(seed, 5))
		clock := NewManualClock(t0)
		type want struct {
			at  time.Time
			seq int
		}
		var expected, fired []want
		var timers []Timer
		seq := 0
		var schedule func(d time.Duration, nested bool)
		schedule = func(d time.Duration, nested bool) {
			seq++
			w := want{clock.Now().Add(d), seq}
			expected = append(expected, w)
			timers = append(timers, clock.AfterFunc(d, func() {
				require.Equal(t, w.at, clock.Now(), "fires at its time")
				fired = append(fired, w)
				if !nested && rng.IntN(4) == 0 {
					schedule(time.Duration(rng.IntN(50))*time.Second, true)
				}
			}))
		}
		for range 2000 {
			schedule(time.Duration(rng.IntN(500))*time.Second, false)
		}
		stopped := map[int]bool{}
		for i := range 600 {
			k := rng.IntN(len(timers))
			first := !stopped[k]
			require.Equal(t, first, timers[k].Stop(), "stop %d reports whether it was pending", i)
			stopped[k] = true
		}
		require.Equal(t, 2000-len(stopped), clock.Pending())
		clock.Advance(time.Hour)
		require.Zero(t, clock.Pending())
		var keep []want
		for i, w := range expected {
			if i >= 2000 || !stopped[i] {
				keep = append(keep, w)
			}
		}
		slices.SortFunc(keep, func(a, b want) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return a.seq - b.seq
		})
		require.Equal(t, keep, fired, "seed %d", seed)
		for _, tm := range timers {
			require.False(t, tm.Stop(), "fired or stopped: nothing to stop")
		}
		require.Equal(t, t0.Add(time.Hour), clock.Now())
	}
}
