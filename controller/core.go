package controller

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/internal/strarena"
	"github.com/lockertwin/lockertwin/twin"
)

// State is a parcel's lifecycle state.
type State uint8

const (
	StateAnnounced      State = iota + 1 // pre-advised, no compartment held
	StateReserved                        // a compartment is held until the reservation deadline
	StateDepositOpening                  // door commanded for the courier
	StateDepositOpen                     // door open for the courier
	StateAwaitingPickup                  // deposited, recipient notified with a code
	StatePickupOpening                   // code accepted, door commanded
	StatePickupOpen                      // door open for the recipient
	StatePickedUp                        // terminal
	StateAwaitingReturn                  // expired, waiting for a courier to take it back
	StateReturnOpening                   // door commanded for the returning courier
	StateReturnOpen                      // door open for the returning courier
	StateReturned                        // terminal
	StateRefused                         // terminal: no capacity
	StateException                       // needs an operator; never silently lost
	StateRemoved                         // terminal: taken out by staff after an exception
	StateCancelled                       // terminal: withdrawn before it was deposited
)

var stateNames = [...]string{"", "announced", "reserved", "deposit_opening", "deposit_open",
	"awaiting_pickup", "pickup_opening", "pickup_open", "picked_up", "awaiting_return",
	"return_opening", "return_open", "returned", "refused", "exception", "removed", "cancelled"}

