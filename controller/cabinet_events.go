package controller

import (
	"fmt"
	"slices"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/twin"
)

// HandleEvent takes one event a cabinet sent. Invalid events, events of an
// unknown cabinet or compartment, and duplicates are refused with a typed
// error and change nothing. A duplicate has a sequence number already seen
// (a message delivered twice), or an id that one of the cabinet's last
// idWindowLen events or an event held for a gap had (an event sent again
// under a new number). A rebuilt core knows no ids until events come: the
// log keeps what the events did, not the cabinets' ids for them.
func (c *Core) HandleEvent(cabName string, ev twin.Event) error {
	ci, ok := c.cabinetIndex(cabName)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownCabinet, cabName)
	}
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	cab := &c.cabinets[ci]
	comp := allocator.NoCompartment
	if ev.Compartment != 0 {
		id, ok := c.inv.CompartmentAt(allocator.CabinetID(ci), ev.Compartment)
		if !ok {
			return fmt.Errorf("%w: cabinet %s has no compartment %d", ErrUnknownCompartment, cabName, ev.Compartment)
		}
		comp = id
	}
	// A repeated id is a copy (a redelivery); a new id whose number is not
	// past the last is a cabinet behind its own sequence (ErrSequenceBehind).
	fp := idPrint(ev.ID)
	if cab.ids.has(fp) || len(cab.held) > 0 && cab.heldID(fp) != 0 {
		return fmt.Errorf("%w: cabinet %s event id %q (sequence %d) %s", ErrDuplicateEvent, cabName, ev.ID, ev.Seq, cab.repeated(fp))
	}
	if ev.Seq <= cab.lastSeq {
		return fmt.Errorf("%w: cabinet %s event %q has sequence %d, the last handled %d", ErrSequenceBehind, cabName, ev.ID, ev.Seq, cab.lastSeq)
	}
	if cab.resync {
		// First event after a rebuild: lastSeq is only what the log
		// recorded, so a jump is expected, not a gap.
		cab.resync = false
	} else if cab.lastSeq != 0 && ev.Seq > cab.lastSeq+1 {
		// An earlier event is missing: hold this one until the gap fills
		// or ReorderWait passes, so events are handled in the cabinet's order.
		if _, dup := cab.held[ev.Seq]; dup {
			return fmt.Errorf("%w: cabinet %s sequence %d already held", ErrDuplicateEvent, cabName, ev.Seq)
		}
		if len(cab.held) >= maxHeld {
			c.flushHeld(ci)
			return c.HandleEvent(cabName, ev)
		}
		if cab.held == nil {
			cab.held = map[uint64]heldEvent{}
		}
		cab.held[ev.Seq] = heldEvent{ev: ev, comp: comp, fp: fp}
		if cab.flush == nil {
			cab.flush = c.cfg.Clock.AfterFunc(c.set.ReorderWait, func() {
				cab.flush = nil
				c.flushHeld(ci)
			})
		}
		return nil
	}
	if err := c.dispatch(ci, comp, &ev, fp); err != nil {
		return err
	}
	// Handle what was held behind this one.
	for len(cab.held) > 0 {
		next, ok := cab.held[cab.lastSeq+1]
		if !ok {
			break
		}
		delete(cab.held, cab.lastSeq+1)
		if err := c.dispatch(ci, next.comp, &next.ev, next.fp); err != nil {
			return err
		}
	}
	if len(cab.held) == 0 && cab.flush != nil {
		cab.flush.Stop()
		cab.flush = nil
	}
	return nil
}

// heldID is the sequence number of the held event whose id has fingerprint
// fp, 0 if none (held events' ids differ: HandleEvent sees to it).
func (cab *cabinet) heldID(fp uint64) uint64 {
	for seq, h := range cab.held {
		if h.fp == fp {
			return seq
		}
	}
	return 0
}

// repeated says which earlier event an event whose id has fingerprint fp
// repeats: one of the last handled, or one held for a gap.
func (cab *cabinet) repeated(fp uint64) string {
	if seq := cab.heldID(fp); seq != 0 {
		return fmt.Sprintf("repeats the id of held event %d", seq)
	}
	return fmt.Sprintf("repeats the id of one of the last %d events", idWindowLen)
}

// maxHeld bounds the reorder buffer of a cabinet.
const maxHeld = 64

