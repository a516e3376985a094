package sim

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lockertwin/lockertwin/twin"
)

type recorder struct {
	got []uint64
	at  []Time
}

func (r *recorder) Fire(now Time, arg uint64) {
	r.got = append(r.got, arg)
	r.at = append(r.at, now)
}

func TestEngineOrdersByTimeThenInsertion(t *testing.T) {
	e := NewEngine(0)
	r := &recorder{}
	e.At(30, r, 1)
	e.At(10, r, 2)
	e.At(20, r, 3)
	e.At(10, r, 4) // same instant as 2, scheduled later: fires after it
	e.At(10, r, 5)
	e.At(0, r, 6)
	require.Equal(t, Drained, e.RunUntilEmpty())
	require.Equal(t, []uint64{6, 2, 4, 5, 3, 1}, r.got)
	require.Equal(t, []Time{0, 10, 10, 10, 20, 30}, r.at)
	require.Equal(t, Time(30), e.Now())
	require.Equal(t, uint64(6), e.Fired())
}

func TestEngineAtFirstOrdersByKey(t *testing.T) {
	e := NewEngine(0)
	r := &recorder{}
	e.At(10, r, 1)
	e.AtFirst(10, 7, r, 2) // scheduled after 1, fires before it
	e.At(5, r, 3)
	e.AtFirst(10, 3, r, 4) // a lower key fires first, whenever scheduled
	e.AtFirst(20, 0, r, 5)
	e.At(10, r, 6)
	require.Equal(t, Drained, e.RunUntilEmpty())
	require.Equal(t, []uint64{3, 4, 2, 1, 6, 5}, r.got)
	require.Panics(t, func() { e.AtFirst(30, firstKeys, r, 0) })
}

func TestEngineManyEventsComeOutSorted(t *testing.T) {
	e := NewEngine(0)
	rng := NewStreams(3).Stream("order")
	r := &recorder{}
	const n = 5000
	for i := 0; i < n; i++ {
		e.At(Time(rng.IntN(200)), r, uint64(i))
	}
	e.RunUntilEmpty()
	require.Len(t, r.got, n)
	for i := 1; i < n; i++ {
		require.LessOrEqual(t, r.at[i-1], r.at[i])
		if r.at[i-1] == r.at[i] {
			require.Less(t, r.got[i-1], r.got[i], "ties must fire in insertion order")
		}
	}
}

func TestEngineCancel(t *testing.T) {
	e := NewEngine(0)
	r := &recorder{}
	a := e.At(10, r, 1)
	b := e.At(20, r, 2)
	e.At(30, r, 3)
	require.Equal(t, 3, e.Pending())
	require.True(t, e.Cancel(b))
	require.False(t, e.Cancel(b), "second cancel is a no-op")
	require.False(t, e.Cancel(0), "zero id names nothing")
	require.False(t, e.Cancel(EventID(1<<40|999)), "unknown slot")
	require.Equal(t, 2, e.Pending())
	e.RunUntilEmpty()
	require.Equal(t, []uint64{1, 3}, r.got)
	require.False(t, e.Cancel(a), "cannot cancel what fired")

	// A reused slot gets a new generation: an old id cannot cancel the new event.
	c := e.After(5, r, 4)
	require.False(t, e.Cancel(a))
	require.True(t, e.Cancel(c))
	require.Equal(t, 0, e.Pending())
}

func TestEngineCancelFromInsideAHandler(t *testing.T) {
	e := NewEngine(0)
	r := &recorder{}
	var later EventID
	e.AtFunc(5, func() { require.True(t, e.Cancel(later)) })
	later = e.At(10, r, 1)
	e.RunUntilEmpty()
	require.Empty(t, r.got)
}

func TestEngineRunUntilAdvancesClockToHorizon(t *testing.T) {
	e := NewEngine(0)
	r := &recorder{}
	e.At(10, r, 1)
	e.At(50, r, 2)
	require.Equal(t, ReachedTime, e.Run(20))
	require.Equal(t, Time(20), e.Now())
	require.Equal(t, []uint64{1}, r.got)
	require.Equal(t, 1, e.Pending())
	// Events exactly at the horizon fire.
	require.Equal(t, Drained, e.Run(50))
	require.Equal(t, []uint64{1, 2}, r.got)
	// Drained before the horizon: the clock still moves to it.
	require.Equal(t, Drained, e.Run(80))
	require.Equal(t, Time(80), e.Now())
}

func TestEngineStop(t *testing.T) {
	e := NewEngine(0)
	r := &recorder{}
	e.At(1, r, 1)
	e.AtFunc(2, e.Stop)
	e.At(3, r, 3)
	require.Equal(t, Stopped, e.RunUntilEmpty())
	require.Equal(t, Time(2), e.Now())
	require.Equal(t, Drained, e.RunUntilEmpty(), "a new Run resumes")
	require.Equal(t, []uint64{1, 3}, r.got)
}

