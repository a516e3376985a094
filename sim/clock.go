package sim

import (
	"time"

	"github.com/lockertwin/lockertwin/twin"
)

// Clock presents the engine's virtual time as the twin.Clock seam that the
// controller core and the virtual cabinets read: Now is Epoch plus the
// virtual time, and AfterFunc schedules an engine event. It also satisfies
// twin.Scheduler for the in-process links.
type Clock struct {
	Engine *Engine
	Epoch  time.Time
}

// Now returns the virtual wall-clock time.
func (c *Clock) Now() time.Time { return c.Epoch.Add(time.Duration(c.Engine.Now())) }

// Counter returns the epoch and where the engine keeps its time
// (twin.CounterClock): the time is base + *at as long as Epoch is not
// changed once the clock is handed out.
func (c *Clock) Counter() (base int64, at *int64) {
	return c.Epoch.UnixNano(), (*int64)(&c.Engine.now)
}

// AfterFunc runs f after d of virtual time.
func (c *Clock) AfterFunc(d time.Duration, f func()) twin.Timer {
	return &timer{eng: c.Engine, f: f, id: c.Engine.AfterFunc(Time(max(d, 0)), f)}
}

// After runs f after d of virtual time (twin.Scheduler).
func (c *Clock) After(d time.Duration, f func()) { c.Engine.AfterFunc(Time(max(d, 0)), f) }

type timer struct {
	eng *Engine
	f   func()
	id  EventID
}

func (t *timer) Stop() bool { return t.eng.Cancel(t.id) }

// Reset schedules the timer's function again, d from now (twin.ResettableTimer).
func (t *timer) Reset(d time.Duration) bool {
	pending := t.eng.Cancel(t.id)
	t.id = t.eng.AfterFunc(Time(max(d, 0)), t.f)
	return pending
}
