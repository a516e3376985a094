package scene

import (
	"time"

	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/sim/runner"
	"github.com/lockertwin/lockertwin/sim/world"
)

// SimSource runs a scenario's first replication in-process, as the view
// asks: the same scenario and seed give the same observations, so the same
// frames.
type SimSource struct {
	w    *world.World
	emit func(world.Observation)
}

// NewSimSource builds the world of a scenario's replication 0.
func NewSimSource(sc *scenarios.Scenario) (*SimSource, error) {
	// Stepped, not Run, so it cannot replay a violation to recall the
	// events before it: its checkers recall them from the start.
	w, err := world.New(sc, world.Options{Seed: runner.ReplicationSeed(sc.Seed, 0), Recall: true})
	if err != nil {
		return nil, err
	}
	s := &SimSource{w: w}
	w.Watch(func(o world.Observation) {
		if s.emit != nil {
			s.emit(o)
		}
	})
	return s, nil
}

// Layout is the world's layout.
func (s *SimSource) Layout() world.Layout { return s.w.Layout() }

// Start is virtual time zero.
func (s *SimSource) Start() time.Time { return world.Epoch }

// Advance runs the world to t.
func (s *SimSource) Advance(t time.Duration, emit func(world.Observation)) (bool, error) {
	s.emit = emit
	defer func() { s.emit = nil }()
	return s.w.RunUntil(t)
}