func TestEngineRejectsThePast(t *testing.T) {
	e := NewEngine(0)
	e.At(10, HandlerFunc(func(Time, uint64) {}), 0)
	e.RunUntilEmpty()
	require.Panics(t, func() { e.At(5, HandlerFunc(func(Time, uint64) {}), 0) })
	require.Panics(t, func() { e.After(-1, HandlerFunc(func(Time, uint64) {}), 0) })
	require.Panics(t, func() { e.At(20, nil, 0) })
}

func TestEngineRunIsNotReentrant(t *testing.T) {
	e := NewEngine(0)
	e.AtFunc(1, func() { e.RunUntilEmpty() })
	require.Panics(t, func() { e.RunUntilEmpty() })
}

type countingHook struct {
	HookBase
	fired    []EventID
	finished []RunStats
}

func (h *countingHook) Provides(ev HookEvent) bool { return ev == EventFired || ev == RunFinished }
func (h *countingHook) OnEventFired(_ Time, id EventID) {
	h.fired = append(h.fired, id)
}
func (h *countingHook) OnRunFinished(s RunStats) { h.finished = append(h.finished, s) }

type finishOnly struct {
	HookBase
	n int
}

func (h *finishOnly) Provides(ev HookEvent) bool { return ev == RunFinished }
func (h *finishOnly) OnRunFinished(RunStats)     { h.n++ }

func TestEngineHooks(t *testing.T) {
	e := NewEngine(0)
	all := &countingHook{}
	fin := &finishOnly{}
	e.AddHook(all)
	e.AddHook(fin)
	e.AddHook(HookBase{}) // provides nothing, never called
	r := &recorder{}
	a := e.At(1, r, 1)
	b := e.At(2, r, 2)
	e.RunUntilEmpty()
	require.Equal(t, []EventID{a, b}, all.fired)
	require.Equal(t, []RunStats{{Now: 2, Fired: 2, Pending: 0, Reason: Drained}}, all.finished)
	require.Equal(t, 1, fin.n)
}

func TestTimeConversions(t *testing.T) {
	tests := []struct {
		in   Time
		want string
	}{
		{0, "0d00:00:00.000"},
		{90 * Minute, "0d01:30:00.000"},
		{3*Day + 4*Hour + 5*Minute + 6*Second + 789*Millisecond, "3d04:05:06.789"},
		{-Hour, "-0d01:00:00.000"},
		{Forever, "forever"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.in.String())
	}
	require.Equal(t, 36*time.Hour, (36 * Hour).Duration())
	require.Equal(t, 2*Hour, FromDuration(2*time.Hour))
	require.Equal(t, 1.5, (90 * Minute).Hours())
	require.Equal(t, 2.5, (2500 * Millisecond).Seconds())
	require.Equal(t, Time(1_500_000_000), FromSeconds(1.5))
	require.Equal(t, Time(-2), FromSeconds(-2e-9))
	require.Equal(t, Forever, FromSeconds(1e300))
	require.Equal(t, Week, 7*Day)
}

func TestStreamsAreNamedAndIndependent(t *testing.T) {
	draw := func(s Streams, name string, n int) []uint64 {
		r := s.Stream(name)
		out := make([]uint64, n)
		for i := range out {
			out[i] = r.Uint64()
		}
		return out
	}
	s := NewStreams(42)
	require.Equal(t, draw(s, "demand", 8), draw(s, "demand", 8), "same name, same draws")
	require.NotEqual(t, draw(s, "demand", 8), draw(s, "pickup", 8))
	require.NotEqual(t, draw(s, "demand", 8), draw(NewStreams(43), "demand", 8))

	// Drawing heavily from another stream does not move this one.
	demand := s.Stream("demand")
	faults := s.Stream("faults")
	var got []uint64
	for i := 0; i < 8; i++ {
		for j := 0; j < 100; j++ {
			faults.Uint64()
		}
		got = append(got, demand.Uint64())
	}
	require.Equal(t, draw(s, "demand", 8), got)

	r0, r1 := s.Derive("replication", 0), s.Derive("replication", 1)
	require.NotEqual(t, r0.Seed(), r1.Seed())
	require.NotEqual(t, s.Seed(), r0.Seed())
	require.Equal(t, r1, s.Derive("replication", 1))
}

