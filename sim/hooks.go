package sim

// HookEvent names a point in the engine that a Hook may observe.
type HookEvent uint8

const (
	// EventFired: after each event's handler returns.
	EventFired HookEvent = iota
	// RunFinished: when Run returns.
	RunFinished
)

// RunStats describes the engine when a Run returns.
type RunStats struct {
	Now     Time
	Fired   uint64
	Pending int
	Reason  StopReason
}

// Hook observes the engine. Following mochi-mqtt's convention, past-tense
// methods only notify: a hook cannot change what the engine does, except by
// calling Engine.Stop (an invariant checker does so on a violation).
// Embed HookBase and override what you need; Provides tells the engine which
// methods to call, so a hook that watches only run ends costs nothing per
// event.
type Hook interface {
	Provides(HookEvent) bool
	OnEventFired(now Time, id EventID)
	OnRunFinished(RunStats)
}

// HookBase provides no-op defaults for Hook.
type HookBase struct{}

// Provides reports false for every event.
func (HookBase) Provides(HookEvent) bool { return false }

// OnEventFired does nothing.
func (HookBase) OnEventFired(Time, EventID) {}

// OnRunFinished does nothing.
func (HookBase) OnRunFinished(RunStats) {}

// AddHook attaches h for the events it provides.
func (e *Engine) AddHook(h Hook) {
	if h.Provides(EventFired) {
		e.firedHooks = append(e.firedHooks, h)
	}
	if h.Provides(RunFinished) {
		e.finishedHooks = append(e.finishedHooks, h)
	}
}
