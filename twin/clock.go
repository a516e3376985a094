package twin

import (
	"container/heap"
	"time"
)

// WallClock is the real clock, for lockerfleet and the service. Its
// AfterFunc runs f on its own goroutine (time.AfterFunc): callers that need
// serialisation (the controller core) hop onto their own goroutine.
type WallClock struct{}

// Now returns the wall-clock time.
func (WallClock) Now() time.Time { return time.Now() }

// AfterFunc calls f after d on a new goroutine.
func (WallClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// ManualClock is a virtual clock for tests and tools: time moves only when
// Advance is called, and due functions run inside Advance in time order
// (ties in scheduling order). It is not safe for concurrent use.
type ManualClock struct {
	now     time.Time
	seq     uint64
	pending manualHeap
}

// NewManualClock returns a clock standing at start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{now: start} }

// Now returns the clock's time.
func (m *ManualClock) Now() time.Time { return m.now }

// AfterFunc schedules f at Now()+d.
func (m *ManualClock) AfterFunc(d time.Duration, f func()) Timer {
	m.seq++
	t := &manualTimer{at: m.now.Add(max(d, 0)), seq: m.seq, f: f}
	heap.Push(&m.pending, t)
	return t
}

// Advance moves the clock forward by d, running every function that falls
// due, each at its own time.
func (m *ManualClock) Advance(d time.Duration) { m.AdvanceTo(m.now.Add(d)) }

// AdvanceTo moves the clock to t (never backwards), running what falls due.
func (m *ManualClock) AdvanceTo(t time.Time) {
	for len(m.pending) > 0 && !m.pending[0].at.After(t) {
		next := heap.Pop(&m.pending).(*manualTimer)
		if next.stopped {
			continue
		}
		if next.at.After(m.now) {
			m.now = next.at
		}
		next.fired = true
		next.f()
	}
	if t.After(m.now) {
		m.now = t
	}
}

// Pending is the number of scheduled, unstopped functions.
func (m *ManualClock) Pending() int {
	n := 0
	for _, t := range m.pending {
		if !t.stopped {
			n++
		}
	}
	return n
}

type manualTimer struct {
	at      time.Time
	seq     uint64
	f       func()
	stopped bool
	fired   bool
}

func (t *manualTimer) Stop() bool {
	if t.stopped || t.fired {
		return false
	}
	t.stopped = true
	return true
}

type manualHeap []*manualTimer

func (h manualHeap) Len() int { return len(h) }
func (h manualHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h manualHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *manualHeap) Push(x any)   { *h = append(*h, x.(*manualTimer)) }
func (h *manualHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// After is AfterFunc without the timer, so a ManualClock is a Scheduler.
func (m *ManualClock) After(d time.Duration, f func()) { m.AfterFunc(d, f) }

// PostingClock is the wall clock for a state machine that owns a goroutine:
// every AfterFunc callback is handed to Post, which runs it on that
// goroutine, so the machine never sees two callers at once.
type PostingClock struct {
	Post func(func())
}

// Now returns the wall-clock time.
func (PostingClock) Now() time.Time { return time.Now() }

// AfterFunc posts f after d.
func (c PostingClock) AfterFunc(d time.Duration, f func()) Timer {
	return time.AfterFunc(d, func() { c.Post(f) })
}