func TestClockAdapter(t *testing.T) {
	e := NewEngine(0)
	epoch := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	c := &Clock{Engine: e, Epoch: epoch}
	var got []time.Time
	base, at := c.Counter()
	c.AfterFunc(time.Hour, func() {
		got = append(got, c.Now())
		require.Equal(t, c.Now().UnixNano(), base+*at, "the counter follows the engine")
	})
	stopped := c.AfterFunc(2*time.Hour, func() { t.Fatal("stopped timer fired") })
	c.After(3*time.Hour, func() { got = append(got, c.Now()) })
	c.AfterFunc(-time.Second, func() { got = append(got, c.Now()) })
	require.True(t, stopped.Stop())
	require.False(t, stopped.Stop())
	e.RunUntilEmpty()
	require.Equal(t, c.Now().UnixNano(), twin.NanoReader(c)())
	require.Equal(t, []time.Time{epoch, epoch.Add(time.Hour), epoch.Add(3 * time.Hour)}, got)

	// Reset moves a pending timer, and schedules a fired or stopped one again.
	got = nil
	tm := c.AfterFunc(time.Hour, func() { got = append(got, c.Now()) }).(twin.ResettableTimer)
	require.True(t, tm.Reset(2*time.Hour))
	require.Equal(t, 1, e.Pending())
	e.RunUntilEmpty()
	require.False(t, tm.Reset(time.Hour))
	e.RunUntilEmpty()
	require.False(t, tm.Reset(time.Hour), "fired")
	require.True(t, tm.Stop())
	require.False(t, tm.Reset(time.Minute), "stopped")
	e.RunUntilEmpty()
	h := 3 * time.Hour
	require.Equal(t, []time.Time{epoch.Add(h + 2*time.Hour), epoch.Add(h + 3*time.Hour), epoch.Add(h + 3*time.Hour + time.Minute)}, got)
}

// TestEngineNearAndFarEventsInterleave: events scheduled far ahead (the far
// heap) and near (the near heap), from outside and from inside handlers,
// with ties across the two heaps and cancellations, fire in (time,
// scheduling) order, exactly as a single sorted list says.
func TestEngineNearAndFarEventsInterleave(t *testing.T) {
	type sched struct {
		at  Time
		seq int
	}
	for _, seed := range []uint64{1, 2, 3} {
		e := NewEngine(0)
		rng := NewStreams(seed).Stream("near-far")
		var want []sched
		var fired []sched
		cancelled := map[int]bool{}
		var ids []EventID
		seq := 0
		var add func(d Time)
		add = func(d Time) {
			seq++
			me := sched{e.Now() + d, seq}
			want = append(want, me)
			ids = append(ids, e.AfterFunc(d, func() {
				require.Equal(t, me.at, e.Now())
				fired = append(fired, me)
				if len(want) < 20000 {
					for range rng.IntN(3) {
						add(delays(rng.IntN(4), rng.IntN(100)))
					}
				}
			}))
		}
		for range 500 {
			add(delays(rng.IntN(4), rng.IntN(100)))
		}
		e.Run(3 * Hour)
		for range 300 {
			k := rng.IntN(len(ids))
			if e.Cancel(ids[k]) {
				cancelled[k+1] = true
			}
		}
		e.RunUntilEmpty()
		var keep []sched
		for _, w := range want {
			if !cancelled[w.seq] {
				keep = append(keep, w)
			}
		}
		slices.SortStableFunc(keep, func(a, b sched) int { return cmp.Compare(a.at, b.at) })
		require.Equal(t, keep, fired, "seed %d", seed)
		require.NotEmpty(t, cancelled)
	}
}

// delays draws a delay of one of four scales: the same instant, link
// latency, a person's minutes (near the far heap's threshold) or hours.
func delays(scale, n int) Time {
	switch scale {
	case 0:
		return 0
	case 1:
		return Time(n) * Millisecond
	case 2:
		return Time(n%20) * Minute / 2
	}
	return Time(n) * Hour / 10
}

// holder re-schedules itself an exponential delay ahead each time it fires:
// the classic "hold" model, which keeps the number of pending events fixed.
type holder struct {
	eng  *Engine
	rng  *rand.Rand
	mean float64
	left int
}

func (h *holder) Fire(now Time, _ uint64) {
	h.eng.At(now+Time(h.rng.ExpFloat64()*h.mean)+1, h, 0)
	if h.left--; h.left <= 0 {
		h.eng.Stop()
	}
}

// BenchmarkEngineHold keeps n events pending (one event fires, one is
// scheduled), as a simulation's shards do: the city's near heap holds about
// 13 events and its far heap about 690 (measured over 3 days with a probe).
// Mean delays put the events in the near or the far heap.
func BenchmarkEngineHold(b *testing.B) {
	for _, bc := range []struct {
		name string
		n    int
		mean Time
	}{{"near-13", 13, Second}, {"far-690", 690, Hour}} {
		b.Run(bc.name, func(b *testing.B) {
			eng := NewEngine(bc.n)
			h := &holder{eng: eng, rng: rand.New(rand.NewPCG(1, 2)), mean: float64(bc.mean), left: bc.n * 20}
			for range bc.n {
				eng.At(Time(h.rng.ExpFloat64()*h.mean), h, 0)
			}
			eng.Run(Forever / 2) // warm: the heap is now in its steady state
			h.left = b.N
			b.ReportAllocs()
			b.ResetTimer()
			eng.Run(Forever / 2)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
