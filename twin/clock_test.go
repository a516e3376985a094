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

// TestTimersReset: a ResettableTimer runs its function d after the Reset,
// once, whether it was pending, had fired or had been stopped; Reset
// reports whether it was pending. The wall clock's timers are resettable too.
func TestTimersReset(t *testing.T) {
	clock := NewManualClock(t0)
	var runs []time.Duration
	tm := clock.AfterFunc(time.Minute, func() {
		runs = append(runs, clock.Now().Sub(t0))
		require.Equal(t, clock.Now().UnixNano(), NanoReader(clock)(), "its nanosecond reader agrees")
		base, at := clock.Counter()
		require.Equal(t, clock.Now().UnixNano(), base+*at, "so does its counter")
	}).(ResettableTimer)
	require.True(t, tm.Reset(2*time.Minute), "pending: moved")
	clock.Advance(90 * time.Second)
	require.Empty(t, runs, "not at the old time")
	base, at := clock.Counter()
	require.Equal(t, t0.Add(90*time.Second).UnixNano(), base+*at, "the counter follows an advance that fires nothing")
	clock.Advance(time.Minute)
	require.Equal(t, []time.Duration{2 * time.Minute}, runs)
	require.False(t, tm.Reset(time.Minute), "fired: scheduled again")
	require.Equal(t, 1, clock.Pending())
	clock.Advance(time.Minute)
	require.Equal(t, []time.Duration{2 * time.Minute, 3*time.Minute + 30*time.Second}, runs)
	require.False(t, tm.Stop())
	require.False(t, tm.Reset(0), "fired: scheduled again")
	require.True(t, tm.Stop())
	require.False(t, tm.Reset(time.Second), "stopped: scheduled again")
	require.True(t, tm.Reset(time.Second), "pending")
	require.Equal(t, 1, clock.Pending(), "a reset timer is pending once")
	clock.Advance(time.Hour)
	require.Len(t, runs, 3)

	wall := WallClock{}.AfterFunc(time.Hour, func() {})
	_, ok := wall.(ResettableTimer)
	require.True(t, ok)
	wall.Stop()
	posting := PostingClock{Post: func(f func()) { f() }}.AfterFunc(time.Hour, func() {})
	_, ok = posting.(ResettableTimer)
	require.True(t, ok)
	posting.Stop()
}
