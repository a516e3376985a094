package twin

import (
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
// (ties in scheduling order). It is not safe for concurrent use. It counts
// in Unix nanoseconds, and makes a time.Time only when it moves.
type ManualClock struct {
	start   time.Time
	startNs int64
	ns      int64     // now in Unix nanoseconds (CounterClock)
	now     time.Time // ns as a time in start's location
	seq     uint64
	pending []*manualTimer // a binary min-heap on (at, seq); stopped timers leave it at once
}

// NewManualClock returns a clock standing at start.
func NewManualClock(start time.Time) *ManualClock {
	return &ManualClock{start: start, startNs: start.UnixNano(), ns: start.UnixNano(), now: start}
}

// Now returns the clock's time (in start's location).
func (m *ManualClock) Now() time.Time { return m.now }

// Counter returns where the clock keeps its time (CounterClock).
func (m *ManualClock) Counter() (base int64, at *int64) { return 0, &m.ns }

// AfterFunc schedules f at Now()+d.
func (m *ManualClock) AfterFunc(d time.Duration, f func()) Timer {
	t := &manualTimer{m: m, f: f}
	m.schedule(t, d)
	return t
}

// schedule puts t in the heap, due d from now, after what is already due then.
func (m *ManualClock) schedule(t *manualTimer, d time.Duration) {
	m.seq++
	t.at, t.seq, t.idx, t.stopped, t.fired = m.ns+int64(max(d, 0)), m.seq, len(m.pending), false, false
	m.pending = append(m.pending, t)
	m.up(t.idx)
}

// Advance moves the clock forward by d, running every function that falls
// due, each at its own time.
func (m *ManualClock) Advance(d time.Duration) { m.advanceTo(m.ns + int64(d)) }

// AdvanceTo moves the clock to t (never backwards), running what falls due.
func (m *ManualClock) AdvanceTo(t time.Time) { m.advanceTo(t.UnixNano()) }

func (m *ManualClock) advanceTo(ns int64) {
	for len(m.pending) > 0 && m.pending[0].at <= ns {
		next := m.pending[0]
		m.remove(0)
		m.moveTo(next.at)
		next.fired = true
		next.f()
	}
	m.moveTo(ns)
}

// moveTo sets the time to ns unless that is in the past.
func (m *ManualClock) moveTo(ns int64) {
	if ns > m.ns {
		m.ns, m.now = ns, m.start.Add(time.Duration(ns-m.startNs))
	}
}

// Pending is the number of scheduled, unstopped functions.
func (m *ManualClock) Pending() int { return len(m.pending) }

type manualTimer struct {
	m       *ManualClock
	at      int64 // Unix ns
	seq     uint64
	f       func()
	idx     int // position in the heap, -1 once out of it
	stopped bool
	fired   bool
}

// Reset schedules the timer's function d from now, pending or not.
func (t *manualTimer) Reset(d time.Duration) bool {
	pending := t.Stop()
	t.m.schedule(t, d)
	return pending
}

// Stop takes the timer out of the clock's heap.
func (t *manualTimer) Stop() bool {
	if t.stopped || t.fired {
		return false
	}
	t.stopped = true
	t.m.remove(t.idx)
	return true
}

func (m *ManualClock) less(i, j int) bool {
	a, b := m.pending[i], m.pending[j]
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (m *ManualClock) swap(i, j int) {
	h := m.pending
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}

func (m *ManualClock) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !m.less(i, p) {
			return
		}
		m.swap(i, p)
		i = p
	}
}

func (m *ManualClock) down(i int) {
	n := len(m.pending)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && m.less(r, l) {
			c = r
		}
		if !m.less(c, i) {
			return
		}
		m.swap(i, c)
		i = c
	}
}

// remove takes the timer at position i out of the heap.
func (m *ManualClock) remove(i int) {
	last := len(m.pending) - 1
	t := m.pending[i]
	if i != last {
		m.swap(i, last)
	}
	m.pending[last] = nil
	m.pending = m.pending[:last]
	t.idx = -1
	if i != last {
		m.down(i)
		m.up(i)
	}
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
