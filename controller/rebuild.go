package controller

import (
	"fmt"
	"slices"

	"github.com/lockertwin/lockertwin/allocator"
)

// Rebuild makes a core from a log of its events: it verifies the hash chain
// while replaying, applies every event (no outputs are produced), and arms
// the clock for the deadlines that still stand. cfg must carry a fresh
// inventory of the same site; cfg.Log receives only new events.
func Rebuild(cfg Config, events []Event) (*Core, error) {
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	c.replaying = true
	for i := range events {
		if err := c.chain.Verify(events[i : i+1]); err != nil {
			return nil, fmt.Errorf("rebuilding %s: %w", cfg.Site, err)
		}
		if err := c.applyChecked(&events[i]); err != nil {
			return nil, fmt.Errorf("rebuilding %s: event %d (%v): %w", cfg.Site, events[i].Seq, events[i].Kind, err)
		}
	}
	c.replaying = false
	for i := range c.cabinets {
		c.cabinets[i].resync = true
	}
	c.rearm()
	return c, nil
}

// applyChecked applies a logged event, turning a contradiction with the
// state (a log from another site, or a corrupt one that still hashes) into
// an error instead of a panic.
func (c *Core) applyChecked(e *Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	if e.Kind == KindInvalid || e.Kind >= numKinds {
		return fmt.Errorf("unknown event kind %d", e.Kind)
	}
	if needsParcel(e.Kind) && c.parcels[e.Parcel] == nil && !(e.Kind == Notified && e.Cabinet < 0) {
		return fmt.Errorf("%w: %s", ErrUnknownParcel, e.Parcel)
	}
	c.apply(e)
	return nil
}

func needsParcel(k Kind) bool {
	switch k {
	case Reserved, Refused, ReservationLapsed, DoorCommanded, Deposited, DepositAborted, CodeIssued,
		Notified, PickupAuthorized, PickedUp, PickupAborted, Expired, Returned, ExceptionRaised, ExceptionResolved, Cancelled:
		return true
	}
	return false
}

// Snapshot is the core's whole state in a canonical, comparable form: two
// cores with equal snapshots behave identically from here on.
type Snapshot struct {
	Parcels      []string
	Finished     []string
	Compartments []string
	Cabinets     []string
	Commands     []string
	ChainSeq     uint64
	ChainHead    [32]byte
	Alarms       []string
}

// Snapshot returns the core's state, sorted.
func (c *Core) Snapshot() Snapshot {
	var s Snapshot
	for _, p := range c.parcels {
		s.Parcels = append(s.Parcels, fmt.Sprintf("%s %v prev=%v exc=%q cab=%d comp=%d res=%d dl=%d rem=%d/%v code=%x/%v/fails=%d/locked=%d gen=%d spec=%+v rcpt=%q dep=%d warmed=%v",
			p.id, p.state, p.prev, p.exception, p.cabinet, p.comp, p.reservedUntil, p.deadline, p.reminderAt, p.reminded,
			p.digest[:4], p.codeLive, p.codeFails, p.codeLocked, p.codeGen, *p.spec, p.recipient, p.depositedAt, p.warmed))
	}
	for id, st := range c.finished {
		s.Finished = append(s.Finished, id+" "+st.String())
	}
	for i, cp := range c.comps {
		pid, cmd := "", ""
		if cp.parcel != nil {
			pid = cp.parcel.id
		}
		if cp.cmd != nil {
			cmd = cp.cmd.id
		}
		s.Compartments = append(s.Compartments, fmt.Sprintf("%d %v parcel=%s cmd=%s open=%v@%d occ=%v alarmed=%v warm=%v",
			i, c.inv.Status(allocator.CompartmentID(i)), pid, cmd, cp.doorOpen, cp.openedAt, cp.occupied, cp.alarmed, cp.warm))
	}
	for i, cb := range c.cabinets {
		s.Cabinets = append(s.Cabinets, fmt.Sprintf("%s online=%v seq=%d fails=%v locked=%d warm=%v",
			cb.name, c.inv.CabinetOnline(allocator.CabinetID(i)), cb.loggedSeq, cb.fails, cb.lockedUntil, cb.warm))
	}
	for _, cmd := range c.liveCommands() {
		pid := ""
		if cmd.parcel != nil {
			pid = cmd.parcel.id
		}
		s.Commands = append(s.Commands, fmt.Sprintf("%s cab=%d comp=%d parcel=%s %v issued=%d exp=%d att=%d retry=%d acked=%v opened=%v",
			cmd.id, cmd.cab, cmd.comp, pid, cmd.purpose, cmd.issued, cmd.expires, cmd.attempts, cmd.retryAt, cmd.acked, cmd.opened))
	}
	for k, n := range c.alarms {
		s.Alarms = append(s.Alarms, fmt.Sprintf("%s=%d", k, n))
	}
	slices.Sort(s.Parcels)
	slices.Sort(s.Finished)
	slices.Sort(s.Commands)
	slices.Sort(s.Alarms)
	s.ChainHead, s.ChainSeq = c.chain.Head()
	return s
}
