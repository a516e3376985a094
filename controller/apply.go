package controller

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/twin"
)

// apply changes the core's state for one event. It is the only place state
// changes, it reads nothing but the event and the current state, and it has
// no outputs: that is what lets Rebuild replay a log into the exact state.
// Deadlines it pushes are derived state; a stale one is ignored when due.
func (c *Core) apply(e *Event) {
	switch e.Kind {
	case Announced:
		p := c.announcing
		if p == nil || p.spec != e.Spec { // replayed from a log
			req, err := c.resolve(*e.Spec)
			if err != nil {
				panic(fmt.Sprintf("controller: logged announcement does not resolve: %v", err))
			}
			p = &parcel{spec: e.Spec, req: req}
		}
		p.id, p.recipient, p.state, p.announcedAt = e.Parcel, e.Text, StateAnnounced, e.At
		p.cabinet, p.comp, p.chilled = -1, allocator.NoCompartment, p.req.Zone != allocator.Ambient
		c.parcels[e.Parcel] = p
		if c.finished != nil {
			delete(c.finished, e.Parcel) // a refused or cancelled parcel offered again
		}
	case Reserved:
		p := c.parcelOf(e)
		id := allocator.CompartmentID(e.Compartment)
		must(c.inv.Reserve(id))
		p.state, p.cabinet, p.comp, p.reservedUntil = StateReserved, e.Cabinet, id, e.Num
		c.comps[id].parcel = p
		if e.Num > 0 {
			c.schedule(deadline{at: e.Num, kind: dlReservation, p: p})
		}
	case Refused:
		c.finish(c.parcelOf(e), StateRefused)
	case ReservationLapsed:
		p := c.parcelOf(e)
		must(c.inv.Release(p.comp))
		c.comps[p.comp].parcel = nil
		p.state, p.cabinet, p.comp, p.reservedUntil = StateAnnounced, -1, allocator.NoCompartment, 0
	case DoorCommanded:
		p := c.parcelOf(e)
		c.cmdSeq++
		cmd := c.newCommand()
		*cmd = command{
			id: e.Command, cab: e.Cabinet, comp: allocator.CompartmentID(e.Compartment), parcel: p,
			purpose: parsePurpose(e.Text), issued: e.At, expires: e.Num, attempts: 1,
			retryAt: e.At + int64(c.set.AckTimeout),
		}
		cab := &c.cabinets[cmd.cab]
		cab.live = append(cab.live, cmd)
		c.comps[cmd.comp].cmd = cmd
		switch cmd.purpose {
		case PurposeDeposit:
			p.state = StateDepositOpening
		case PurposePickup:
			p.state = StatePickupOpening
		case PurposeReturn:
			p.state = StateReturnOpening
		}
		c.scheduleCommand(cmd, min(cmd.retryAt, cmd.expires))
	case CommandRetried:
		cmd := c.commandOf(e)
		cmd.attempts = int32(e.Num)
		cmd.retryAt = e.At + int64(c.set.AckTimeout)
		c.scheduleCommand(cmd, min(cmd.retryAt, cmd.expires))
	case CommandAcked:
		c.commandOf(e).acked = true
		c.seenSeq(e)
	case CommandFailed:
		c.endCommand(c.commandOf(e))
	case DoorOpened:
		c.seenSeq(e)
		slot := &c.comps[e.Compartment]
		slot.doorOpen, slot.openedAt, slot.openSeq, slot.alarmed = true, e.At, e.CabinetSeq, false
		limitOwn := true // a deadline of the opening's own for the open limit
		if e.Command != "" {
			cmd := c.commandOf(e)
			cmd.opened, cmd.openedAt = true, e.At
			limitOwn = !c.leavesLimitToCommand(cmd)
			if p := cmd.parcel; p != nil {
				switch p.state {
				case StateDepositOpening:
					p.state = StateDepositOpen
				case StatePickupOpening:
					p.state = StatePickupOpen
				case StateReturnOpening:
					p.state = StateReturnOpen
				}
			}
		}
		if limitOwn {
			c.schedule(deadline{at: c.openLimit(e.At), kind: dlDoorOpen, comp: e.Compartment, openedAt: e.At})
		}
	case DoorClosed:
		c.seenSeq(e)
		slot := &c.comps[e.Compartment]
		slot.doorOpen, slot.occupied = false, e.Num == 1
		if cmd := slot.cmd; cmd != nil && cmd.parcel != nil && cmd.parcel.id == e.Parcel {
			c.endCommand(cmd)
		}
	case OccupancyChanged:
		c.seenSeq(e)
		c.comps[e.Compartment].occupied = e.Num == 1
	case Deposited:
		p := c.parcelOf(e)
		must(c.inv.Occupy(p.comp))
		p.state, p.depositedAt, p.reservedUntil = StateAwaitingPickup, e.At, 0
		if c.comps[p.comp].warm || p.chilled && c.cabinets[p.cabinet].warm {
			p.warmed = true // put into the warm
		}
		// Its reservation deadline will never act: empty it now, while
		// it is in cache, rather than read the parcel hours from now.
		c.deadlines.drop(p.dls[dlReservation-1], p)
		p.dls[dlReservation-1] = 0
	case DepositAborted:
		p := c.parcelOf(e)
		p.state = StateReserved
		c.pushDeadlines(p)
	case CodeIssued:
		p := c.parcelOf(e)
		p.digest, p.codeLive = e.Digest, true // a new code replaces the old
		p.codeGen++
		p.codeFails, p.codeLocked = 0, 0 // and starts with no failures
		p.deadline, p.reminderAt, p.state = e.Num, e.Num2, StateAwaitingPickup
		c.scheduleWaiting(p)
	case Notified:
		if p := c.parcelOf(e); p != nil && e.Text == string(NotifyReminder) {
			p.reminded = true
			if p.state == StateAwaitingPickup {
				c.scheduleWaiting(p) // the expiry, now that the reminder went
			}
		}
	case PickupAuthorized:
		c.dropCode(c.parcelOf(e))
	case CodeRejected:
		cab := &c.cabinets[e.Cabinet]
		keep := cab.fails[:0]
		for _, t := range cab.fails {
			if e.At-t < int64(c.set.Limits.LongWindow) {
				keep = append(keep, t)
			}
		}
		cab.fails = append(keep, e.At)
		// A guess that named a live code counts against it, unless the
		// code is locked already.
		if e.Parcel != "" {
			if p := c.parcelOf(e); p != nil && e.At >= p.codeLocked && p.codeFails < math.MaxUint8 {
				p.codeFails++
			}
		}
	case LockedOut:
		if e.Parcel == "" {
			c.cabinets[e.Cabinet].lockedUntil = e.Num
		} else if p := c.parcelOf(e); p != nil {
			p.codeLocked, p.codeFails = e.Num, 0
		}
	case PickedUp:
		p := c.parcelOf(e)
		must(c.inv.Vacate(p.comp))
		c.comps[p.comp].parcel = nil
		c.finish(p, StatePickedUp)
	case PickupAborted:
		p := c.parcelOf(e)
		if e.Text == "return" {
			p.state = StateAwaitingReturn
		} else {
			p.state = StateAwaitingPickup
			c.pushDeadlines(p)
		}
	case Expired:
		p := c.parcelOf(e)
		c.dropCode(p)
		p.state = StateAwaitingReturn
	case Returned:
		p := c.parcelOf(e)
		must(c.inv.Vacate(p.comp))
		c.comps[p.comp].parcel = nil
		c.finish(p, StateReturned)
	case ExceptionRaised:
		p := c.parcelOf(e)
		c.exceptions++
		p.prev, p.state, p.exception = p.state, StateException, e.Text
		if p.comp >= 0 {
			if cmd := c.comps[p.comp].cmd; cmd != nil && cmd.parcel == p && !cmd.opened {
				c.endCommand(cmd)
			}
		}
	case ExceptionResolved:
		p := c.parcelOf(e)
		c.exceptions--
		p.exception = ""
		if Resolution(e.Text) == ResolveRemoved {
			c.dropCode(p)
			if p.comp >= 0 {
				c.emptyCompartment(p.comp)
			}
			c.finish(p, StateRemoved)
			return
		}
		p.state = resumeState(p.prev)
		c.pushDeadlines(p)
	case AlarmRaised:
		c.alarms[e.Text]++
		if w := c.warmth(e.Cabinet, e.Compartment); w != nil && e.Text == ConditionOutOfRange {
			*w = true
			c.exposeParcels(e.Cabinet, e.Compartment)
		}
		if e.Text == ConditionLeftOpen && e.Compartment >= 0 {
			slot := &c.comps[e.Compartment]
			slot.alarmed = true
			// Ask again for the cabinet's state while the door is
			// believed open: the answer to the alarm's request can be
			// lost too, and nothing else would ask.
			c.schedule(deadline{at: e.At + c.resyncAfter(1), kind: dlDoorOpen, comp: e.Compartment, openedAt: slot.openedAt, resync: 1})
		}
	case OutOfService:
		must(c.inv.TakeOutOfService(allocator.CompartmentID(e.Compartment)))
	case BackInService:
		must(c.inv.ReturnToService(allocator.CompartmentID(e.Compartment)))
	case CabinetStatus:
		must(c.inv.SetCabinetOnline(allocator.CabinetID(e.Cabinet), e.Text == twin.StatusOnline))
	case AlarmCleared:
		if w := c.warmth(e.Cabinet, e.Compartment); w != nil {
			*w = false
		}
	case Cancelled:
		p := c.parcelOf(e)
		if p.comp >= 0 {
			must(c.inv.Release(p.comp))
			c.comps[p.comp].parcel = nil
		}
		c.finish(p, StateCancelled)
	default:
		panic(fmt.Sprintf("controller: cannot apply %v", e.Kind))
	}
}

// pushDeadlines re-derives the deadlines of a parcel returning to a waiting
// state: one that fell due while it was elsewhere (in an exception, say) was
// dropped then, and must fire now.
func (c *Core) pushDeadlines(p *parcel) {
	switch p.state {
	case StateReserved:
		if p.reservedUntil > 0 {
			c.schedule(deadline{at: p.reservedUntil, kind: dlReservation, p: p})
		}
	case StateAwaitingPickup:
		c.scheduleWaiting(p)
	}
}

// scheduleWaiting gives a parcel awaiting pickup its next deadline: the
// reminder while one is due, else the expiry. One at a time: most parcels
// are collected before their reminder, and their expiry is then never
// queued; applying the reminder's notification queues it.
func (c *Core) scheduleWaiting(p *parcel) {
	switch {
	case p.reminderAt > 0 && !p.reminded && (p.deadline == 0 || p.reminderAt < p.deadline):
		c.schedule(deadline{at: p.reminderAt, kind: dlReminder, p: p})
	case p.deadline > 0:
		c.schedule(deadline{at: p.deadline, kind: dlExpiry, p: p})
	}
}

// exposeParcels marks the parcels a temperature excursion reaches: the one
// in the compartment, or, when the cabinet as a whole is out of range,
// every chilled parcel in it. A parcel is reached while it is in the
// locker, from its deposit until it is taken out; one deposited while the
// excursion lasts is marked then (Deposited).
func (c *Core) exposeParcels(cab, comp int32) {
	first, end := c.inv.Span(allocator.CabinetID(cab), allocator.CompartmentID(comp))
	for id := first; id < end; id++ {
		if p := c.comps[id].parcel; p != nil && inLocker(p) && (comp >= 0 || p.chilled) {
			p.warmed = true
		}
	}
}

// inLocker reports whether p is in its compartment, behind a closed door:
// deposited, and its door not yet open to take it out (an exception keeps
// it where it was before). Once the door opens for its recipient or a
// returning courier it is in their hands: a door they leave open warms an
// empty compartment, or one whose parcel they chose to leave, which goes
// back to waiting when the door closes.
func inLocker(p *parcel) bool {
	s := p.state
	if s == StateException {
		s = p.prev
	}
	switch s {
	case StateAwaitingPickup, StatePickupOpening, StateAwaitingReturn, StateReturnOpening:
		return true
	}
	return false
}

// resumeState is where a parcel carries on after a resolved exception.
func resumeState(prev State) State {
	switch prev {
	case StateDepositOpening, StateDepositOpen:
		return StateReserved
	case StatePickupOpening, StatePickupOpen:
		return StateAwaitingPickup
	case StateReturnOpening, StateReturnOpen:
		return StateAwaitingReturn
	}
	return prev
}

func (c *Core) emptyCompartment(id allocator.CompartmentID) {
	switch c.inv.Status(id) {
	case allocator.OutOfService:
		must(c.inv.ClearOutOfService(id))
	case allocator.Reserved:
		must(c.inv.Release(id))
	case allocator.Occupied:
		must(c.inv.Vacate(id))
	}
	c.comps[id].parcel = nil
}

func (c *Core) seenSeq(e *Event) {
	if e.CabinetSeq > 0 && e.Cabinet >= 0 {
		cab := &c.cabinets[e.Cabinet]
		cab.loggedSeq = max(cab.loggedSeq, e.CabinetSeq)
		cab.lastSeq = max(cab.lastSeq, e.CabinetSeq)
	}
}

func (c *Core) dropCode(p *parcel) {
	if p != nil {
		p.codeLive = false
	}
}

func (c *Core) endCommand(cmd *command) {
	if cmd == nil || cmd.done {
		return
	}
	live := c.cabinets[cmd.cab].live
	if i := slices.Index(live, cmd); i >= 0 {
		live[i] = live[len(live)-1]
		live[len(live)-1] = nil
		c.cabinets[cmd.cab].live = live[:len(live)-1]
	}
	cmd.done = true
	if cmd.queued == 0 {
		c.release(cmd)
	}
	if c.comps[cmd.comp].cmd == cmd {
		c.comps[cmd.comp].cmd = nil
	}
}

// parcelOf is the active parcel an event names: the one the event was just
// made for (hint) unless that one is finished, else found by id (nil if not
// active), so replaying a log finds the same.
func (c *Core) parcelOf(e *Event) *parcel {
	if h := c.hint; h != nil && !h.done && h.id == e.Parcel {
		return h
	}
	return c.parcels[e.Parcel]
}

// commandOf finds the command an event names: nearly always the one its
// compartment is busy with, which spares the search.
func (c *Core) commandOf(e *Event) *command {
	if e.Compartment >= 0 && int(e.Compartment) < len(c.comps) {
		if cmd := c.comps[e.Compartment].cmd; cmd != nil && cmd.id == e.Command {
			return cmd
		}
	}
	return c.liveCommand(e.Cabinet, e.Command)
}

// liveCommands returns every live command, cabinet by cabinet.
func (c *Core) liveCommands() []*command {
	var all []*command
	for i := range c.cabinets {
		all = append(all, c.cabinets[i].live...)
	}
	return all
}

// liveCommand finds a live command of cabinet ci by id, or nil.
func (c *Core) liveCommand(ci int32, id string) *command {
	if ci < 0 || int(ci) >= len(c.cabinets) {
		return nil
	}
	for _, cmd := range c.cabinets[ci].live {
		if cmd.id == id {
			return cmd
		}
	}
	return nil
}

func (c *Core) finish(p *parcel, s State) {
	p.state = s
	p.done = true
	for i, ref := range p.dls {
		c.deadlines.drop(ref, p)
		p.dls[i] = 0
	}
	c.dropCode(p)
	delete(c.parcels, p.id)
	if c.hint == p {
		c.hint = nil
	}
	if c.finished != nil {
		c.finished[p.id] = s
	}
}

func must(err error) {
	if err != nil {
		panic("controller: event contradicts inventory: " + err.Error())
	}
}

// ---- deadlines -----------------------------------------------------------

type deadlineKind uint8

const (
	dlReservation deadlineKind = iota + 1
	dlReminder
	dlExpiry
	// dlCommand: a live door command's one deadline at a time. Until its
	// door opens, that is its retry (while unacknowledged) or its expiry,
	// whichever comes first; once its door opens, the door's open limit,
	// handed on as a dlDoorOpen deadline when the command's comes up (a
	// command nearly always ends, its door closed, before then, and then
	// leaves one stale deadline behind instead of three).
	dlCommand
	dlDoorOpen
)

type deadline struct {
	at       int64
	seq      uint64
	p        *parcel
	cmd      *command
	openedAt int64
	comp     int32
	kind     deadlineKind
	// resync (dlDoorOpen): 0 for the open limit's alarm; n > 0 for the
	// n-th renewed request for the cabinet's state after that alarm.
	resync uint8
}

// deadlineHeap is a 4-ary min-heap on (at, seq), a total order, so the
// deadlines come out in the same order whatever the heap's shape. It holds
// the deadlines that deadlineQueue's FIFOs cannot (see there).
type deadlineHeap struct {
	items []deadline // numbered (seq) by deadlineQueue
}

// minCompact is the smallest heap worth compacting.
const minCompact = 64

// scheduleCommand gives cmd its deadline at at; an earlier one it had is
// stale from now on.
func (c *Core) scheduleCommand(cmd *command, at int64) {
	cmd.dlAt = at
	cmd.queued++
	c.schedule(deadline{at: at, kind: dlCommand, cmd: cmd})
}

// Commands are recycled: two are made for every parcel, and each lives
// for seconds. A command counts the deadlines that name it (queued: up in
// scheduleCommand, down in left when one leaves the queue); once it has
// ended and none names it, it is freed (release). It is not reused at
// once, since a caller up the stack may still read the command it just
// ended: freed commands wait in c.freed until wake, which the clock calls
// with nothing of the core's on the stack, moves them to c.spare.
func (c *Core) newCommand() *command {
	if n := len(c.spare); n > 0 {
		cmd := c.spare[n-1]
		c.spare[n-1] = nil
		c.spare = c.spare[:n-1]
		return cmd
	}
	return new(command)
}

// left notes that deadline d left the queue.
func (c *Core) left(d *deadline) {
	if d.kind != dlCommand {
		return
	}
	cmd := d.cmd
	cmd.queued--
	if cmd.queued == 0 && cmd.done {
		c.release(cmd)
	}
}

// release frees an ended command that no deadline names.
func (c *Core) release(cmd *command) {
	if !c.replaying {
		c.freed = append(c.freed, cmd)
	}
}

// handsOn reports whether cmd's deadline is to hand on its door's open
// limit: the door it opened is still open from that opening and not yet
// alarmed, and its opening left the limit to it.
func (c *Core) handsOn(cmd *command) bool {
	slot := &c.comps[cmd.comp]
	return slot.doorOpen && slot.openedAt == cmd.openedAt && !slot.alarmed && c.leavesLimitToCommand(cmd)
}

// leavesLimitToCommand reports whether the opening cmd made leaves the
// door's open limit to cmd's deadline: that deadline comes by cmd's expiry,
// so it does when the expiry is no later than the limit.
func (c *Core) leavesLimitToCommand(cmd *command) bool {
	return cmd.expires <= c.openLimit(cmd.openedAt)
}

// openLimit is when a door opened at openedAt has been open too long.
func (c *Core) openLimit(openedAt int64) int64 { return openedAt + int64(c.set.DoorOpenLimit) }

// schedule adds a deadline. Deadlines are dropped lazily (due checks
// whether they still stand), except a finished parcel's, which finish
// empties in its FIFO. The few in the heap are not: when the heap has
// doubled since it was last compacted, its stale deadlines go (linear, so
// amortised constant per push). So the queue keeps alive only live parcels
// and commands, and a FIFO holds at most a window's worth of deadlines
// (two days of expiries).
func (c *Core) schedule(d deadline) {
	q := &c.deadlines
	ref := q.push(d)
	if !c.armedBy(d.at) {
		c.rearmDue = true // else a timer is early enough for it
	}
	if d.p != nil && d.kind <= dlExpiry {
		d.p.dls[d.kind-1] = ref // finish drops it
	}
	if h := &q.heap; len(h.items) >= max(q.compactAt, minCompact) {
		before := len(h.items)
		h.filter(func(d *deadline) bool {
			if c.stale(d) {
				c.left(d)
				return false
			}
			return true
		})
		q.n -= before - len(h.items)
		q.known = false
		q.compactAt = 2 * len(h.items)
	}
}

// filter keeps the deadlines for which keep holds and restores the heap.
// Their (at, seq) order is unchanged.
func (h *deadlineHeap) filter(keep func(*deadline) bool) {
	items := h.items
	n := 0
	for i := range items {
		if keep(&items[i]) {
			items[n] = items[i]
			n++
		}
	}
	clear(items[n:])
	h.items = items[:n]
	for i := (n - 2) / 4; n > 1 && i >= 0; i-- {
		h.down(i)
	}
}