type heldEvent struct {
	ev   twin.Event
	comp allocator.CompartmentID
	fp   uint64 // idPrint(ev.ID)
}

// flushHeld gives up waiting for missing events: it raises a sequence-gap
// alarm and handles the held events in order.
func (c *Core) flushHeld(ci int32) {
	cab := &c.cabinets[ci]
	if cab.flush != nil {
		cab.flush.Stop()
		cab.flush = nil
	}
	if len(cab.held) == 0 {
		return
	}
	seqs := make([]uint64, 0, len(cab.held))
	for s := range cab.held {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	c.alarm("sequence_gap", ci, -1, "")
	c.requestSync(ci)
	for _, s := range seqs {
		h := cab.held[s]
		delete(cab.held, s)
		_ = c.dispatch(ci, h.comp, &h.ev, h.fp)
	}
}

// dispatch handles one in-order cabinet event; fp is its id's idPrint.
func (c *Core) dispatch(ci int32, comp allocator.CompartmentID, ev *twin.Event, fp uint64) error {
	cab := &c.cabinets[ci]
	cabName := cab.name
	cab.lastSeq = ev.Seq
	cab.ids.add(fp)
	switch ev.Type {
	case twin.EvtAck:
		return c.onAck(ci, ev)
	case twin.EvtNack:
		return c.onNack(ci, ev)
	case twin.EvtDoorOpened:
		return c.onDoorOpened(ci, comp, ev)
	case twin.EvtDoorClosed:
		return c.onDoorClosed(ci, comp, ev)
	case twin.EvtOccupancy:
		return c.onOccupancy(ci, comp, ev)
	case twin.EvtFault:
		return c.onFault(ci, comp, ev)
	case twin.EvtTemp:
		return c.onTempBack(ci, comp, ev)
	case twin.EvtPin:
		// A code typed long ago (held in the cabinet through an outage, or
		// stuck on a slow link) would open a door for someone who has
		// left: it is not acted on, and not counted as a wrong guess; the
		// code stays valid and the alarm says why nothing opened. The
		// limit leaves room for a cabinet clock a little behind ours.
		if c.now()-ev.At.UnixNano() > int64(c.set.PinMaxAge) {
			c.alarm("stale_pin", ci, -1, "")
			return nil
		}
		_, err := c.Pickup(cabName, ev.Code)
		if err != nil && ErrorCode(err) == "internal" {
			return err
		}
	case twin.EvtHeartbeat:
	}
	return nil
}

// onTempBack ends the temperature excursion a cabinet's temp_out_of_range
// fault began: a temperature event says the place is back in range
// (PROTOCOL.md). It is not an alarm. A reading with no excursion open
// changes nothing, so logs nothing.
func (c *Core) onTempBack(ci int32, comp allocator.CompartmentID, ev *twin.Event) error {
	if w := c.warmth(ci, int32(comp)); w == nil || !*w {
		return nil
	}
	return c.clearOutOfRange(ci, int32(comp), ev.Seq)
}

// clearOutOfRange logs the end of a place's temperature excursion; seq is
// the cabinet event that told of it (0: a state report).
func (c *Core) clearOutOfRange(ci, comp int32, seq uint64) error {
	e := c.newEvent(AlarmCleared, ci, comp)
	e.Text, e.CabinetSeq = ConditionOutOfRange, seq
	return c.emit(e)
}

// warmth is where the core keeps whether a place (a compartment, or a
// cabinet when no compartment is named) has a temperature excursion open;
// nil when there is no such place.
func (c *Core) warmth(cab, comp int32) *bool {
	switch {
	case comp >= 0 && int(comp) < len(c.comps):
		return &c.comps[comp].warm
	case comp < 0 && cab >= 0 && int(cab) < len(c.cabinets):
		return &c.cabinets[cab].warm
	}
	return nil
}

func (c *Core) onAck(ci int32, ev *twin.Event) error {
	cmd := c.liveCommand(ci, ev.Command)
	if cmd == nil || cmd.acked {
		return nil // a stale or repeated ack: harmless under QoS 1
	}
	e := c.newEvent(CommandAcked, ci, int32(cmd.comp))
	e.Command, e.CabinetSeq = cmd.id, ev.Seq
	if cmd.parcel != nil {
		e.Parcel = cmd.parcel.id
	}
	return c.emit(e)
}

func (c *Core) onNack(ci int32, ev *twin.Event) error {
	cmd := c.liveCommand(ci, ev.Command)
	if cmd == nil {
		return nil
	}
	jammed := ev.Reason == twin.NackJammed
	if err := c.failCommand(cmd, ev.Reason, !jammed); err != nil {
		return err
	}
	if jammed {
		return c.jam(ci, cmd.comp)
	}
	return nil
}

// failCommand ends a command that will not open its door: the operation
// fails into an exception and, when alarm is set, an alarm; never silently.
// A command stopped by a jam raises none of its own: the jam has its
// alarm, one per door (jam), and a second would count one incident twice.
func (c *Core) failCommand(cmd *command, why string, alarm bool) error {
	e := c.newEvent(CommandFailed, cmd.cab, int32(cmd.comp))
	e.Command, e.Text = cmd.id, why
	p := cmd.parcel
	if p != nil {
		e.Parcel = p.id
	}
	if err := c.emit(e); err != nil {
		return err
	}
	if alarm {
		c.alarm("command_failed", cmd.cab, int32(cmd.comp), cmd.id)
	}
	if p != nil && p.state != StateException && !p.state.Terminal() {
		return c.raise(p, "command_"+why)
	}
	return nil
}

func (c *Core) raise(p *parcel, reason string) error {
	e := c.parcelEvent(ExceptionRaised, p)
	e.Text = reason
	return c.emit(e)
}

// jam takes a jammed door out of service and raises one alarm for it; a
// cabinet reports a jam twice (the nack of the command and a fault event),
// and a door already out of service is not alarmed again.
func (c *Core) jam(ci int32, comp allocator.CompartmentID) error {
	if c.inv.Status(comp) != allocator.OutOfService {
		c.alarm("jam", ci, int32(comp), "")
		if err := c.emit(&Event{Kind: OutOfService, Cabinet: ci, Compartment: int32(comp), Text: "jam"}); err != nil {
			return err
		}
	}
	if p := c.comps[comp].parcel; p != nil && p.state != StateException {
		return c.raise(p, "jam")
	}
	return nil
}

func (c *Core) onDoorOpened(ci int32, comp allocator.CompartmentID, ev *twin.Event) error {
	now := c.now()
	slot := &c.comps[comp]
	cmd := slot.cmd
	matched := ev.Command != "" && cmd != nil && cmd.id == ev.Command && !cmd.opened && now <= cmd.expires
	e := c.newEvent(DoorOpened, ci, int32(comp))
	e.CabinetSeq = ev.Seq
	if matched {
		e.Command = cmd.id
		if cmd.parcel != nil {
			e.Parcel = cmd.parcel.id
		}
	}
	if err := c.emit(e); err != nil {
		return err
	}
	if !matched {
		kind := "uncommanded_open"
		if ev.Command != "" {
			kind = "late_or_unknown_command_open"
		}
		c.alarm(kind, ci, int32(comp), ev.Command)
	}
	return nil
}

func (c *Core) onDoorClosed(ci int32, comp allocator.CompartmentID, ev *twin.Event) error {
	return c.closeDoor(ci, comp, *ev.Occupied, ev.Seq, "")
}

// closeDoor handles a door's closing: from its door_closed event (seq is
// the event's), or from a reported state (seq 0, text ClosedFromState).
func (c *Core) closeDoor(ci int32, comp allocator.CompartmentID, occupied bool, seq uint64, text string) error {
	slot := &c.comps[comp]
	cmd := slot.cmd
	e := c.newEvent(DoorClosed, ci, int32(comp))
	e.CabinetSeq, e.Text = seq, text
	if occupied {
		e.Num = 1
	}
	p := slot.parcel
	if p != nil {
		e.Parcel = p.id
	}
	if err := c.emit(e); err != nil {
		return err
	}
	if cmd != nil && cmd.parcel == p && p != nil {
		return c.completeDoorOperation(p, cmd.purpose, occupied)
	}
	// No door operation was under way: the closing tells us whether the
	// compartment still holds what it should.
	switch {
	case p != nil && p.state.InLocker() && !occupied:
		c.alarm("parcel_missing", ci, int32(comp), "")
		return c.raise(p, "parcel_missing")
	case p == nil && occupied:
		c.alarm("unexpected_item", ci, int32(comp), "")
		if c.inv.Status(comp) != allocator.OutOfService {
			return c.emit(&Event{Kind: OutOfService, Cabinet: ci, Compartment: int32(comp), Text: "unexpected_item"})
		}
	}
	return nil
}

// completeDoorOperation decides a deposit, pickup or return when its door
// closes: the outcome rests on the door being closed AND the sensor.
func (c *Core) completeDoorOperation(p *parcel, purpose Purpose, occupied bool) error {
	switch purpose {
	case PurposeDeposit:
		if !occupied {
			return c.emitParcel(DepositAborted, p)
		}
		if err := c.emitParcel(Deposited, p); err != nil {
			return err
		}
		return c.issueCode(p, NotifyArrival)
	case PurposePickup:
		if !occupied {
			return c.emitParcel(PickedUp, p)
		}
		e := c.parcelEvent(PickupAborted, p)
		e.Text = "pickup"
		if err := c.emit(e); err != nil {
			return err
		}
		if p.deadline > 0 && c.now() >= p.deadline {
			return c.expire(p)
		}
		return c.issueCode(p, NotifyCodeReissued)
	case PurposeReturn:
		if !occupied {
			if err := c.emitParcel(Returned, p); err != nil {
				return err
			}
			return c.notifyTerminal(p, NotifyReturned)
		}
		e := c.parcelEvent(PickupAborted, p)
		e.Text = "return"
		return c.emit(e)
	}
	return nil
}

// notifyTerminal notifies about a parcel that has just left the core's
// active set.
func (c *Core) notifyTerminal(p *parcel, kind NotificationKind) error {
	e := c.newEvent(Notified, -1, -1)
	e.Parcel, e.Text = p.id, string(kind)
	if err := c.emit(e); err != nil {
		return err
	}
	c.cfg.Out.Notify(Notification{Kind: kind, Parcel: p.id, Recipient: p.recipient, Site: c.cfg.Site, At: c.cfg.Clock.Now(), Seq: e.Seq})
	return nil
}

func (c *Core) expire(p *parcel) error {
	if err := c.emitParcel(Expired, p); err != nil {
		return err
	}
	return c.notify(p, NotifyExpiry, "")
}

func (c *Core) onOccupancy(ci int32, comp allocator.CompartmentID, ev *twin.Event) error {
	slot := &c.comps[comp]
	occupied := *ev.Occupied
	e := c.newEvent(OccupancyChanged, ci, int32(comp))
	e.CabinetSeq = ev.Seq
	if occupied {
		e.Num = 1
	}
	if err := c.emit(e); err != nil {
		return err
	}
	if slot.doorOpen {
		return nil // readings change while someone is at the door
	}
	p := slot.parcel
	switch {
	case p != nil && p.state.InLocker() && !occupied:
		c.alarm("sensor_disagreement", ci, int32(comp), "")
		if p.state != StateException {
			return c.raise(p, "sensor_disagreement")
		}
	case p == nil && occupied:
		c.alarm("sensor_disagreement", ci, int32(comp), "")
	}
	return nil
}

func (c *Core) onFault(ci int32, comp allocator.CompartmentID, ev *twin.Event) error {
	switch ev.Fault {
	case twin.FaultJam: // Validate saw to its compartment
		if cmd := c.comps[comp].cmd; cmd != nil {
			if err := c.failCommand(cmd, "jam", false); err != nil {
				return err
			}
		}
		return c.jam(ci, comp)
	case twin.FaultTempRange:
		// One alarm per excursion: a state report may have told of it
		// before its fault arrived.
		if w := c.warmth(ci, int32(comp)); w == nil || !*w {
			c.alarm(ev.Fault, ci, int32(comp), "")
		}
	case twin.FaultDoorLeftOpen:
		// One alarm per opening: the core raises its own at the door-open
		// limit, and the cabinet's report after it adds nothing (before
		// it, the cabinet's is the one: the core's own is then stale).
		if comp < 0 || !c.comps[comp].doorOpen || !c.comps[comp].alarmed {
			c.alarm(ev.Fault, ci, int32(comp), "")
		}
	default:
		c.alarm(ev.Fault, ci, int32(comp), "")
	}
	return nil
}
