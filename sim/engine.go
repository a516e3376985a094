package sim

import "fmt"

// Handler is what an event runs when it fires. A handler is usually a pointer
// to a long-lived struct (a cabinet, a courier, a queue) and arg says which
// of its actions to take, so scheduling allocates nothing on the hot path.
type Handler interface {
	Fire(now Time, arg uint64)
}

// HandlerFunc adapts a function to Handler. A func value boxes into an
// interface without allocating; the closure itself may allocate where created.
type HandlerFunc func(now Time, arg uint64)

// Fire calls f.
func (f HandlerFunc) Fire(now Time, arg uint64) { f(now, arg) }

// EventID names a scheduled event so that it can be cancelled. The zero
// EventID names no event; cancelling it is a no-op.
type EventID uint64

// StopReason says why Run returned.
type StopReason uint8

const (
	// ReachedTime: the next event lies after the horizon given to Run.
	ReachedTime StopReason = iota
	// Drained: no events remain.
	Drained
	// Stopped: a handler or hook called Stop.
	Stopped
)

func (r StopReason) String() string {
	switch r {
	case ReachedTime:
		return "reached-time"
	case Drained:
		return "drained"
	case Stopped:
		return "stopped"
	}
	return fmt.Sprintf("StopReason(%d)", uint8(r))
}

// entry is one heap element: the time, and a word holding the insertion
// sequence in its high 40 bits and the slot index in its low 24. Sixteen
// bytes keep a 4-ary node's children in one cache line, which is what makes
// the typed heap fast; comparing the packed word compares sequences, because
// sequences are unique.
type entry struct {
	at     Time
	seqIdx uint64
}

const (
	slotBits = 24
	maxSlots = 1 << slotBits
	slotMask = maxSlots - 1
)

func (a entry) before(b entry) bool {
	return a.at < b.at || (a.at == b.at && a.seqIdx < b.seqIdx)
}

func (a entry) slot() uint32 { return uint32(a.seqIdx & slotMask) }

const (
	slotFree uint8 = iota
	slotPending
	slotCancelled
)

type slot struct {
	h     Handler
	arg   uint64
	gen   uint32
	state uint8
}

// Engine is a discrete-event scheduler over virtual time. Events are ordered
// by (time, insertion sequence), so two events at the same instant fire in
// the order they were scheduled, and a run is a pure function of its inputs.
//
// The queue is two hand-rolled 4-ary min-heaps of small value entries: one
// for events due within farAfter, one for those due later. A simulation
// holds many far events (recipients' visits hours ahead) and fires mostly
// near ones (link messages, a person at a door), which so sift through a
// small heap; the next event is the earlier of the two tops, so the order
// is the same as one heap's. Handlers live in a slab of reusable slots, and
// cancellation marks a slot so the heap entry is discarded when it reaches
// the top. In steady state nothing is allocated per event.
//
// An Engine is not safe for concurrent use: a simulation is single-threaded
// by design (run replications in parallel, each with its own Engine, and a
// large world's shards likewise, each with its own).
type Engine struct {
	now     Time
	seq     uint64
	near    []entry // due within farAfter of when they were scheduled
	far     []entry
	slots   []slot
	free    []uint32
	live    int
	fired   uint64
	stopped bool
	running bool

	firedHooks    []Hook
	finishedHooks []Hook
}

// NewEngine returns an engine at time zero with room for capacityHint
// pending events before it has to grow.
func NewEngine(capacityHint int) *Engine {
	if capacityHint < 16 {
		capacityHint = 16
	}
	return &Engine{
		near:  make([]entry, 0, capacityHint),
		slots: make([]slot, 0, capacityHint),
		free:  make([]uint32, 0, capacityHint),
	}
}

// Now is the current virtual time: the time of the event being fired, or of
// the last one fired, or the horizon of the last Run that reached it.
func (e *Engine) Now() Time { return e.now }

// Pending is the number of scheduled events not yet fired or cancelled.
func (e *Engine) Pending() int { return e.live }

// Fired is the number of events fired since the engine was made.
func (e *Engine) Fired() uint64 { return e.fired }

// At schedules h.Fire(at, arg). Scheduling in the past is a programming
// error and panics: it would silently reorder causality.
func (e *Engine) At(at Time, h Handler, arg uint64) EventID {
	e.seq++
	return e.schedule(at, firstKeys+e.seq, h, arg)
}

// firstKeys bounds AtFirst's keys: sequence numbers At assigns start here,
// so an AtFirst event fires before every At event of its time.
const firstKeys = 1 << 39

// AtFirst schedules h.Fire(at, arg) to fire before every event scheduled
// with At for the same time, and among AtFirst events of that time in order
// of key (< 2^39, unique among them). Its place among simultaneous events so
// depends on the key alone, not on when it was scheduled: events handed in
// from outside (another shard's messages) need that to keep a run the same
// however it is stepped.
func (e *Engine) AtFirst(at Time, key uint64, h Handler, arg uint64) EventID {
	if key >= firstKeys {
		panic(fmt.Sprintf("sim: AtFirst key %d out of range", key))
	}
	return e.schedule(at, key, h, arg)
}

// AtFirstFunc is AtFirst for a function.
func (e *Engine) AtFirstFunc(at Time, key uint64, f func()) EventID {
	return e.AtFirst(at, key, funcHandler(f), 0)
}