func (s State) String() string {
	if int(s) < len(stateNames) && s > 0 {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Terminal reports whether a parcel in state s is done.
func (s State) Terminal() bool {
	return s == StatePickedUp || s == StateReturned || s == StateRefused || s == StateRemoved || s == StateCancelled
}

// Reofferable reports whether a parcel that ended in state s may be
// announced again under its id: one refused for want of room, or withdrawn
// before its deposit, never entered the locker, and its courier brings it
// back later (the next wave, the next day) under the same tracking number.
// Its new announcement starts it afresh; its log keeps both histories.
func (s State) Reofferable() bool { return s == StateRefused || s == StateCancelled }

// InLocker reports whether a parcel in state s is physically in a compartment.
func (s State) InLocker() bool {
	switch s {
	case StateAwaitingPickup, StatePickupOpening, StatePickupOpen, StateAwaitingReturn,
		StateReturnOpening, StateReturnOpen:
		return true
	}
	return false
}

// Purpose is why a door is commanded open.
type Purpose uint8

const (
	PurposeDeposit Purpose = iota + 1
	PurposePickup
	PurposeReturn
)

var purposeNames = [...]string{"", "deposit", "pickup", "return"}

func (p Purpose) String() string { return purposeNames[p] }

func parsePurpose(s string) Purpose {
	for i, n := range purposeNames {
		if n == s && i > 0 {
			return Purpose(i)
		}
	}
	return 0
}

// NotificationKind is what a recipient is told.
type NotificationKind string

const (
	NotifyArrival      NotificationKind = "arrival"       // with the code
	NotifyReminder     NotificationKind = "reminder"      // still waiting
	NotifyExpiry       NotificationKind = "expiry"        // not collected; going back
	NotifyCodeReissued NotificationKind = "code_reissued" // a new code: a pickup was aborted, or an operator reissued it
	NotifyReturned     NotificationKind = "returned"      // taken back by the courier
)

// Clock is the core's only source of time (the seam shared with the virtual
// cabinet): the service passes the wall clock, the simulator its virtual
// clock, tests a twin.ManualClock. The core is never called concurrently.
type Clock = twin.Clock

// Timer is a pending Clock.AfterFunc.
type Timer = twin.Timer

// Notification is a message to a parcel's recipient.
type Notification struct {
	Kind        NotificationKind
	Parcel      string
	Recipient   string
	Site        string
	Cabinet     string
	Compartment int    // slot in the cabinet
	Code        string // arrival and code_reissued only: the one time the plain code leaves the core
	Deadline    time.Time
	At          time.Time
	// Seq is the sequence number of its Notified event in the site's log:
	// with the site, it names the notification (a webhook's id).
	Seq uint64
}

// Outputs receives what the core wants done outside it. The service
// publishes commands over MQTT (after the causing event is durable) and
// sends webhooks; the simulator delivers commands over the in-process link.
type Outputs interface {
	Send(cabinet string, cmd twin.Command)
	Notify(n Notification)
}

// Hook observes the core's domain events after they are logged and applied.
// OnLogged only notifies (mochi's past tense): the invariant checker, KPIs,
// the recorder and live views attach this way. e is valid only during the
// call (the core reuses it): copy what you keep.
type Hook interface {
	OnLogged(c *Core, e *Event)
}

// Settings are the controller's policy, from a scenario or the service config.
type Settings struct {
	PickupWindow        time.Duration // ≤ 0: parcels never expire
	ChilledPickupWindow time.Duration // 0: as PickupWindow; < 0: never
	ReminderAfter       time.Duration // ≤ 0: no reminder
	ReservationTimeout  time.Duration // ≤ 0: reservations never lapse
	CommandTTL          time.Duration // a door command's expiry; default 60 s
	AckTimeout          time.Duration // resend an unacknowledged command after; default 15 s
	MaxAttempts         int           // sends of one command before it fails; default 3
	DoorOpenLimit       time.Duration // alarm if a door stays open longer; default 120 s
	ReorderWait         time.Duration // how long an event waits for a missing earlier one; default 2 s
	PinMaxAge           time.Duration // a keypad code typed longer ago than this is not acted on; default 5 min
	Limits              CodeLimits    // zero: DefaultCodeLimits (see CodeLimits for each field)
}

func (s *Settings) defaults() {
	if s.CommandTTL <= 0 {
		s.CommandTTL = 60 * time.Second
	}
	if s.AckTimeout <= 0 {
		s.AckTimeout = 15 * time.Second
	}
	if s.MaxAttempts <= 0 {
		s.MaxAttempts = 3
	}
	if s.DoorOpenLimit <= 0 {
		s.DoorOpenLimit = 120 * time.Second
	}
	if s.ReorderWait <= 0 {
		s.ReorderWait = 2 * time.Second
	}
	if s.PinMaxAge <= 0 {
		s.PinMaxAge = 5 * time.Minute
	}
	s.Limits = s.Limits.withDefaults()
	if s.ChilledPickupWindow == 0 {
		s.ChilledPickupWindow = s.PickupWindow
	}
}

// Config assembles a core for one site.
type Config struct {
	Site      string
	Inventory *allocator.Inventory // the site's compartments; the core owns it from now on
	Policy    allocator.Policy
	Settings  Settings
	Clock     Clock
	Rand      Rand
	CodeKey   []byte // HMAC key for codes and QR payloads, ≥ 16 bytes
	Log       Log
	Out       Outputs
	// RetainFinished keeps terminal parcels, so a re-announced finished id
	// is refused (but for a refused or cancelled one: State.Reofferable)
	// and its history stays queryable. The service sets it; a
	// simulation of millions of parcels does not.
	RetainFinished bool
	// Unsealed numbers events but does not hash-chain them (Prev and Hash
	// stay zero). A simulation sets it: its log keeps no events (HeadLog),
	// and a chain over entries nobody stores seals nothing, while hashing
	// every state change costs about a third of a lifecycle. The service
	// never sets it, and Verify and Rebuild reject an unsealed log.
	Unsealed bool
}

type cabinet struct {
	shadow  twin.Shadow
	name    string
	lastSeq uint64   // the last event handled, in order
	ids     idWindow // the ids of the last events handled
	// loggedSeq is the last sequence number a logged event carries: what
	// survives a restart. Events that change nothing (a heartbeat) are not
	// logged, so a rebuilt core knows lastSeq only as this lower bound and
	// resyncs on the cabinet's next event instead of calling it a gap.
	loggedSeq   uint64
	resync      bool
	fails       []int64 // failure times within the long window, oldest first
	lockedUntil int64
	held        map[uint64]heldEvent // events waiting for an earlier one
	flush       Timer
	syncAt      int64 // when the core last asked for the cabinet's state, 0 never
	warm        bool  // temp_out_of_range raised for the cabinet (no compartment named) and not yet cleared
	// live are the cabinet's live door commands, in no order: a handful at
	// most (one per compartment at the very most), so a scan finds one by
	// id sooner than a map would.
	live []*command
}

type compartment struct {
	parcel   *parcel
	cmd      *command
	doorOpen bool
	openedAt int64
	openSeq  uint64 // the cabinet's sequence number of the opening
	occupied bool
	alarmed  bool // door-left-open alarm raised for this opening
	warm     bool // temp_out_of_range raised and not yet cleared
}

type parcel struct {
	// What a deadline's check reads (stale) comes first, in 30 bytes: the
	// parcel is read cold when its reminder or expiry falls due, hours
	// after anything else touched it.
	reservedUntil int64
	deadline      int64
	reminderAt    int64
	state         State
	prev          State // before an exception
	chilled       bool
	warmed        bool // in the locker during a temperature excursion (see exposeParcels)
	reminded      bool
	codeLive      bool
	done          bool  // finished: no longer among the active parcels
	codeFails     uint8 // wrong guesses that named the live code (see CodeLimits.CodeMax)
	codeGen       uint32

	cabinet int32
	comp    allocator.CompartmentID
	dls     [3]deadlineRef // its latest reservation, reminder and expiry deadlines

	id        string
	spec      *ParcelSpec // its announcement's, never changed
	req       allocator.Request
	recipient string
	exception string

	digest      [32]byte
	announcedAt int64
	depositedAt int64
	codeLocked  int64 // the live code is refused until then (CodeLimits.CodeLockout)
}

// announcement is a parcel and its spec in one allocation.
type announcement struct {
	p    parcel
	spec ParcelSpec
}

// command is a live door command. 80 bytes: two of them are made for
// every parcel (and recycled: see newCommand).
type command struct {
	id       string
	cab      int32
	comp     allocator.CompartmentID
	parcel   *parcel
	issued   int64
	expires  int64
	retryAt  int64
	openedAt int64 // when its door opened (if opened)
	dlAt     int64 // its deadline's time (see dlCommand)
	attempts int32
	queued   int32 // deadlines that name it (see newCommand)
	purpose  Purpose
	acked    bool
	opened   bool
	done     bool // ended: no longer among the live commands
}

// Core is the controller of one site: a synchronous state machine. Inputs
// are the API methods, cabinet events and its clock's timer; outputs go to
// Outputs and, as domain events, to the Log and hooks. It starts no
// goroutines and takes no locks: the caller serialises calls.
type Core struct {
	// What every event touches comes first, the large arrays last: a site's
	// core is read once per event, each time from far away in memory.
	hint       *parcel      // the active parcel an event was last made for: apply finds it without a lookup
	announcing *parcel      // made by Announce for the event being emitted (see announcement)
	nanos      func() int64 // the clock, in Unix ns (twin.NanoReader)
	nowBase    int64        // a counter clock's time is nowBase + *nowAt (twin.CounterClock)
	nowAt      *int64
	chain      *Chain
	hooks      []Hook
	depth      int // nested emits (scratch)
	timers     [2]coreTimer
	rearmDue   bool // a deadline before the earliest set timer (or with none set) was scheduled since rearm
	replaying  bool
	waking     bool
	cabinets   []cabinet
	comps      []compartment
	parcels    map[string]*parcel
	cmdSeq     uint64
	inv        *allocator.Inventory
	cat        *allocator.Catalog
	codes      *coder

	byName     map[string]int32
	finished   map[string]State
	alarms     map[string]int
	strs       strarena.Arena // command ids
	cmdIDs     twin.IDCounter
	freed      []*command // ended commands no deadline names (see newCommand)
	spare      []*command // freed ones, ready for reuse
	exceptions int        // parcels in StateException

	cfg       Config
	set       Settings
	deadlines deadlineQueue
	// scratch holds the events being emitted, one per nesting depth, so
	// that handing &event to the log and hooks does not allocate; hot
	// callers build their event in it (newEvent), so emit copies nothing.
	scratch [4]Event
}

// New builds a core. The inventory must be fresh (every compartment free and
// in service) unless the core is being rebuilt from a log.
func New(cfg Config) (*Core, error) {
	switch {
	case cfg.Site == "":
		return nil, fmt.Errorf("controller: config needs a site")
	case cfg.Inventory == nil || cfg.Policy == nil:
		return nil, fmt.Errorf("controller: config needs an inventory and a policy")
	case cfg.Clock == nil || cfg.Rand == nil || cfg.Log == nil || cfg.Out == nil:
		return nil, fmt.Errorf("controller: config needs a clock, randomness, a log and outputs")
	case len(cfg.CodeKey) < 16:
		return nil, fmt.Errorf("controller: code key must be at least 16 bytes")
	}
	c := &Core{
		cfg: cfg, set: cfg.Settings, inv: cfg.Inventory, cat: cfg.Inventory.Catalog(),
		codes:   newCoder(cfg.CodeKey),
		byName:  map[string]int32{},
		comps:   make([]compartment, cfg.Inventory.Len()),
		parcels: map[string]*parcel{},
		chain:   NewChain(),
		alarms:  map[string]int{},
	}
	c.set.defaults()
	if cfg.RetainFinished {
		c.finished = map[string]State{}
	}
	for _, cb := range cfg.Inventory.Cabinets() {
		if _, dup := c.byName[cb.Name]; dup || !twin.ValidID(cb.Name) {
			return nil, fmt.Errorf("controller: cabinet name %q is invalid or repeated", cb.Name)
		}
		if first, end := cb.Compartments(); end-first > twin.MaxCompartments {
			// The protocol numbers compartments up to MaxCompartments, and
			// a pickup code names one of that many (see codes.go).
			return nil, fmt.Errorf("controller: cabinet %q has %d compartments, at most %d", cb.Name, end-first, twin.MaxCompartments)
		}
		c.byName[cb.Name] = int32(len(c.cabinets))
		c.cabinets = append(c.cabinets, cabinet{name: cb.Name, shadow: twin.Shadow{Cabinet: cb.Name}})
	}
	c.timers[0].wake = func() { c.fired(0) }
	c.timers[1].wake = func() { c.fired(1) }
	c.nanos = twin.NanoReader(cfg.Clock)
	if cc, ok := cfg.Clock.(twin.CounterClock); ok {
		c.nowBase, c.nowAt = cc.Counter()
	}
	return c, nil
}

// cabinetIndex finds a cabinet by name: most sites have a few, which a
// scan finds faster than the map.
func (c *Core) cabinetIndex(name string) (int32, bool) {
	if len(c.cabinets) <= 8 {
		for i := range c.cabinets {
			if c.cabinets[i].name == name {
				return int32(i), true
			}
		}
		return -1, false
	}
	i, ok := c.byName[name]
	return i, ok
}

// Site returns the core's site id.
func (c *Core) Site() string { return c.cfg.Site }

// Inventory returns the site's inventory (read it; do not change it).
func (c *Core) Inventory() *allocator.Inventory { return c.inv }

// AddHook attaches an observer of domain events.
func (c *Core) AddHook(h Hook) { c.hooks = append(c.hooks, h) }

// ChainHead returns the hash and sequence number of the last event.
func (c *Core) ChainHead() ([32]byte, uint64) { return c.chain.Head() }

// Alarms returns how many alarms of each kind were raised.
func (c *Core) Alarms() map[string]int {
	out := make(map[string]int, len(c.alarms))
	for k, v := range c.alarms {
		out[k] = v
	}
	return out
}

func (c *Core) now() int64 {
	if c.nowAt != nil {
		return c.nowBase + *c.nowAt
	}
	return c.nanos()
}

// emit logs an event and applies it. Nothing changes if the log refuses it.
func (c *Core) emit(ev *Event) error {
	e := ev
	if c.depth >= len(c.scratch) {
		e = new(Event)
		*e = *ev
	} else if s := &c.scratch[c.depth]; ev != s {
		*s = *ev
		e = s
	}
	c.depth++
	err := c.emitAt(e)
	c.depth--
	ev.Seq = e.Seq // the caller may want to name what it logged
	return err
}

// newEvent returns a blank event of kind k for the cabinet and compartment
// indexes (-1: none) to fill in and emit: the scratch event the next emit
// at this depth logs, so that emit copies nothing. Nothing may emit between
// the two calls.
func (c *Core) newEvent(k Kind, cab, comp int32) *Event {
	if c.depth >= len(c.scratch) {
		return &Event{Kind: k, Cabinet: cab, Compartment: comp}
	}
	e := &c.scratch[c.depth]
	*e = Event{Kind: k, Cabinet: cab, Compartment: comp}
	return e
}

func (c *Core) emitAt(e *Event) error {
	e.At = c.now()
	if c.cfg.Unsealed {
		c.chain.seq++
		e.Seq = c.chain.seq
	} else {
		c.chain.Link(e)
	}
	if err := c.cfg.Log.Append(e); err != nil {
		c.chain.seq-- // the event is not in the log: the chain stays as it was
		if !c.cfg.Unsealed {
			c.chain.head = e.Prev
		}
		return fmt.Errorf("%w: %v", ErrLogFailed, err)
	}
	c.apply(e)
	for _, h := range c.hooks {
		h.OnLogged(c, e)
	}
	if c.rearmDue {
		c.rearm()
	}
	return nil
}

// parcelEvent returns a new event (see newEvent) that names p and where it is.
func (c *Core) parcelEvent(k Kind, p *parcel) *Event {
	c.hint = p
	e := c.newEvent(k, p.cabinet, int32(p.comp))
	e.Parcel = p.id
	return e
}

// emitParcel emits an event that names only its parcel and where it is.
func (c *Core) emitParcel(k Kind, p *parcel) error { return c.emit(c.parcelEvent(k, p)) }

// noRef returns a new event (see newEvent) that names no cabinet or compartment.
func (c *Core) noRef(k Kind) *Event { return c.newEvent(k, -1, -1) }

// ---- parcels: the API ---------------------------------------------------

// Reservation is where an announced parcel will go.
type Reservation struct {
	Parcel      string
	Cabinet     string
	Compartment int // slot in the cabinet
	Class       string
	Until       time.Time // zero: no deadline
}

func validParcelID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.') {
			return false
		}
	}
	return true
}