// down sifts item i toward the leaves.
func (h *deadlineHeap) down(i int) {
	items := h.items
	n := len(items)
	x := items[i]
	for {
		first := 4*i + 1
		if first >= n {
			break
		}
		m := first
		for c := first + 1; c < min(first+4, n); c++ {
			if before(&items[c], &items[m]) {
				m = c
			}
		}
		if !before(&items[m], &x) {
			break
		}
		items[i] = items[m]
		i = m
	}
	items[i] = x
}

// push adds a deadline whose seq is already set.
func (h *deadlineHeap) push(d deadline) {
	h.items = append(h.items, d)
	items := h.items
	i := len(items) - 1
	for i > 0 {
		parent := (i - 1) / 4
		if !before(&d, &items[parent]) {
			break
		}
		items[i] = items[parent]
		i = parent
	}
	items[i] = d
}

func before(a, b *deadline) bool { return a.at < b.at || (a.at == b.at && a.seq < b.seq) }

func (h *deadlineHeap) pop() deadline {
	items := h.items
	top := items[0]
	n := len(items) - 1
	items[0] = items[n]
	items[n] = deadline{}
	h.items = items[:n]
	if n > 0 {
		h.down(0)
	}
	return top
}

// rearm makes sure the clock wakes the core at the earliest deadline.
// Only a deadline scheduled before the timer (or with none armed) can need
// it, so an event that scheduled none skips it (rearmDue).
func (c *Core) rearm() {
	if c.replaying || c.waking {
		return
	}
	c.rearmDue = false
	first := c.deadlines.peek()
	if first == nil || c.armedBy(first.at) {
		return // armed early enough; stale deadlines are dropped when it fires
	}
	for first != nil && c.stale(first) {
		d := c.deadlines.pop()
		c.left(&d)
		first = c.deadlines.peek()
	}
	if first == nil {
		return
	}
	if c.armedBy(first.at) {
		return
	}
	c.arm(first.at)
}

// coreTimer is one of the core's two timers.
type coreTimer struct {
	t    Timer
	at   int64 // when it fires, if set
	set  bool
	wake func()
}

// arm sets a timer for at, earlier than any set. The core has two, so that
// a deadline earlier than the one a timer is set for takes the other timer
// and leaves the first set: typically a door command's retry, seconds
// ahead, while a timer waits hours for a reminder. When the retry's timer
// has fired (the command long done), the other is still set for the
// reminder. With one timer, it would be moved to the retry and back: on a
// simulator's clock that is an event cancelled and two more scheduled for
// every command. Only with both set is one moved: the later.
func (c *Core) arm(at int64) {
	k := 0
	switch t := &c.timers; {
	case !t[0].set:
	case !t[1].set, t[1].at > t[0].at:
		k = 1
	}
	ct := &c.timers[k]
	d := time.Duration(at - c.now())
	if r, ok := ct.t.(twin.ResettableTimer); ok {
		r.Reset(d) // each timer is made once, then reset, set or fired
	} else {
		if ct.set {
			ct.t.Stop()
		}
		ct.t = c.cfg.Clock.AfterFunc(d, ct.wake)
	}
	ct.at, ct.set = at, true
}

// armedBy reports whether a timer is set to wake the core by at.
func (c *Core) armedBy(at int64) bool {
	t := &c.timers
	return t[0].set && t[0].at <= at || t[1].set && t[1].at <= at
}

// fired is timer k's call: it is no longer set, and the core wakes.
func (c *Core) fired(k int) {
	c.timers[k].set = false
	c.wake()
}

// wake handles every deadline that is due.
func (c *Core) wake() {
	c.waking = true
	// Nothing up the stack holds a command now: the freed are spare,
	// emptied so as not to keep their parcels alive.
	for i, cmd := range c.freed {
		*cmd = command{done: true}
		c.spare = append(c.spare, cmd)
		c.freed[i] = nil
	}
	c.freed = c.freed[:0]
	now := c.now()
	for first := c.deadlines.peek(); first != nil && first.at <= now; first = c.deadlines.peek() {
		d := c.deadlines.pop()
		c.due(&d)
	}
	c.waking = false
	c.rearm()
}

