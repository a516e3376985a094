package controller

import (
	"fmt"
	"strings"
	"time"

	"github.com/lockertwin/lockertwin/allocator"
)

// Checker watches a core's domain events and checks the invariants the
// project's numbers rest on, from the events alone (so it also checks the
// log), plus CheckCore for a deep look at the core's state:
//
//   - a parcel is in at most one compartment and a compartment holds at most one parcel;
//   - every door opening is matched by one live, unexpired command, or alarmed;
//   - a command id opens at most once;
//   - a code opens only its own parcel's compartment, once, before its expiry,
//     and not while it is locked;
//   - every state change is logged once and the hash chain verifies;
//   - parcels are conserved: deposited = in locker + picked up + returned + removed;
//   - each notifiable event is notified exactly once;
//   - a cabinet's sequence numbers never go backwards;
//   - keypad failures stay within the lockout limits, a code locks after its
//     limit of wrong guesses (and takes no more), and no lockout outlasts its limit;
//   - an alarm is cleared only while it is raised (a temperature excursion
//     ends once, after it began).
//
// Attach it with Core.AddHook. The first violation is kept (Err) and passed
// to OnViolation, with the events that led to it.
type Checker struct {
	OnViolation func(v *Violation)
	// Rehash recomputes every event's hash (NewChecker sets it). A
	// simulation that checks the core it runs may clear it: linkage (seq and
	// previous hash) is still checked, and the log is verified in full by
	// Verify and Rebuild wherever it is stored.
	Rehash bool
	// Recall keeps the last 16 events checked, for a violation's report
	// (NewChecker sets it). A simulation may clear it and, should a
	// violation stop a run, replay the run with it set: runs are
	// deterministic, so the replay stops at the same event, with the events
	// that led to it. Writing the ring is a cold store for every event of a
	// city's run, a few percent of its time.
	Recall bool

	// What every event reads comes first: the checker is read once per
	// event, each time from far away in memory, and the fields read
	// together should share cache lines.
	alarmDue bool
	chain    Chain
	nRecent  int
	inLocker int

	Deposited, PickedUp, Returned, Removed int

	slots   []compSlot            // by compartment
	parcels map[string]checkedRef // every parcel with a record: where it is
	live    []liveCommand         // live command ids, and the compartment each is for
	cabSeq  []uint64              // by cabinet: the last sequence number seen
	rejects map[int32][]int64
	warm    map[[2]int32]bool // places with a temperature excursion open: {cabinet, compartment}
	limits  CodeLimits
	err     *Violation
	recent  *[recentEvents]recentEvent // a ring, made when first written (Recall)
}

// compSlot is what the checker knows of one compartment: the parcel
// holding it (from its reservation to its release) with that parcel's
// record, and the compartment's live commands. A parcel's events name its
// compartment, so its record is found without a map; a record is in a slot
// while its parcel holds the compartment (owner set, rec.hasLoc) and in
// Checker.parcels otherwise. One cache line.
type compSlot struct {
	owner string // "" for none
	rec   checkedParcel
	cmds  []checkedCommand
}

// checkedRef is where a parcel's record is: in the slot of the compartment
// it holds (comp), or loose.
type checkedRef struct {
	comp  int32
	loose *checkedParcel
}

type checkedCommand struct {
	id      string
	expires int64
	opened  bool // it opened its door (once)
}

// checkedParcel is what the checker knows of one parcel, from its events.
type checkedParcel struct {
	loc                                 int32 // compartment held (hasLoc)
	authz                               int32 // compartment a pickup is authorised to open (hasAuthz)
	code                                int64 // expiry of the live code, 0 for none (hasCode)
	codeLocked                          int64 // the live code is locked until then
	notified                            uint8 // notification kinds seen (bits)
	codeFails                           uint8 // wrong guesses at the live code since issued or locked
	hasLoc, hasAuthz, hasCode, inLocker bool
}

func (p *checkedParcel) empty() bool {
	return !p.hasLoc && !p.hasAuthz && !p.hasCode && !p.inLocker && p.notified == 0
}

// parcel returns the record of the event's parcel, creating it.
func (k *Checker) parcel(e *Event) *checkedParcel {
	p := k.find(e)
	if p == nil {
		p = &checkedParcel{}
		k.parcels[e.Parcel] = checkedRef{comp: -1, loose: p}
	}
	return p
}

// find returns the record of the event's parcel, or nil. The compartment
// the event names is only a hint: a record is found wherever it is. The
// pointer is good until the next change of the checker's compartments.
func (k *Checker) find(e *Event) *checkedParcel {
	id, c := e.Parcel, e.Compartment
	if id != "" && c >= 0 && int(c) < len(k.slots) && k.slots[c].owner == id {
		return &k.slots[c].rec
	}
	r, ok := k.parcels[id]
	switch {
	case !ok:
		return nil
	case r.loose != nil:
		return r.loose
	}
	return &k.slots[r.comp].rec
}

// tidy forgets a parcel the checker has nothing left to check about.
func (k *Checker) tidy(id string, p *checkedParcel) {
	if p.empty() {
		delete(k.parcels, id)
	}
}

// maxIndex bounds the cabinet and compartment indices an event may carry:
// a forged log cannot make the checker allocate without bound.
const maxIndex = 1 << 16

// inRange checks an index an event carries, failing the check if it is
// negative or absurd.
func (k *Checker) inRange(e *Event, i int32, what string) bool {
	if i < 0 || i >= maxIndex {
		k.fail(e, "an event names a %s that exists (index %d)", what, i)
		return false
	}
	return true
}

// grow returns element i of *xs, growing the slice to hold it. Indices are
// a site's cabinets and compartments: small and dense.
func grow[T any](xs *[]T, i int32) *T {
	if int(i) >= len(*xs) {
		*xs = append(*xs, make([]T, int(i)+1-len(*xs))...)
	}
	return &(*xs)[i]
}

func notifBit(text string) uint8 {
	switch NotificationKind(text) {
	case NotifyArrival:
		return notifArrival
	case NotifyReminder:
		return notifReminder
	case NotifyExpiry:
		return notifExpiry
	case NotifyReturned:
		return notifReturned
	}
	return 0
}

// Violation is a broken invariant with its context.
type Violation struct {
	Invariant string
	Event     Event
	Recent    []Event // the events before it, oldest first (without digests and hashes); none unless the checker recalls them
}

func (v *Violation) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invariant %q violated by %s", v.Invariant, v.Event.String())
	if len(v.Recent) > 0 {
		b.WriteString("\nevents before it:")
		for i := range v.Recent {
			b.WriteString("\n  ")
			b.WriteString(v.Recent[i].String())
		}
	}
	return b.String()
}

const recentEvents = 16

// recentEvent is what a violation's report recalls of an event: what
// Event.String prints, its time and numbers; not the digests and hashes. A
// full Event is 230 bytes, written to the ring for every event checked.
type recentEvent struct {
	seq, cabinetSeq uint64
	at, num, num2   int64
	parcel, command string
	text            string
	cabinet, comp   int32
	kind            Kind
}

func (r *recentEvent) event() Event {
	return Event{Seq: r.seq, CabinetSeq: r.cabinetSeq, At: r.at, Num: r.num, Num2: r.num2, Parcel: r.parcel,
		Command: r.command, Text: r.text, Cabinet: r.cabinet, Compartment: r.comp, Kind: r.kind}
}

// NewChecker returns a checker for a core with the given code limits (zero:
// the defaults, as the core takes them).
func NewChecker(limits CodeLimits) *Checker {
	limits = limits.withDefaults()
	return &Checker{
		Rehash: true, Recall: true, limits: limits, chain: *NewChain(),
		parcels: map[string]checkedRef{},
		rejects: map[int32][]int64{},
	}
}

// Err returns the first violation, or nil.
func (k *Checker) Err() error {
	if k.err == nil {
		return nil
	}
	return k.err
}

func (k *Checker) fail(e *Event, format string, args ...any) {
	if k.err != nil {
		return
	}
	var recent []Event
	for i := max(0, k.nRecent-recentEvents); i < k.nRecent; i++ { // nRecent counts only what the ring took
		recent = append(recent, k.recent[i%recentEvents].event())
	}
	k.err = &Violation{Invariant: fmt.Sprintf(format, args...), Event: *e, Recent: recent}
	if k.OnViolation != nil {
		k.OnViolation(k.err)
	}
}

const (
	notifArrival uint8 = 1 << iota
	notifReminder
	notifExpiry
	notifReturned
)

// OnLogged checks one event.
func (k *Checker) OnLogged(_ *Core, e *Event) { k.Check(e) }

// Check checks one event (for tools that read a log without a core).
func (k *Checker) Check(e *Event) {
	if k.alarmDue && e.Kind != AlarmRaised {
		k.fail(e, "a door opened without a matching live command and no alarm followed")
	}
	k.alarmDue = false
	if k.Rehash {
		if err := k.chain.verifyOne(e, 0); err != nil {
			k.fail(e, "logged once, chain verifies: %v", err)
		}
	} else if e.Seq != k.chain.seq+1 || e.Prev != k.chain.head {
		k.fail(e, "logged once, chain links: seq %d after %d", e.Seq, k.chain.seq)
	} else {
		k.chain.seq, k.chain.head = e.Seq, e.Hash
	}
	if e.CabinetSeq > 0 {
		if k.inRange(e, e.Cabinet, "cabinet") {
			seq := grow(&k.cabSeq, e.Cabinet)
			if e.CabinetSeq <= *seq {
				k.fail(e, "cabinet sequence numbers never go backwards (%d after %d)", e.CabinetSeq, *seq)
			}
			*seq = e.CabinetSeq
		}
	}
	switch e.Kind {
	case Reserved:
		if !k.inRange(e, e.Compartment, "compartment") {
			break
		}
		slot := grow(&k.slots, e.Compartment)
		if slot.owner != "" {
			k.fail(e, "a compartment holds at most one parcel (%d already has %s)", e.Compartment, slot.owner)
			break
		}
		var rec checkedParcel
		if p := k.find(e); p != nil {
			if p.hasLoc {
				k.fail(e, "a parcel is in at most one compartment (%s already in %d)", e.Parcel, p.loc)
				break
			}
			rec = *p
		}
		rec.loc, rec.hasLoc = e.Compartment, true
		slot.owner, slot.rec = e.Parcel, rec
		k.parcels[e.Parcel] = checkedRef{comp: e.Compartment}
	case ReservationLapsed:
		k.release(e, k.find(e))
	case Cancelled:
		if p := k.find(e); p != nil && p.hasLoc {
			k.release(e, p)
		}
	case DoorCommanded:
		if _, live := k.liveComp(e.Command); live {
			k.fail(e, "command ids are unique (%s reused)", e.Command)
		}
		p := k.find(e)
		if e.Text == PurposePickup.String() {
			if p == nil || !p.hasAuthz || p.authz != e.Compartment {
				k.fail(e, "a code opens only its own compartment (pickup door %d for %s without authorisation)", e.Compartment, e.Parcel)
			}
			if p != nil {
				p.hasAuthz = false
			}
		}
		if p == nil || !p.hasLoc || p.loc != e.Compartment {
			k.fail(e, "a door is commanded only for the parcel's own compartment")
		}
		if k.inRange(e, e.Compartment, "compartment") {
			k.live = append(k.live, liveCommand{id: e.Command, comp: e.Compartment})
			k.track(e)
		}
	case DoorOpened:
		if e.Command == "" {
			k.alarmDue = true
			break
		}
		cmd := k.command(e.Compartment, e.Command)
		switch {
		case cmd == nil:
			if comp, live := k.liveComp(e.Command); live {
				k.fail(e, "a command opens only its compartment (%s is for %d)", e.Command, comp)
			} else {
				k.fail(e, "every door opening is matched by a live command (%s is not live)", e.Command)
			}
		case cmd.opened:
			k.fail(e, "a command id opens at most once (%s)", e.Command)
		case e.At > cmd.expires:
			k.fail(e, "a command opens only before it expires (%s)", e.Command)
		}
		if cmd != nil {
			cmd.opened = true
		}
	case DoorClosed, CommandFailed:
		if e.Command != "" {
			k.endCommand(e.Command)
		}
		if e.Kind == DoorClosed && e.Compartment >= 0 && int(e.Compartment) < len(k.slots) {
			// Closing a door ends every command that opened it.
			k.keepCommands(e.Compartment, func(c *checkedCommand) bool { return !c.opened })
		}
	case Deposited:
		k.Deposited++
		if p := k.parcel(e); !p.inLocker {
			p.inLocker = true
			k.inLocker++
		}
	case CodeIssued:
		p := k.parcel(e)
		p.code, p.hasCode = e.Num, true
		p.codeFails, p.codeLocked = 0, 0
	case Notified:
		bit := notifBit(e.Text)
		p := k.parcel(e)
		if bit != 0 && p.notified&bit != 0 {
			k.fail(e, "each notifiable event is notified exactly once (%s twice for %s)", e.Text, e.Parcel)
		}
		p.notified |= bit
		if bit == notifReturned {
			p.notified = 0
		}
		k.tidy(e.Parcel, p)
	case PickupAuthorized:
		p := k.parcel(e)
		if !p.hasCode {
			k.fail(e, "a code opens once (no live code for %s)", e.Parcel)
		}
		if p.code > 0 && e.At >= p.code {
			k.fail(e, "a code opens only before expiry (%s)", e.Parcel)
		}
		if e.Text == "code" && e.At < p.codeLocked {
			k.fail(e, "a locked code opens nothing (%s)", e.Parcel)
		}
		p.hasCode = false
		p.authz, p.hasAuthz = p.loc, p.hasLoc
		k.tidy(e.Parcel, p)
	case Expired:
		if p := k.find(e); p != nil {
			p.hasCode = false
			k.tidy(e.Parcel, p)
		}
	case CodeRejected:
		k.checkRejects(e)
		k.checkCodeRejects(e)
	case LockedOut:
		k.checkLockout(e)
	case PickedUp:
		k.PickedUp++
		k.leave(e)
	case Returned:
		k.Returned++
		k.leave(e)
	case ExceptionResolved:
		if e.Text == string(ResolveRemoved) {
			if p := k.find(e); p != nil && p.inLocker {
				k.Removed++
			}
			k.leave(e)
		}
	case AlarmRaised:
		if e.Text == ConditionOutOfRange {
			if k.warm == nil {
				k.warm = map[[2]int32]bool{}
			}
			k.warm[[2]int32{e.Cabinet, e.Compartment}] = true
		}
	case AlarmCleared:
		at := [2]int32{e.Cabinet, e.Compartment}
		if e.Text != ConditionOutOfRange || !k.warm[at] {
			k.fail(e, "an alarm is cleared only while raised (%s at cabinet %d compartment %d)", e.Text, e.Cabinet, e.Compartment)
		}
		delete(k.warm, at)
	}
	if k.Deposited != k.inLocker+k.PickedUp+k.Returned+k.Removed {
		k.fail(e, "parcels are conserved: deposited %d ≠ in locker %d + picked up %d + returned %d + removed %d",
			k.Deposited, k.inLocker, k.PickedUp, k.Returned, k.Removed)
	}
	if k.Recall {
		if k.recent == nil {
			k.recent = new([recentEvents]recentEvent)
		}
		k.recent[k.nRecent%recentEvents] = recentEvent{seq: e.Seq, cabinetSeq: e.CabinetSeq, at: e.At, num: e.Num, num2: e.Num2,
			parcel: e.Parcel, command: e.Command, text: e.Text, cabinet: e.Cabinet, comp: e.Compartment, kind: e.Kind}
		k.nRecent++
	}
}

// track indexes a new command by its compartment, and forgets the
// compartment's commands that expired unopened: they can no longer open a
// door (one that tried would be reported as not live), and a command whose
// opening the link lost would otherwise be remembered for ever.
func (k *Checker) track(e *Event) {
	slot := grow(&k.slots, e.Compartment)
	k.keepCommands(e.Compartment, func(c *checkedCommand) bool { return c.opened || e.At <= c.expires })
	slot.cmds = append(slot.cmds, checkedCommand{id: e.Command, expires: e.Num})
}

// command finds a live command of a compartment by id, or nil.
func (k *Checker) command(comp int32, id string) *checkedCommand {
	if comp < 0 || int(comp) >= len(k.slots) {
		return nil
	}
	cmds := k.slots[comp].cmds
	for i := range cmds {
		if cmds[i].id == id {
			return &cmds[i]
		}
	}
	return nil
}

// endCommand forgets a live command.
func (k *Checker) endCommand(id string) {
	if comp, live := k.liveComp(id); live {
		k.keepCommands(comp, func(c *checkedCommand) bool { return c.id != id })
	}
}

// liveCommand is a live command id and the compartment it is for. A site
// has a handful of commands live at once (each lives seconds, a minute at
// most), so the checker keeps them in a list and finds one by a scan, as
// the core does: no map to hash into, out of cache, for every command.
type liveCommand struct {
	id   string
	comp int32
}

// liveComp is the compartment of a live command, if it is live.
func (k *Checker) liveComp(id string) (int32, bool) {
	for i := range k.live {
		if k.live[i].id == id {
			return k.live[i].comp, true
		}
	}
	return 0, false
}

// unlive forgets a live command id.
func (k *Checker) unlive(id string) {
	for i := range k.live {
		if k.live[i].id == id {
			last := len(k.live) - 1
			k.live[i] = k.live[last]
			k.live[last] = liveCommand{}
			k.live = k.live[:last]
			return
		}
	}
}

// keepCommands keeps the compartment's live commands for which keep holds
// and forgets the others.
func (k *Checker) keepCommands(comp int32, keep func(*checkedCommand) bool) {
	cmds := k.slots[comp].cmds
	n := 0
	for i := range cmds {
		if keep(&cmds[i]) {
			cmds[n] = cmds[i]
			n++
		} else {
			k.unlive(cmds[i].id)
		}
	}
	clear(cmds[n:])
	k.slots[comp].cmds = cmds[:n]
}

// release frees the compartment the event's parcel holds (p, its record,
// is then gone); a record with more to check moves to the loose ones.
func (k *Checker) release(e *Event, p *checkedParcel) {
	if p == nil || !p.hasLoc {
		k.fail(e, "a parcel releases only a compartment it holds")
		return
	}
	slot := &k.slots[p.loc]
	p.hasLoc = false
	if p.empty() {
		delete(k.parcels, e.Parcel)
	} else {
		rec := new(checkedParcel)
		*rec = *p
		k.parcels[e.Parcel] = checkedRef{comp: -1, loose: rec}
	}
	slot.owner, slot.rec = "", checkedParcel{}
}

func (k *Checker) leave(e *Event) {
	p := k.find(e)
	if p == nil {
		if e.Kind == PickedUp {
			k.fail(e, "a picked-up parcel was notified of its arrival")
		}
		return
	}
	if e.Kind == PickedUp && p.notified&notifArrival == 0 {
		k.fail(e, "a picked-up parcel was notified of its arrival")
	}
	if p.inLocker {
		p.inLocker = false
		k.inLocker--
	}
	p.hasCode, p.hasAuthz = false, false
	if e.Kind != Returned {
		p.notified = 0
	}
	if p.hasLoc {
		k.release(e, p)
		return
	}
	k.tidy(e.Parcel, p)
}

func (k *Checker) checkRejects(e *Event) {
	times := append(k.rejects[e.Cabinet], e.At)
	keep := times[:0]
	short, long := 0, 0
	for _, t := range times {
		if e.At-t < int64(k.limits.LongWindow) {
			keep = append(keep, t)
			long++
			if e.At-t < int64(k.limits.ShortWindow) {
				short++
			}
		}
	}
	k.rejects[e.Cabinet] = keep
	if short > k.limits.ShortMax || long > k.limits.LongMax {
		k.fail(e, "keypad failures stay within limits (%d in %v, %d in %v)", short, k.limits.ShortWindow, long, k.limits.LongWindow)
	}
}

// checkCodeRejects counts a wrong guess against the live code it named.
func (k *Checker) checkCodeRejects(e *Event) {
	if e.Parcel == "" {
		return
	}
	p := k.find(e)
	if p == nil || !p.hasCode {
		k.fail(e, "a rejected guess names only a live code (%s has none)", e.Parcel)
		return
	}
	if e.At < p.codeLocked {
		return // the keypad counts it; the locked code does not
	}
	if p.codeFails++; int(p.codeFails) > k.limits.CodeMax {
		k.fail(e, "a code locks after %d wrong guesses (%s took %d)", k.limits.CodeMax, e.Parcel, p.codeFails)
	}
}

// checkLockout checks a lockout: of one code, after its limit of wrong
// guesses and for no longer than CodeLockout; of the keypad, for no longer
// than a window.
func (k *Checker) checkLockout(e *Event) {
	if e.Parcel == "" {
		if e.Num-e.At > int64(max(k.limits.ShortLockout, k.limits.LongWindow)) {
			k.fail(e, "a keypad lockout lasts at most %v (%v)", max(k.limits.ShortLockout, k.limits.LongWindow), time.Duration(e.Num-e.At))
		}
		return
	}
	p := k.find(e)
	switch {
	case p == nil || !p.hasCode:
		k.fail(e, "only a live code locks (%s has none)", e.Parcel)
		return
	case int(p.codeFails) < k.limits.CodeMax:
		k.fail(e, "a code locks only after %d wrong guesses (%s had %d)", k.limits.CodeMax, e.Parcel, p.codeFails)
	case e.Num-e.At > int64(k.limits.CodeLockout):
		k.fail(e, "a code lockout lasts at most %v (%v)", k.limits.CodeLockout, time.Duration(e.Num-e.At))
	}
	p.codeLocked, p.codeFails = e.Num, 0
}

// CheckCore checks the core's state for consistency between parcels,
// compartments, the inventory and the code index.
func CheckCore(c *Core) error {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for id, p := range c.parcels {
		if p.id != id || p.state.Terminal() {
			bad("parcel %s: indexed as %s in state %v", p.id, id, p.state)
		}
		if p.comp < 0 {
			if p.codeLive {
				bad("parcel %s has a live code and no compartment", p.id) // a code names its compartment
			}
			if p.state != StateAnnounced && !(p.state == StateException && p.prev == StateAnnounced) {
				bad("parcel %s in %v has no compartment", p.id, p.state)
			}
			continue
		}
		if c.comps[p.comp].parcel != p {
			bad("parcel %s: compartment %d does not point back", p.id, p.comp)
		}
		want := allocator.Reserved
		if p.state.InLocker() || (p.state == StateException && p.prev.InLocker()) {
			want = allocator.Occupied
		}
		if got := c.inv.Holding(p.comp); got != want && !(p.state == StateException) {
			bad("parcel %s in %v: compartment %d is %v, want %v", p.id, p.state, p.comp, got, want)
		}
		if p.codeLive && p.state != StateAwaitingPickup && p.state != StateException {
			bad("parcel %s in %v has a live code", p.id, p.state)
		}
	}
	held := 0
	for i, cp := range c.comps {
		if cp.parcel != nil {
			held++
			if c.parcels[cp.parcel.id] != cp.parcel {
				bad("compartment %d holds parcel %s that is not active", i, cp.parcel.id)
			}
		} else if s := c.inv.Holding(allocator.CompartmentID(i)); s == allocator.Reserved || s == allocator.Occupied {
			bad("compartment %d is %v but holds no parcel", i, s)
		}
		if cp.cmd != nil && c.liveCommand(cp.cmd.cab, cp.cmd.id) != cp.cmd {
			bad("compartment %d: command %s is not live", i, cp.cmd.id)
		}
	}
	for ci := range c.cabinets {
		for _, cmd := range c.cabinets[ci].live {
			switch {
			case cmd.done:
				bad("cabinet %d: ended command %s among the live", ci, cmd.id)
			case int(cmd.cab) != ci:
				bad("cabinet %d: command %s of cabinet %d among its live", ci, cmd.id, cmd.cab)
			case c.comps[cmd.comp].cmd != cmd:
				bad("cabinet %d: live command %s is not its compartment's (%d)", ci, cmd.id, cmd.comp)
			}
		}
	}
	checkRecycling(c, bad)
	if len(problems) > 0 {
		return fmt.Errorf("core state inconsistent:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// InLocker is the number of deposited parcels still in a compartment, as
// the checker counted from the events.
func (k *Checker) InLocker() int { return k.inLocker }

// checkRecycling checks what reusing commands rests on: every deadline
// that names a command is counted in its queued, and a freed or spare
// command has ended and is named by nothing (no deadline, live command or
// compartment).
func checkRecycling(c *Core, bad func(string, ...any)) {
	named := map[*command]int32{}
	count := func(d *deadline) {
		if d.kind == dlCommand {
			named[d.cmd]++
		}
	}
	q := &c.deadlines
	for i := range q.fifos {
		f := &q.fifos[i]
		for j := range f.len() {
			count(f.at(j))
		}
	}
	for i := range q.heap.items {
		count(&q.heap.items[i])
	}
	for cmd, n := range named {
		if cmd.queued != n {
			bad("command %s: %d deadlines name it, queued says %d", cmd.id, n, cmd.queued)
		}
	}
	free := map[*command]bool{}
	for _, list := range [][]*command{c.freed, c.spare} {
		for _, cmd := range list {
			switch {
			case free[cmd]:
				bad("command %s freed twice", cmd.id)
			case !cmd.done:
				bad("command %s freed while live", cmd.id)
			case named[cmd] > 0:
				bad("command %s freed while a deadline names it", cmd.id)
			case c.liveCommand(cmd.cab, cmd.id) == cmd:
				bad("command %s freed while among the live commands", cmd.id)
			}
			free[cmd] = true
		}
	}
	for i := range c.comps {
		if cmd := c.comps[i].cmd; cmd != nil && free[cmd] {
			bad("compartment %d names freed command %s", i, cmd.id)
		}
	}
}