// resolve turns a ParcelSpec into an allocation request.
func (c *Core) resolve(spec ParcelSpec) (allocator.Request, error) {
	var req allocator.Request
	hasDims := spec.LengthMm != 0 || spec.WidthMm != 0 || spec.HeightMm != 0
	switch {
	case spec.Class != "" && hasDims:
		return req, fmt.Errorf("%w: give a class or dimensions, not both", ErrBadRequest)
	case spec.Class != "":
		id, ok := c.cat.Lookup(spec.Class)
		if !ok {
			return req, fmt.Errorf("%w: unknown compartment class %q", ErrBadRequest, spec.Class)
		}
		req.Class = id
		req.Zone = c.cat.Class(id).Zone
	case hasDims:
		if spec.LengthMm <= 0 || spec.WidthMm <= 0 || spec.HeightMm <= 0 || spec.LengthMm > 10_000 || spec.WidthMm > 10_000 || spec.HeightMm > 10_000 {
			return req, fmt.Errorf("%w: dimensions must be between 1 and 10000 mm", ErrBadRequest)
		}
		z, err := allocator.ParseZone(spec.Zone)
		if err != nil {
			return req, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		req.Dims = allocator.Dims{LengthMm: spec.LengthMm, WidthMm: spec.WidthMm, HeightMm: spec.HeightMm}
		req.Zone = z
	default:
		return req, fmt.Errorf("%w: a parcel needs a class or dimensions", ErrBadRequest)
	}
	if spec.MaxTopMm < 0 {
		return req, fmt.Errorf("%w: max_top_mm cannot be negative", ErrBadRequest)
	}
	req.Hints.MaxTopMm = spec.MaxTopMm
	if spec.PreferCabinet != "" {
		cab, ok := c.cabinetIndex(spec.PreferCabinet)
		if !ok {
			return req, fmt.Errorf("%w: %q", ErrUnknownCabinet, spec.PreferCabinet)
		}
		req.Hints.PreferCabinet, req.Hints.Cabinet = true, allocator.CabinetID(cab)
	}
	return req, nil
}

// Announce registers a parcel on its way and reserves a compartment for it.
// Announcing the same parcel again with the same details returns its current
// reservation (idempotent); with other details it is ErrDuplicateParcel,
// as is the id of a parcel that ended, but for one refused or cancelled:
// that is offered afresh (State.Reofferable).
// When nothing fits it returns a *RefusedError and the parcel is refused.
func (c *Core) Announce(id string, spec ParcelSpec, recipient string) (Reservation, error) {
	if !validParcelID(id) {
		return Reservation{}, fmt.Errorf("%w: parcel id must be 1-64 characters of [A-Za-z0-9._-]", ErrBadRequest)
	}
	if len(recipient) > 256 {
		return Reservation{}, fmt.Errorf("%w: recipient longer than 256 bytes", ErrBadRequest)
	}
	if p, ok := c.parcels[id]; ok {
		if *p.spec != spec || p.recipient != recipient {
			return Reservation{}, fmt.Errorf("%w: %s", ErrDuplicateParcel, id)
		}
		return c.reservation(p), nil
	}
	if st, done := c.finished[id]; done && !st.Reofferable() {
		return Reservation{}, fmt.Errorf("%w: %s already %v", ErrDuplicateParcel, id, st)
	}
	req, err := c.resolve(spec)
	if err != nil {
		return Reservation{}, err
	}
	// The parcel and its spec are one allocation, made here so that the
	// logged event can point at the spec the parcel keeps; apply takes
	// them (and the resolved request) instead of making its own.
	a := &announcement{spec: spec}
	a.p.spec, a.p.req = &a.spec, req
	c.announcing = &a.p
	e := c.noRef(Announced)
	e.Parcel, e.Spec, e.Text = id, &a.spec, recipient
	err = c.emit(e)
	c.announcing = nil
	if err != nil {
		return Reservation{}, err
	}
	p := &a.p // apply took it
	if err := c.reserve(p); err != nil {
		return Reservation{}, err
	}
	return c.reservation(p), nil
}

func (c *Core) reservation(p *parcel) Reservation {
	r := Reservation{Parcel: p.id}
	if p.comp >= 0 {
		comp, _ := c.inv.Compartment(p.comp)
		r.Cabinet = c.cabinets[comp.Cabinet].name
		r.Compartment = comp.Slot
		r.Class = c.cat.Class(comp.Class).Name
	}
	if p.reservedUntil > 0 && p.state == StateReserved {
		r.Until = unixTime(p.reservedUntil)
	}
	return r
}

func (c *Core) reserve(p *parcel) error {
	id, err := c.cfg.Policy.Choose(c.inv, p.req)
	if err != nil {
		e := c.noRef(Refused)
		e.Parcel, e.Text = p.id, allocator.ReasonOf(err).String()
		if lerr := c.emit(e); lerr != nil {
			return lerr
		}
		return &RefusedError{Parcel: p.id, Reason: allocator.ReasonOf(err)}
	}
	comp, _ := c.inv.Compartment(id)
	e := c.newEvent(Reserved, int32(comp.Cabinet), int32(id))
	e.Parcel = p.id
	if c.set.ReservationTimeout > 0 {
		e.Num = c.now() + int64(c.set.ReservationTimeout)
	}
	return c.emit(e)
}

func (c *Core) parcel(id, op string, want ...State) (*parcel, error) {
	p, ok := c.parcels[id]
	if !ok {
		if st, done := c.finished[id]; done {
			return nil, &StateError{Parcel: id, State: st, Op: op}
		}
		return nil, fmt.Errorf("%w: %s", ErrUnknownParcel, id)
	}
	for _, s := range want {
		if p.state == s {
			return p, nil
		}
	}
	return nil, &StateError{Parcel: id, State: p.state, Op: op}
}

// DoorOpening says which door the controller commanded open.
type DoorOpening struct {
	Parcel      string
	Cabinet     string
	Compartment int
	Command     string
}

// StartDeposit opens the reserved door for the courier at the cabinet. A
// parcel whose reservation lapsed, or whose compartment is out of service,
// gets a new one first (or is refused).
// The deposit completes when the door closes with the sensor reading occupied.
func (c *Core) StartDeposit(id string) (DoorOpening, error) {
	p, err := c.parcel(id, "deposit", StateReserved, StateAnnounced)
	if err != nil {
		return DoorOpening{}, err
	}
	if p.state == StateReserved && c.inv.Status(p.comp) == allocator.OutOfService {
		// Its door jammed (or was taken out of service) since it was
		// reserved, and the operator resumed the parcel without a repair:
		// a courier sent there could not open it. The reservation moves.
		e := c.parcelEvent(ReservationLapsed, p)
		e.Text = LapsedOutOfService
		if err := c.emit(e); err != nil {
			return DoorOpening{}, err
		}
	}
	if p.state == StateAnnounced {
		if err := c.reserve(p); err != nil {
			return DoorOpening{}, err
		}
	}
	return c.openDoor(p, PurposeDeposit)
}

// CollectReturn opens an expired parcel's door for the courier taking it back.
func (c *Core) CollectReturn(id string) (DoorOpening, error) {
	p, err := c.parcel(id, "collect return of", StateAwaitingReturn)
	if err != nil {
		return DoorOpening{}, err
	}
	return c.openDoor(p, PurposeReturn)
}

func (c *Core) openDoor(p *parcel, purpose Purpose) (DoorOpening, error) {
	if c.comps[p.comp].cmd != nil {
		return DoorOpening{}, fmt.Errorf("%w: parcel %s", ErrCompartmentBusy, p.id)
	}
	comp, _ := c.inv.Compartment(p.comp)
	cab := &c.cabinets[comp.Cabinet]
	cmdID := c.nextCommandID()
	now := c.now()
	e := c.parcelEvent(DoorCommanded, p)
	e.Command, e.Num, e.Text = cmdID, now+int64(c.set.CommandTTL), purpose.String()
	if err := c.emit(e); err != nil {
		return DoorOpening{}, err
	}
	c.send(cab.name, c.comps[p.comp].cmd, comp.Slot) // the command just applied
	return DoorOpening{Parcel: p.id, Cabinet: cab.name, Compartment: comp.Slot, Command: cmdID}, nil
}

// nextCommandID is the id of the next command: the site's id, "-cmd-" and
// cmdSeq+1 (twin.AppendID's rule).
func (c *Core) nextCommandID() string {
	return c.strs.String(c.cmdIDs.ID(c.cfg.Site, "-cmd-", c.cmdSeq+1))
}

func (c *Core) send(cabName string, cmd *command, slot int) {
	c.cfg.Out.Send(cabName, twin.Command{
		V: twin.ProtocolVersion, ID: cmd.id, Type: twin.CmdOpen, Compartment: slot,
		IssuedAt: unixTime(cmd.issued), ExpiresAt: unixTime(cmd.expires),
	})
}

// PickupResult says which door opened for a recipient.
type PickupResult struct {
	Parcel      string
	Cabinet     string
	Compartment int
}

// Pickup checks a code typed at a cabinet and, if it is right, opens the
// parcel's door. Wrong codes count toward the cabinet's lockout.
func (c *Core) Pickup(cabName, code string) (PickupResult, error) {
	ci, ok := c.cabinetIndex(cabName)
	if !ok {
		return PickupResult{}, fmt.Errorf("%w: %q", ErrUnknownCabinet, cabName)
	}
	cab := &c.cabinets[ci]
	now := c.now()
	if now < cab.lockedUntil {
		return PickupResult{}, &LockoutError{Cabinet: cab.name, Until: unixTime(cab.lockedUntil)}
	}
	norm, ok := normalizeCode(code)
	if !ok {
		return PickupResult{}, c.reject(ci, nil)
	}
	// Hashed whether or not the compartment holds a parcel, so that the
	// time a wrong code takes does not tell which compartments are full.
	p := c.codeHolder(ci, codeSlot(norm))
	var holder string
	if p != nil {
		holder = p.id
	}
	if sum := c.codes.bind(cab.name, holder, norm); p == nil || !equalDigest(&p.digest, &sum) {
		return PickupResult{}, c.reject(ci, p)
	}
	if now < p.codeLocked {
		return PickupResult{}, &LockoutError{Cabinet: cab.name, Parcel: p.id, Until: unixTime(p.codeLocked)}
	}
	if p.state != StateAwaitingPickup {
		return PickupResult{}, &StateError{Parcel: p.id, State: p.state, Op: "pick up"}
	}
	if p.deadline > 0 && now >= p.deadline {
		return PickupResult{}, fmt.Errorf("%w: parcel %s", ErrCodeExpired, p.id)
	}
	return c.authorize(p, "code")
}

// codeHolder is the parcel with a live code in the compartment at slot of
// cabinet ci, or nil.
func (c *Core) codeHolder(ci int32, slot int) *parcel {
	id, ok := c.inv.CompartmentAt(allocator.CabinetID(ci), slot)
	if !ok {
		return nil
	}
	if p := c.comps[id].parcel; p != nil && p.codeLive {
		return p
	}
	return nil
}

// IssueQR returns a signed QR payload for a parcel awaiting pickup (for the
// recipient's app). It opens the door once, like the code it stands beside.
func (c *Core) IssueQR(id string) (string, error) {
	p, err := c.parcel(id, "issue a QR code for", StateAwaitingPickup)
	if err != nil {
		return "", err
	}
	comp, _ := c.inv.Compartment(p.comp)
	exp := p.deadline
	if exp == 0 {
		exp = c.now() + int64(24*time.Hour)
	}
	return c.codes.signQR(p.id, c.cabinets[comp.Cabinet].name, comp.Slot, exp, p.codeGen), nil
}

// ReissueCode gives a parcel awaiting pickup a new code and notifies the
// recipient with it (code_reissued): for a recipient whose arrival
// notification never came, or who lost it. The core keeps only a code's
// HMAC, so the old code cannot be sent again; it stops working, as does
// any QR code issued for the parcel, and the new code starts with no
// failures counted against it (an operator who reissues it has decided
// whose it is). The pickup deadline stays, and a reminder not yet sent
// still goes when it was due.
func (c *Core) ReissueCode(id string) error {
	p, err := c.parcel(id, "reissue the code of", StateAwaitingPickup)
	if err != nil {
		return err
	}
	return c.issueCode(p, NotifyCodeReissued)
}

// PickupQR checks a QR payload presented at a cabinet and opens its door.
// A QR carries a 128-bit MAC, so guessing one is hopeless: QR pickups do not
// count toward the keypad's lockout and still work while it is locked, so an
// attacker hammering the keypad cannot lock recipients out.
func (c *Core) PickupQR(cabName, payload string) (PickupResult, error) {
	if _, ok := c.cabinetIndex(cabName); !ok {
		return PickupResult{}, fmt.Errorf("%w: %q", ErrUnknownCabinet, cabName)
	}
	claims, ok := c.codes.verifyQR(payload)
	if !ok || claims.cabinet != cabName {
		return PickupResult{}, ErrBadQR
	}
	p := c.parcels[claims.parcel]
	if p == nil || p.state != StateAwaitingPickup || p.codeGen != claims.gen || c.now() >= claims.expiry {
		return PickupResult{}, ErrBadQR
	}
	if comp, _ := c.inv.Compartment(p.comp); comp.Slot != claims.slot {
		return PickupResult{}, ErrBadQR
	}
	return c.authorize(p, "qr")
}

func (c *Core) authorize(p *parcel, how string) (PickupResult, error) {
	e := c.parcelEvent(PickupAuthorized, p)
	e.Text = how
	if err := c.emit(e); err != nil {
		return PickupResult{}, err
	}
	d, err := c.openDoor(p, PurposePickup)
	if err != nil {
		return PickupResult{}, err
	}
	return PickupResult{Parcel: p.id, Cabinet: d.Cabinet, Compartment: d.Compartment}, nil
}

// reject counts a failed code at a cabinet, and against p's live code if the
// code named p's compartment (p not nil), and locks the code or the keypad
// when a limit is reached. It returns ErrWrongCode, or a *LockoutError if
// this failure locked the keypad: a code that locks is not told apart from
// a wrong code for an empty compartment (see the package doc).
func (c *Core) reject(ci int32, p *parcel) error {
	cab := &c.cabinets[ci]
	now := c.now()
	lim := c.set.Limits
	short, long := 1, 1
	for _, t := range cab.fails {
		if now-t < int64(lim.LongWindow) {
			long++
			if now-t < int64(lim.ShortWindow) {
				short++
			}
		}
	}
	var e *Event
	if p != nil {
		e = c.parcelEvent(CodeRejected, p)
	} else {
		e = c.noRef(CodeRejected)
	}
	e.Cabinet, e.Num, e.Num2 = ci, int64(short), int64(long)
	if err := c.emit(e); err != nil {
		return err
	}
	if p != nil && int(p.codeFails) >= lim.CodeMax { // apply counted this one
		lo := c.parcelEvent(LockedOut, p)
		lo.Num = now + int64(lim.CodeLockout)
		if err := c.emit(lo); err != nil {
			return err
		}
		c.alarm("code_lockout", ci, int32(p.comp), "")
	}
	var until int64
	switch {
	case long >= lim.LongMax:
		// Locked until the oldest failure in the window leaves it: no 24 h
		// window ever holds more than LongMax failures.
		until = cab.fails[0] + int64(lim.LongWindow)
	case short >= lim.ShortMax:
		until = now + int64(lim.ShortLockout)
	default:
		return ErrWrongCode
	}
	lo := c.noRef(LockedOut)
	lo.Cabinet, lo.Num = ci, until
	if err := c.emit(lo); err != nil {
		return err
	}
	c.alarm("keypad_lockout", ci, -1, "")
	return &LockoutError{Cabinet: cab.name, Until: unixTime(until)}
}

func (c *Core) alarm(kind string, cab int32, comp int32, cmd string) {
	e := c.newEvent(AlarmRaised, cab, comp)
	e.Text, e.Command = kind, cmd
	_ = c.emit(e) // an alarm that cannot be logged is still counted by the store's own alarm
}

// Resolution is an operator's decision on a parcel in exception.
type Resolution string

const (
	// ResolveResume: the fault is cleared; the parcel carries on from where it was.
	ResolveResume Resolution = "resume"
	// ResolveRemoved: staff took the parcel out by hand; the compartment is empty.
	ResolveRemoved Resolution = "removed"
)

// ResolveException records an operator's decision on a parcel in exception.
func (c *Core) ResolveException(id string, r Resolution) error {
	p, err := c.parcel(id, "resolve", StateException)
	if err != nil {
		return err
	}
	if r != ResolveResume && r != ResolveRemoved {
		return fmt.Errorf("%w: resolution must be resume or removed", ErrBadRequest)
	}
	e := c.parcelEvent(ExceptionResolved, p)
	e.Text = string(r)
	if err := c.emit(e); err != nil {
		return err
	}
	if p.state == StateAwaitingPickup && !p.codeLive {
		// The code was consumed by the failed pickup: the recipient gets a new one.
		return c.issueCode(p, NotifyCodeReissued)
	}
	return nil
}

// ReturnToService puts an out-of-service compartment back (after repair).
func (c *Core) ReturnToService(cabName string, slot int) error {
	ci, ok := c.cabinetIndex(cabName)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownCabinet, cabName)
	}
	id, ok := c.inv.CompartmentAt(allocator.CabinetID(ci), slot)
	if !ok {
		return fmt.Errorf("%w: %s/%d", ErrUnknownCompartment, cabName, slot)
	}
	if c.inv.Status(id) != allocator.OutOfService {
		return fmt.Errorf("%w: compartment %s/%d is in service", ErrBadRequest, cabName, slot)
	}
	return c.emit(&Event{Kind: BackInService, Cabinet: ci, Compartment: int32(id)})
}