func (e *Engine) schedule(at Time, seq uint64, h Handler, arg uint64) EventID {
	if at < e.now {
		panic(fmt.Sprintf("sim: event scheduled at %v, before now %v", at, e.now))
	}
	if h == nil {
		panic("sim: nil handler")
	}
	var idx uint32
	if n := len(e.free); n > 0 {
		idx = e.free[n-1]
		e.free = e.free[:n-1]
	} else {
		if len(e.slots) >= maxSlots {
			panic(fmt.Sprintf("sim: more than %d events pending", maxSlots))
		}
		idx = uint32(len(e.slots))
		e.slots = append(e.slots, slot{})
	}
	s := &e.slots[idx]
	s.h = h
	s.arg = arg
	s.gen++
	s.state = slotPending
	x := entry{at: at, seqIdx: seq<<slotBits | uint64(idx)}
	if at-e.now > farAfter {
		e.far = push(e.far, x)
	} else {
		e.near = push(e.near, x)
	}
	e.live++
	return EventID(uint64(s.gen)<<32 | uint64(idx+1))
}

// After schedules h.Fire after a delay d ≥ 0 from now.
func (e *Engine) After(d Time, h Handler, arg uint64) EventID {
	if d < 0 {
		panic(fmt.Sprintf("sim: negative delay %v", d))
	}
	return e.At(e.now+d, h, arg)
}

// AtFunc schedules f at the given time; a convenience for cold paths.
func (e *Engine) AtFunc(at Time, f func()) EventID {
	return e.At(at, funcHandler(f), 0)
}

// AfterFunc schedules f after delay d; a convenience for cold paths.
func (e *Engine) AfterFunc(d Time, f func()) EventID {
	return e.After(d, funcHandler(f), 0)
}

type funcHandler func()

func (f funcHandler) Fire(Time, uint64) { f() }

// Cancel removes a pending event. It reports whether the event was pending;
// cancelling an event that already fired or was cancelled is harmless.
func (e *Engine) Cancel(id EventID) bool {
	idx := uint32(id&0xffffffff) - 1
	gen := uint32(id >> 32)
	if id == 0 || int(idx) >= len(e.slots) {
		return false
	}
	s := &e.slots[idx]
	if s.gen != gen || s.state != slotPending {
		return false
	}
	s.state = slotCancelled
	s.h = nil
	e.live--
	return true
}

// Stop makes the current Run return after the event being fired.
func (e *Engine) Stop() { e.stopped = true }

// Run fires events in order until the next one lies after until, none remain,
// or Stop is called. When it reaches the horizon, the clock is advanced to
// until, so that time-weighted statistics can be closed at that instant.
func (e *Engine) Run(until Time) StopReason {
	if e.running {
		panic("sim: Run called from inside an event")
	}
	e.running = true
	e.stopped = false
	reason := e.loop(until)
	e.running = false
	if len(e.finishedHooks) > 0 {
		st := RunStats{Now: e.now, Fired: e.fired, Pending: e.live, Reason: reason}
		for _, h := range e.finishedHooks {
			h.OnRunFinished(st)
		}
	}
	return reason
}

// RunUntilEmpty fires events until none remain or Stop is called.
func (e *Engine) RunUntilEmpty() StopReason { return e.Run(Forever) }

// farAfter is how far ahead an event must be due to go to the far heap.
// A minute keeps the link messages, door operations and command retries
// near and a person's comings and goings far: cachegrind counts 1 % less
// work for the city with it than with 10 minutes or an hour (20 s: the
// same as a minute). Which heap holds an event never changes the order.
const farAfter = 1 * Minute

// next returns the heap whose top fires next, or nil when both are empty.
func (e *Engine) next() *[]entry {
	switch {
	case len(e.far) == 0:
		if len(e.near) == 0 {
			return nil
		}
		return &e.near
	case len(e.near) == 0 || e.far[0].before(e.near[0]):
		return &e.far
	}
	return &e.near
}

func (e *Engine) loop(until Time) StopReason {
	for h := e.next(); h != nil; h = e.next() {
		top := (*h)[0]
		idx := top.slot()
		s := &e.slots[idx]
		if s.state == slotCancelled {
			*h = pop(*h)
			s.state = slotFree
			e.free = append(e.free, idx)
			continue
		}
		if top.at > until {
			e.now = until
			return ReachedTime
		}
		*h = pop(*h)
		h, arg := s.h, s.arg
		s.h = nil
		s.state = slotFree
		e.free = append(e.free, idx)
		e.live--
		e.now = top.at
		e.fired++
		h.Fire(top.at, arg)
		if len(e.firedHooks) > 0 {
			id := EventID(uint64(s.gen)<<32 | uint64(idx+1))
			for _, hk := range e.firedHooks {
				hk.OnEventFired(top.at, id)
			}
		}
		if e.stopped {
			return Stopped
		}
	}
	if until != Forever && until > e.now {
		e.now = until
	}
	return Drained
}

// push adds x to the 4-ary heap h.
func push(h []entry, x entry) []entry {
	h = append(h, x)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) >> 2
		if !x.before(h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = x
	return h
}

// pop removes the root of the 4-ary heap h.
func pop(h []entry) []entry {
	n := len(h) - 1
	x := h[n]
	h = h[:n]
	if n == 0 {
		return h
	}
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		end := c + 4
		if end > n {
			end = n
		}
		for j := c + 1; j < end; j++ {
			if h[j].before(h[m]) {
				m = j
			}
		}
		if !h[m].before(x) {
			break
		}
		h[i] = h[m]
		i = m
	}
	h[i] = x
	return h
}