// stale reports whether a deadline has nothing left to do: its parcel or
// command moved on. due acts only on deadlines that are not stale; rearm
// drops stale ones from the top of the heap, so the clock is not woken for
// them (every command leaves a retry and an expiry deadline behind when it is
// acknowledged and completed, and every door opening a door-open one).
func (c *Core) stale(d *deadline) bool {
	switch d.kind {
	case dlReservation:
		p := d.p
		return p.done || p.state != StateReserved || p.reservedUntil != d.at
	case dlReminder:
		p := d.p
		return p.done || p.state != StateAwaitingPickup || p.reminded || p.reminderAt != d.at
	case dlExpiry:
		p := d.p
		return p.done || p.state != StateAwaitingPickup || p.deadline != d.at
	case dlCommand:
		cmd := d.cmd
		return cmd.done || cmd.dlAt != d.at || cmd.opened && !c.handsOn(cmd)
	case dlDoorOpen:
		slot := &c.comps[d.comp]
		return !slot.doorOpen || slot.openedAt != d.openedAt || slot.alarmed == (d.resync == 0)
	}
	return true
}

// due acts on a deadline if it still stands; a deadline whose state moved on
// is simply dropped.
func (c *Core) due(d *deadline) {
	stale := c.stale(d)
	c.left(d)
	if stale {
		return
	}
	switch d.kind {
	case dlReservation:
		_ = c.emitParcel(ReservationLapsed, d.p)
	case dlReminder:
		if err := c.notify(d.p, NotifyReminder, ""); err != nil && d.p.deadline > 0 {
			// Not logged, so not applied: the expiry that applying it
			// would have queued is queued here, or the parcel never expires.
			c.schedule(deadline{at: d.p.deadline, kind: dlExpiry, p: d.p})
		}
	case dlExpiry:
		_ = c.expire(d.p)
	case dlCommand:
		cmd, now := d.cmd, c.now()
		switch {
		case cmd.opened: // its door is still open: the open limit takes over
			c.schedule(deadline{at: c.openLimit(cmd.openedAt), kind: dlDoorOpen, comp: int32(cmd.comp), openedAt: cmd.openedAt})
		case now >= cmd.expires:
			_ = c.failCommand(cmd, "not_opened", true)
		case cmd.acked:
			c.scheduleCommand(cmd, cmd.expires)
		case now < cmd.retryAt:
			c.scheduleCommand(cmd, min(cmd.retryAt, cmd.expires))
		case int(cmd.attempts) >= c.set.MaxAttempts:
			_ = c.failCommand(cmd, "timeout", true)
		default:
			e := c.newEvent(CommandRetried, cmd.cab, int32(cmd.comp))
			e.Command, e.Num = cmd.id, int64(cmd.attempts+1)
			if cmd.parcel != nil {
				e.Parcel = cmd.parcel.id
			}
			if c.emit(e) == nil {
				comp, _ := c.inv.Compartment(cmd.comp)
				c.send(c.cabinets[cmd.cab].name, cmd, comp.Slot)
			}
		}
	case dlDoorOpen:
		comp, _ := c.inv.Compartment(allocator.CompartmentID(d.comp))
		if d.resync == 0 {
			c.alarm(ConditionLeftOpen, int32(comp.Cabinet), d.comp, "")
		} else {
			n := min(d.resync+1, maxResync)
			c.schedule(deadline{at: c.now() + c.resyncAfter(n), kind: dlDoorOpen, comp: d.comp, openedAt: d.openedAt, resync: n})
		}
		c.requestSync(int32(comp.Cabinet))
	}
}

// resyncAfter is how long after its n-th request for a cabinet's state the
// core asks again while a door it alarmed for is still believed open: the
// door-open limit, doubling each time, at most an hour.
func (c *Core) resyncAfter(n uint8) int64 {
	d := int64(c.set.DoorOpenLimit)
	for i := uint8(1); i < n && d < int64(time.Hour); i++ {
		d *= 2
	}
	return min(d, int64(time.Hour))
}

// maxResync bounds a deadline's count of state requests, so that it never
// wraps to 0 (the alarm's); the interval stops growing long before.
const maxResync = 32