// HandleState reconciles a cabinet's reported state (published on connect,
// on reconnect and on sync) with what the controller expects, through the
// cabinet's shadow. Each difference is an alarm for a person to look at: the
// controller does not guess which side is right. One case is no guess: a
// door the controller saw open, reported locked by a report made after the
// opening, has closed, and the report's occupancy is what its lost
// door_closed event would have said; the operation is settled from it. A
// stale report is refused (ErrDuplicateEvent and twin.ErrStaleState) and
// changes nothing.
func (c *Core) HandleState(cabName string, st twin.State) error {
	ci, ok := c.cabinetIndex(cabName)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownCabinet, cabName)
	}
	first, end := c.inv.Cabinets()[ci].Compartments()
	want := make([]twin.Expectation, 0, end-first)
	for id := first; id < end; id++ {
		slot := &c.comps[id]
		want = append(want, twin.Expectation{
			Occupied:     slot.parcel != nil && (slot.parcel.state.InLocker() || (slot.parcel.state == StateException && slot.parcel.prev.InLocker())),
			DoorOpen:     slot.doorOpen || slot.cmd != nil,
			OutOfService: c.inv.Status(id) == allocator.OutOfService,
		})
	}
	diffs, err := c.cabinets[ci].shadow.Reconcile(st, want, c.cfg.Clock.Now())
	if err != nil {
		if errors.Is(err, twin.ErrStaleState) {
			return fmt.Errorf("%w: %w", ErrDuplicateEvent, err) // typed, and still twin.ErrStaleState
		}
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	for _, d := range diffs {
		comp := int32(-1)
		if d.Compartment > 0 {
			comp = int32(first) + int32(d.Compartment) - 1
		}
		c.alarm("state_mismatch_"+d.Field, ci, comp, "")
	}
	// A door the core believes open that the report, made after the door
	// opened, shows locked has closed, and its door_closed event was lost:
	// the report's occupancy decides the operation as the event would have.
	// And a report no older than the last event handled says which
	// compartments are out of their temperature range: it settles an
	// excursion whose temp_out_of_range or temperature event was lost, or
	// that a cabinet's restart ended. Any other disagreement is left to a
	// person (the alarms above).
	current := st.Seq >= c.cabinets[ci].lastSeq
	for i := 0; i < len(st.Compartments) && first+allocator.CompartmentID(i) < end; i++ {
		id := first + allocator.CompartmentID(i)
		slot := &c.comps[id]
		got := st.Compartments[i]
		if slot.doorOpen && slot.openSeq > 0 && st.Seq >= slot.openSeq && got.Door == twin.DoorLocked {
			if err := c.closeDoor(ci, id, got.Occupied, 0, ClosedFromState); err != nil {
				return err
			}
		}
		switch {
		case !current || got.TempC == nil || got.TempAlarm == slot.warm:
		case got.TempAlarm:
			c.alarm(ConditionOutOfRange, ci, int32(id), "")
		default:
			if err := c.clearOutOfRange(ci, int32(id), 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// LapsedOutOfService is the Text of a ReservationLapsed event that released
// a compartment out of service at the deposit, rather than at the
// reservation's timeout.
const LapsedOutOfService = "out_of_service"

// ClosedFromState is the Text of a DoorClosed event the core derived from
// a cabinet's reported state, its door_closed event having been lost.
const ClosedFromState = "from_state"

// requestSync asks a cabinet for its full reported state (a sync command)
// when one of its events was lost: a gap in its sequence numbers, or a door
// open for longer than it should be (its closing may be what was lost).
// HandleState then settles what the lost event would have. At most one
// request per AckTimeout per cabinet: the answer to one covers them all.
func (c *Core) requestSync(ci int32) {
	cab := &c.cabinets[ci]
	now := c.now()
	if cab.syncAt != 0 && now-cab.syncAt < int64(c.set.AckTimeout) {
		return
	}
	cab.syncAt = now
	var b [twin.MaxIDLen]byte
	// Unique per cabinet: at most one per AckTimeout, numbered by time.
	id := c.strs.String(twin.AppendID(b[:0], c.cfg.Site, "-sync", uint64(now), 10))
	c.cfg.Out.Send(cab.name, twin.Command{V: twin.ProtocolVersion, ID: id, Type: twin.CmdSync,
		IssuedAt: unixTime(now), ExpiresAt: unixTime(now + int64(c.set.CommandTTL))})
}

// CabinetOnline records a cabinet's status (from its retained status topic).
//
// A cabinet that says it is online has just (re)connected, whatever the
// core believed: the door commands it has not acknowledged are sent to it
// again at once (same ids) rather than at their next retry. That covers a
// cabinet that was away while a command went out and, after a restart of
// the controller, every command whose event was durable but which never
// left.
func (c *Core) CabinetOnline(cabName string, online bool) error {
	ci, ok := c.cabinetIndex(cabName)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownCabinet, cabName)
	}
	if c.inv.CabinetOnline(allocator.CabinetID(ci)) != online {
		e := c.noRef(CabinetStatus)
		e.Cabinet, e.Text = ci, twin.StatusOffline
		if online {
			e.Text = twin.StatusOnline
		}
		if err := c.emit(e); err != nil {
			return err
		}
	}
	if online {
		c.resendAwaited(ci)
	}
	return nil
}

func (c *Core) notify(p *parcel, kind NotificationKind, code string) error {
	e := c.parcelEvent(Notified, p)
	e.Text = string(kind)
	if err := c.emit(e); err != nil {
		return err
	}
	n := Notification{Kind: kind, Parcel: p.id, Recipient: p.recipient, Site: c.cfg.Site, Code: code, At: c.cfg.Clock.Now(), Seq: e.Seq}
	if p.comp >= 0 {
		comp, _ := c.inv.Compartment(p.comp)
		n.Cabinet, n.Compartment = c.cabinets[comp.Cabinet].name, comp.Slot
	}
	if p.deadline > 0 {
		n.Deadline = unixTime(p.deadline)
	}
	c.cfg.Out.Notify(n)
	return nil
}

// issueCode draws a fresh code naming the parcel's compartment (so unique
// at its cabinet), logs its digest and notifies the recipient with it.
func (c *Core) issueCode(p *parcel, kind NotificationKind) error {
	comp, _ := c.inv.Compartment(p.comp)
	cab := &c.cabinets[comp.Cabinet]
	code := formatCode(drawCode(c.cfg.Rand, comp.Slot))
	e := c.parcelEvent(CodeIssued, p)
	e.Digest = c.codes.bind(cab.name, p.id, code)
	now := c.now()
	if kind == NotifyArrival {
		window := c.set.PickupWindow
		if p.chilled {
			window = c.set.ChilledPickupWindow
		}
		if window > 0 {
			e.Num = now + int64(window)
		}
		if c.set.ReminderAfter > 0 && (e.Num == 0 || now+int64(c.set.ReminderAfter) < e.Num) {
			e.Num2 = now + int64(c.set.ReminderAfter)
		}
	} else {
		e.Num = p.deadline
		if !p.reminded && p.reminderAt > now {
			e.Num2 = p.reminderAt // a reminder not yet due stays
		}
	}
	if err := c.emit(e); err != nil {
		return err
	}
	return c.notify(p, kind, code)
}

// ---- queries -----------------------------------------------------------

// Cancel withdraws a parcel that has not been deposited (the courier takes
// it back, or the sender cancels); a held compartment is released.
func (c *Core) Cancel(id string) error {
	p, err := c.parcel(id, "cancel", StateAnnounced, StateReserved)
	if err != nil {
		return err
	}
	return c.emitParcel(Cancelled, p)
}

// Exceptions lists the parcels in exception, sorted by id, for an operator.
func (c *Core) Exceptions() []ParcelInfo {
	if c.exceptions == 0 {
		return nil
	}
	var out []ParcelInfo
	for id, p := range c.parcels {
		if p.state == StateException {
			info, _ := c.Parcel(id)
			out = append(out, info)
		}
	}
	slices.SortFunc(out, func(a, b ParcelInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// ParcelInfo is a parcel's externally visible state.
type ParcelInfo struct {
	ID    string
	State State
	// Previous is the state before an exception.
	Previous    State
	Recipient   string
	Cabinet     string
	Compartment int
	Class       string
	Deadline    time.Time
	Exception   string
	// CodeLockedUntil is set while wrong guesses keep its code locked.
	CodeLockedUntil time.Time
	// TempExcursion: it was in the locker while its compartment (or, for
	// a chilled parcel, its cabinet) was out of temperature range. Known
	// while the parcel is in the core, not after it has left.
	TempExcursion bool
}

// Parcel returns a parcel's state.
func (c *Core) Parcel(id string) (ParcelInfo, error) {
	p, ok := c.parcels[id]
	if !ok {
		if st, done := c.finished[id]; done {
			return ParcelInfo{ID: id, State: st}, nil
		}
		return ParcelInfo{}, fmt.Errorf("%w: %s", ErrUnknownParcel, id)
	}
	info := ParcelInfo{ID: p.id, State: p.state, Recipient: p.recipient, Exception: p.exception}
	if p.state == StateException {
		info.Previous = p.prev
	}
	if p.comp >= 0 {
		comp, _ := c.inv.Compartment(p.comp)
		info.Cabinet, info.Compartment = c.cabinets[comp.Cabinet].name, comp.Slot
		info.Class = c.cat.Class(comp.Class).Name
	}
	if p.deadline > 0 {
		info.Deadline = unixTime(p.deadline)
	}
	if p.codeLive && p.codeLocked > c.now() {
		info.CodeLockedUntil = unixTime(p.codeLocked)
	}
	info.TempExcursion = p.warmed
	return info, nil
}

// TempExcursion reports whether a parcel in the core was in the locker
// during a temperature excursion (ParcelInfo.TempExcursion), without the
// rest of Parcel's answer.
func (c *Core) TempExcursion(id string) bool {
	p := c.parcels[id]
	return p != nil && p.warmed
}

// resendAwaited sends again, oldest first, every live door command of
// cabinet ci that the cabinet has neither acknowledged nor acted on. Their
// events are durable; the commands may never have left (a restart) or
// arrived (the cabinet was away). A cabinet executes a command id once, so
// one that did arrive is only acknowledged again.
func (c *Core) resendAwaited(ci int32) {
	var awaited []*command
	for _, cmd := range c.cabinets[ci].live {
		if !cmd.acked && !cmd.opened {
			awaited = append(awaited, cmd)
		}
	}
	slices.SortFunc(awaited, func(a, b *command) int {
		if a.issued != b.issued {
			return cmp.Compare(a.issued, b.issued)
		}
		return strings.Compare(a.id, b.id)
	})
	for _, cmd := range awaited {
		comp, _ := c.inv.Compartment(cmd.comp)
		c.send(c.cabinets[cmd.cab].name, cmd, comp.Slot)
	}
}

// Holding names the parcel a compartment holds or is held for, and its
// state; false for an empty, unreserved compartment or an unknown id.
func (c *Core) Holding(id allocator.CompartmentID) (parcel string, state State, ok bool) {
	if int(id) < 0 || int(id) >= len(c.comps) || c.comps[id].parcel == nil {
		return "", 0, false
	}
	p := c.comps[id].parcel
	return p.id, p.state, true
}

// Alarms a compartment or cabinet can be in now (see Conditions).
const (
	ConditionLeftOpen   = "door_left_open"
	ConditionOutOfRange = twin.FaultTempRange
)

// Conditions are the alarms a compartment is in now, as the core knows
// them: its door left open past its limit (until it closes), its
// temperature out of range (until the cabinet reports it back). doorOpen
// says whether its door is open at all. Nil for none, or for a
// compartment the site does not have.
func (c *Core) Conditions(id allocator.CompartmentID) (alarms []string, doorOpen bool) {
	if int(id) < 0 || int(id) >= len(c.comps) {
		return nil, false
	}
	slot := &c.comps[id]
	if slot.doorOpen && slot.alarmed {
		alarms = append(alarms, ConditionLeftOpen)
	}
	if slot.warm {
		alarms = append(alarms, ConditionOutOfRange)
	}
	return alarms, slot.doorOpen
}

// CabinetConditions are the alarms a cabinet as a whole is in now: its
// temperature out of range, when it reported that for no one compartment.
func (c *Core) CabinetConditions(id allocator.CabinetID) []string {
	if int(id) < 0 || int(id) >= len(c.cabinets) || !c.cabinets[id].warm {
		return nil
	}
	return []string{ConditionOutOfRange}
}

// ConditionCounts counts the places in each alarm now (see Conditions and
// CabinetConditions); a kind with none is there with 0.
func (c *Core) ConditionCounts() map[string]int {
	counts := map[string]int{ConditionLeftOpen: 0, ConditionOutOfRange: 0}
	for i := range c.comps {
		alarms, _ := c.Conditions(allocator.CompartmentID(i))
		for _, a := range alarms {
			counts[a]++
		}
	}
	for i := range c.cabinets {
		for _, a := range c.CabinetConditions(allocator.CabinetID(i)) {
			counts[a]++
		}
	}
	return counts
}

// CabinetSequence is the sequence number of the last event handled from a
// cabinet (as far as the log records it after a rebuild: events that
// change nothing are not logged); false for a cabinet the site does not
// have. A cabinet reporting a number below it has lost its count.
func (c *Core) CabinetSequence(cabName string) (uint64, bool) {
	ci, ok := c.cabinetIndex(cabName)
	if !ok {
		return 0, false
	}
	return c.cabinets[ci].lastSeq, true
}

// ParcelState is a parcel's state, without building its ParcelInfo: what a
// simulation's couriers and recipients ask on every visit. False: unknown.
func (c *Core) ParcelState(id string) (State, bool) {
	if p, ok := c.parcels[id]; ok {
		return p.state, true
	}
	st, ok := c.finished[id]
	return st, ok
}

// ParcelsByState counts the active parcels in each state.
func (c *Core) ParcelsByState() map[State]int {
	out := map[State]int{}
	for _, p := range c.parcels {
		out[p.state]++
	}
	return out
}

// ActiveParcels is the number of parcels not in a terminal state.
func (c *Core) ActiveParcels() int { return len(c.parcels) }

// unixTime turns the core's Unix nanoseconds into a UTC time.
func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }
