package twin

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"time"

	"github.com/lockertwin/lockertwin/internal/strarena"
)

// Clock is the one time seam of lockertwin's simulated code: the virtual
// cabinet and the controller core (which aliases it) read time only through
// it. The simulator passes its virtual clock, lockerfleet and the service the
// WallClock, tests a ManualClock.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once, d from now. With a virtual clock it runs on
	// the simulation's thread; callers of a wall clock serialise themselves.
	AfterFunc(d time.Duration, f func()) Timer
}

// CounterClock is a virtual clock whose time a reader can follow without a
// call: base + *at, in Unix nanoseconds, for as long as the clock lives.
// The controller core reads the time at every event; through the counter
// that is one load, with no time.Time made.
type CounterClock interface {
	Counter() (base int64, at *int64)
}

// NanoReader returns clock's time reader in Unix nanoseconds: its counter
// when it has one, else Now().UnixNano().
func NanoReader(clock interface{ Now() time.Time }) func() int64 {
	if cc, ok := clock.(CounterClock); ok {
		base, at := cc.Counter()
		return func() int64 { return base + *at }
	}
	return func() int64 { return clock.Now().UnixNano() }
}

// Timer is a pending AfterFunc.
type Timer interface {
	// Stop prevents the call if it has not happened; it reports whether it did.
	Stop() bool
}

// ResettableTimer is a Timer that can be scheduled again, as time.Timer's
// Reset does for an AfterFunc timer: the function runs d from now, once,
// whether or not the timer had fired or been stopped. It reports whether the
// timer was pending. A state machine that re-arms one timer all the time
// (the controller core) reuses it instead of allocating a new one. The
// clocks of this package and the simulator's return ResettableTimers.
type ResettableTimer interface {
	Timer
	Reset(d time.Duration) bool
}

// Uplink is where a cabinet publishes: its evt, state and status topics.
type Uplink interface {
	PublishEvent(cabinet string, ev Event)
	PublishState(cabinet string, st State)
	PublishStatus(cabinet string, status string)
}

// Observer is told what happens at a cabinet's doors, so that the people of
// a simulation (couriers, recipients) can act when a door opens for them.
// It sees physical facts, not messages.
type Observer interface {
	DoorOpened(cabinet string, slot int, command string)
	DoorJammed(cabinet string, slot int)
}

// Faults configures a cabinet's failure behaviour. Every fault draws from
// its own named random stream (FaultStreams) so that a seed reproduces it
// and adding one fault leaves the others' draws unchanged.
type Faults struct {
	DoorJamProbability      float64       // per commanded opening
	SensorErrorProbability  float64       // per occupancy reading
	DoorLeftOpenProbability float64       // per closing by a user: the door stays open
	LeftOpenFor             time.Duration // how long, on average (exponential); default 5 min
	UncommandedOpensPerDay  float64       // Poisson rate of doors popping open by themselves
	OutageMTBF, OutageMTTR  time.Duration // cabinet outages (exponential); zero: none
}

// Validate says what, if anything, makes no sense in f: a probability
// outside [0, 1], a negative rate or duration, or outages without a mean
// duration. Each problem names the fault in the words of lockerfleet's
// flags.
func (f Faults) Validate() error {
	var errs []error
	for _, p := range []struct {
		name string
		v    float64
	}{{"door jam probability", f.DoorJamProbability}, {"occupancy sensor error probability", f.SensorErrorProbability},
		{"probability a person leaves a door open", f.DoorLeftOpenProbability}} {
		if !(p.v >= 0 && p.v <= 1) { // NaN too
			errs = append(errs, fmt.Errorf("%s must be between 0 and 1, got %g", p.name, p.v))
		}
	}
	if r := f.UncommandedOpensPerDay; !(r >= 0 && r <= math.MaxFloat64) {
		errs = append(errs, fmt.Errorf("uncommanded door openings per cabinet per day must be 0 or more, got %g", r))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"how long a door is left open", f.LeftOpenFor}, {"mean time between cabinet outages", f.OutageMTBF}, {"mean outage duration", f.OutageMTTR}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s cannot be negative, got %v", d.name, d.v))
		}
	}
	if f.OutageMTBF > 0 && f.OutageMTTR == 0 {
		errs = append(errs, errors.New("cabinet outages need a mean outage duration above 0"))
	}
	return errors.Join(errs...)
}

// Streams names the random streams a cabinet draws from; New derives them
// from a function like sim.Streams.Stream.
type Streams func(name string) *rand.Rand

// Temperature model of a chilled compartment: first order, toward the set
// point with the door closed and toward the room with it open.
const (
	ChilledSetpointC = 4.0
	ChilledMaxC      = 6.0
	ChilledMinC      = 2.0
	RoomC            = 20.0
	TauClosed        = 30 * time.Minute
	TauOpen          = 8 * time.Minute
)

// CompartmentSpec describes one compartment of a virtual cabinet.
type CompartmentSpec struct {
	Chilled bool
}

// CabinetConfig describes a virtual cabinet.
type CabinetConfig struct {
	Site, Name   string
	Compartments []CompartmentSpec
	Firmware     string
	// Heartbeat publishes a heartbeat event this often; zero: never (a
	// simulation of thousands of cabinets does not need them).
	Heartbeat time.Duration
	Faults    Faults
	// DedupWindow is how long command ids are remembered; default 10 min
	// (longer than any command's expiry).
	DedupWindow time.Duration
	// Memory, if set, is what the cabinet kept in non-volatile memory when
	// it last stopped: it carries on from there (its sequence numbers go on
	// increasing, as PROTOCOL.md requires, and its compartments hold what
	// they held). Nil: a new cabinet, empty, counting from 1.
	Memory *Memory
}

// Memory is what a cabinet keeps across a restart in non-volatile memory:
// the sequence number of its last event and its state's version (the
// controller drops events, and refuses a state, it has already seen), and
// what each compartment physically holds or suffers.
type Memory struct {
	Seq      uint64 `json:"seq"`
	Version  uint64 `json:"version"`
	Occupied []bool `json:"occupied"`         // by slot, from 1
	Jammed   []bool `json:"jammed,omitempty"` // by slot; none: no door jammed
	// Commands are the command ids answered within the dedup window, so
	// that a copy the controller resends after the restart is answered
	// again, not executed again.
	Commands []AnsweredCommand `json:"commands,omitempty"`
}

// AnsweredCommand is a command id a cabinet remembers, with its answer.
type AnsweredCommand struct {
	ID     string    `json:"id"`
	Until  time.Time `json:"until"` // forgotten then
	Answer EventType `json:"answer"`
	Reason string    `json:"reason,omitempty"`
}

type door struct {
	state     DoorState
	occupied  bool // physical truth
	tempC     float64
	tempAt    time.Time
	tempAlarm bool
	chilled   bool
	leftOpen  Timer
	tempTimer Timer
}

// seenCommand is a command id the cabinet has answered, with its reply (an
// ack, or a nack and its reason), resent on a duplicate, until it expires.
type seenCommand struct {
	hash    uint64 // of id: a lookup compares words, and strings only on a match
	id      string
	expires int64 // unix ns
	reply   EventType
	reason  string
}

// seenIndexAt is how many remembered ids a cabinet scans before it also
// indexes them in a map. A city cabinet remembers a few dozen, which a scan
// of hashes finds faster than a map; a cabinet under a load test can
// remember thousands.
const seenIndexAt = 64

// Cabinet is a virtual cabinet: doors, occupancy sensors, keypad, chilled
// zones, command dedup, acknowledgements, a versioned reported state, and
// fault injection. It is a synchronous state machine driven by its clock,
// its link (HandleCommand) and the people at it (Place, Remove, Close,
// TypeCode); it starts no goroutines.
type Cabinet struct {
	cfg   CabinetConfig
	clock Clock
	up    Uplink
	obs   Observer

	doors   []door
	seq     uint64
	version uint64
	online  bool
	outbox  []Event       // events held while offline, sent on reconnect
	seen    []seenCommand // oldest first, a window of seenArr
	seenArr []seenCommand
	index   map[string]int // id → position in seen + forgot; only while seen is long
	forgot  int            // entries expired from the front of seen, ever
	hashKey maphash.Seed
	strs    strarena.Arena // event ids
	ids     IDCounter      // makes them

	jam, sensor, leftOpen, uncommanded, outage *rand.Rand

	Stats CabinetStats
}

// CabinetStats counts what a cabinet did.
type CabinetStats struct {
	Commands, Duplicates, Expired, Jams, SensorErrors, LeftOpen, Uncommanded, Outages int
	PinsRefusedOffline                                                                int
}

// NewCabinet builds a virtual cabinet, online, with every door locked and empty.
func NewCabinet(cfg CabinetConfig, clock Clock, up Uplink, obs Observer, streams Streams) (*Cabinet, error) {
	if !ValidID(cfg.Site) || !ValidID(cfg.Name) {
		return nil, fmt.Errorf("twin: site and cabinet ids must be 1-64 characters of [a-z0-9-]: %q/%q", cfg.Site, cfg.Name)
	}
	if len(cfg.Compartments) == 0 || len(cfg.Compartments) > MaxCompartments {
		return nil, fmt.Errorf("twin: cabinet %s needs 1 to %d compartments", cfg.Name, MaxCompartments)
	}
	if err := cfg.Faults.Validate(); err != nil {
		return nil, fmt.Errorf("twin: cabinet %s: %w", cfg.Name, err)
	}
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = 10 * time.Minute
	}
	if m := cfg.Memory; m != nil && (len(m.Occupied) != len(cfg.Compartments) || len(m.Jammed) != 0 && len(m.Jammed) != len(cfg.Compartments)) {
		return nil, fmt.Errorf("twin: cabinet %s: its memory is of %d compartments, not %d", cfg.Name, len(m.Occupied), len(cfg.Compartments))
	}
	if cfg.Faults.LeftOpenFor <= 0 {
		cfg.Faults.LeftOpenFor = 5 * time.Minute
	}
	if cfg.Firmware == "" {
		cfg.Firmware = "lockertwin-virtual/1"
	}
	c := &Cabinet{cfg: cfg, clock: clock, up: up, obs: obs, online: true, hashKey: maphash.MakeSeed()}
	prefix := "twin/" + cfg.Site + "/" + cfg.Name + "/"
	c.jam = streams(prefix + "jam")
	c.sensor = streams(prefix + "sensor")
	c.leftOpen = streams(prefix + "left-open")
	c.uncommanded = streams(prefix + "uncommanded")
	c.outage = streams(prefix + "outage")
	now := clock.Now()
	c.doors = make([]door, len(cfg.Compartments))
	for i, spec := range cfg.Compartments {
		c.doors[i] = door{state: DoorLocked, chilled: spec.Chilled, tempC: ChilledSetpointC, tempAt: now}
	}
	if m := cfg.Memory; m != nil {
		// A door that was open when the cabinet stopped was shut by the
		// restart; what was inside stays inside.
		c.seq, c.version = m.Seq, m.Version
		for i := range c.doors {
			c.doors[i].occupied = m.Occupied[i]
			if len(m.Jammed) > 0 && m.Jammed[i] {
				c.doors[i].state = DoorJammed
			}
		}
		for _, a := range m.Commands {
			if len(a.ID) > 0 && a.Until.After(now) {
				c.remember(a.ID, a.Until.UnixNano(), a.Answer, a.Reason)
			}
		}
		c.changed() // the restart is news to the controller's shadow
	}
	if cfg.Heartbeat > 0 {
		clock.AfterFunc(cfg.Heartbeat, c.heartbeat)
	}
	if r := cfg.Faults.UncommandedOpensPerDay; r > 0 {
		c.scheduleUncommanded()
	}
	if cfg.Faults.OutageMTBF > 0 && cfg.Faults.OutageMTTR > 0 {
		c.scheduleOutage()
	}
	return c, nil
}

// Name is the cabinet's id.
func (c *Cabinet) Name() string { return c.cfg.Name }

// Online reports whether the cabinet is connected.
func (c *Cabinet) Online() bool { return c.online }

// Start announces the cabinet: online status and its full state.
func (c *Cabinet) Start() {
	c.up.PublishStatus(c.cfg.Name, StatusOnline)
	c.up.PublishState(c.cfg.Name, c.State())
}

func (c *Cabinet) emit(ev Event) {
	c.seq++
	ev.V, ev.Seq, ev.At = ProtocolVersion, c.seq, c.clock.Now()
	ev.ID = c.strs.String(c.ids.ID(c.cfg.Name, "-", c.seq))
	if !c.online {
		c.outbox = append(c.outbox, ev)
		return
	}
	c.up.PublishEvent(c.cfg.Name, ev)
}

// State returns the reported state document.
func (c *Cabinet) State() State {
	st := State{V: ProtocolVersion, Cabinet: c.cfg.Name, Version: c.version, Seq: c.seq,
		Firmware: c.cfg.Firmware, At: c.clock.Now(), Compartments: make([]CompartmentState, len(c.doors))}
	for i := range c.doors {
		d := &c.doors[i]
		cs := CompartmentState{Compartment: i + 1, Door: d.state, Occupied: d.occupied}
		if d.chilled {
			t := c.temperature(d)
			cs.TempC, cs.TempAlarm = &t, d.tempAlarm
		}
		st.Compartments[i] = cs
	}
	return st
}

func (c *Cabinet) changed() { c.version++ }

// Memory is what the cabinet would keep in non-volatile memory now (see
// CabinetConfig.Memory).
func (c *Cabinet) Memory() Memory {
	m := Memory{Seq: c.seq, Version: c.version, Occupied: make([]bool, len(c.doors))}
	for i := range c.doors {
		m.Occupied[i] = c.doors[i].occupied
		if c.doors[i].state == DoorJammed {
			if m.Jammed == nil {
				m.Jammed = make([]bool, len(c.doors))
			}
			m.Jammed[i] = true
		}
	}
	for _, sc := range c.seen {
		m.Commands = append(m.Commands, AnsweredCommand{ID: sc.id, Until: time.Unix(0, sc.expires).UTC(), Answer: sc.reply, Reason: sc.reason})
	}
	return m
}

// HandleCommand executes a command from the controller: at most once per id,
// acknowledging every copy.
func (c *Cabinet) HandleCommand(cmd Command) {
	if !c.online {
		return // the link is down: nothing arrives
	}
	if err := cmd.Validate(); err != nil {
		return // nothing can be acknowledged without a valid id
	}
	now := c.clock.Now()
	c.expireSeen(now.UnixNano())
	h := maphash.String(c.hashKey, cmd.ID)
	if prev := c.lookupSeen(h, cmd.ID); prev != nil {
		c.Stats.Duplicates++
		c.emit(Event{Type: prev.reply, Command: cmd.ID, Reason: prev.reason})
		return
	}
	c.Stats.Commands++
	reply := c.execute(cmd, now)
	c.rememberHashed(h, cmd.ID, now.Add(c.cfg.DedupWindow).UnixNano(), reply.Type, reply.Reason)
}

// remember records an answered command id until expires (unix ns).
func (c *Cabinet) remember(id string, expires int64, reply EventType, reason string) {
	c.rememberHashed(maphash.String(c.hashKey, id), id, expires, reply, reason)
}

func (c *Cabinet) rememberHashed(h uint64, id string, expires int64, reply EventType, reason string) {
	if len(c.seen) == cap(c.seen) {
		c.roomToRemember()
	}
	c.seen = append(c.seen, seenCommand{hash: h, id: id, expires: expires, reply: reply, reason: reason})
	switch {
	case c.index != nil:
		c.index[id] = c.forgot + len(c.seen) - 1
	case len(c.seen) > seenIndexAt:
		c.index = make(map[string]int, 2*len(c.seen))
		for i := range c.seen {
			c.index[c.seen[i].id] = c.forgot + i
		}
	}
}

// roomToRemember makes room at the end of seen: by moving it to the front
// of its array when at most half of that is in use (the expired ids left
// the front), else by doubling the array. Each move follows at least as
// many appends as it moves entries: constant time per command, amortised.
func (c *Cabinet) roomToRemember() {
	n := len(c.seen)
	if len(c.seenArr) > 0 && n <= len(c.seenArr)/2 {
		copy(c.seenArr, c.seen)
		clear(c.seenArr[n:])
		c.seen = c.seenArr[:n]
		return
	}
	c.seenArr = make([]seenCommand, max(8, 2*n))
	copy(c.seenArr, c.seen)
	c.seen = c.seenArr[:n]
}

// lookupSeen finds a remembered command id.
func (c *Cabinet) lookupSeen(h uint64, id string) *seenCommand {
	if c.index != nil {
		if at, ok := c.index[id]; ok {
			return &c.seen[at-c.forgot]
		}
		return nil
	}
	for i := range c.seen {
		if c.seen[i].hash == h && c.seen[i].id == id {
			return &c.seen[i]
		}
	}
	return nil
}

// expireSeen forgets the ids whose dedup window has passed.
func (c *Cabinet) expireSeen(now int64) {
	i := 0
	for ; i < len(c.seen) && c.seen[i].expires <= now; i++ {
		if c.index != nil {
			delete(c.index, c.seen[i].id)
		}
	}
	if i == 0 {
		return
	}
	clear(c.seen[:i])
	c.seen = c.seen[i:] // roomToRemember moves the rest when the end is reached
	c.forgot += i
	if c.index != nil && len(c.seen) <= seenIndexAt/2 {
		c.index = nil
	}
}

func (c *Cabinet) nack(cmd Command, reason string) Event {
	ev := Event{Type: EvtNack, Command: cmd.ID, Reason: reason}
	c.emit(ev)
	return ev
}

func (c *Cabinet) execute(cmd Command, now time.Time) Event {
	if now.After(cmd.ExpiresAt) {
		c.Stats.Expired++
		return c.nack(cmd, NackExpired)
	}
	switch cmd.Type {
	case CmdSync:
		ack := Event{Type: EvtAck, Command: cmd.ID}
		c.emit(ack)
		c.up.PublishState(c.cfg.Name, c.State())
		return ack
	case CmdOpen:
		if cmd.Compartment > len(c.doors) {
			return c.nack(cmd, NackUnknownCompartment)
		}
		d := &c.doors[cmd.Compartment-1]
		switch d.state {
		case DoorJammed:
			return c.nack(cmd, NackJammed)
		case DoorOpen:
			ack := Event{Type: EvtAck, Command: cmd.ID}
			c.emit(ack)
			return ack
		}
		if p := c.cfg.Faults.DoorJamProbability; p > 0 && c.jam.Float64() < p {
			c.Stats.Jams++
			d.state = DoorJammed
			c.changed()
			ev := c.nack(cmd, NackJammed)
			c.emit(Event{Type: EvtFault, Fault: FaultJam, Compartment: cmd.Compartment})
			if c.obs != nil {
				c.obs.DoorJammed(c.cfg.Name, cmd.Compartment)
			}
			return ev
		}
		ack := Event{Type: EvtAck, Command: cmd.ID}
		c.emit(ack)
		c.openDoor(cmd.Compartment, cmd.ID)
		return ack
	}
	return c.nack(cmd, NackUnsupported)
}

func (c *Cabinet) openDoor(slot int, command string) {
	d := &c.doors[slot-1]
	if d.chilled {
		d.tempC, d.tempAt = c.temperature(d), c.clock.Now()
	}
	d.state = DoorOpen
	c.changed()
	c.emit(Event{Type: EvtDoorOpened, Compartment: slot, Command: command})
	if d.chilled {
		c.watchTemperature(slot)
	}
	if c.obs != nil {
		c.obs.DoorOpened(c.cfg.Name, slot, command)
	}
}

func (c *Cabinet) door(slot int) (*door, error) {
	if slot < 1 || slot > len(c.doors) {
		return nil, fmt.Errorf("twin: cabinet %s has no compartment %d", c.cfg.Name, slot)
	}
	return &c.doors[slot-1], nil
}

// Place puts an item into an open compartment.
func (c *Cabinet) Place(slot int) error { return c.setItem(slot, true) }

// Remove takes the item out of an open compartment.
func (c *Cabinet) Remove(slot int) error { return c.setItem(slot, false) }

func (c *Cabinet) setItem(slot int, occupied bool) error {
	d, err := c.door(slot)
	if err != nil {
		return err
	}
	if d.state != DoorOpen {
		return fmt.Errorf("twin: compartment %s/%d is %s, not open", c.cfg.Name, slot, d.state)
	}
	d.occupied = occupied
	c.changed()
	return nil
}

// Close is a person shutting an open door. With the door-left-open fault
// the door stays open for a while and is shut later (by someone passing).
func (c *Cabinet) Close(slot int) error {
	d, err := c.door(slot)
	if err != nil {
		return err
	}
	if d.state != DoorOpen {
		return fmt.Errorf("twin: compartment %s/%d is %s, not open", c.cfg.Name, slot, d.state)
	}
	if p := c.cfg.Faults.DoorLeftOpenProbability; p > 0 && d.leftOpen == nil && c.leftOpen.Float64() < p {
		c.Stats.LeftOpen++
		wait := time.Duration(c.leftOpen.ExpFloat64() * float64(c.cfg.Faults.LeftOpenFor))
		d.leftOpen = c.clock.AfterFunc(wait, func() {
			d.leftOpen = nil
			if d.state == DoorOpen {
				c.shut(slot)
			}
		})
		return nil
	}
	c.shut(slot)
	return nil
}

func (c *Cabinet) shut(slot int) {
	d := &c.doors[slot-1]
	if d.chilled {
		d.tempC, d.tempAt = c.temperature(d), c.clock.Now()
	}
	d.state = DoorLocked
	c.changed()
	reading := c.read(d)
	c.emit(Event{Type: EvtDoorClosed, Compartment: slot, Occupied: &reading})
	if d.chilled {
		c.watchTemperature(slot)
	}
}

// read returns the occupancy sensor's reading, which a fault may flip.
func (c *Cabinet) read(d *door) bool {
	if p := c.cfg.Faults.SensorErrorProbability; p > 0 && c.sensor.Float64() < p {
		c.Stats.SensorErrors++
		return !d.occupied
	}
	return d.occupied
}

// TypeCode is a person typing a pickup code on the keypad. Codes are
// checked by the controller, so an offline keypad turns the person away
// (it reports whether it took the code): a code held for the reconnect
// would open the door hours later, to nobody, with the parcel inside.
func (c *Cabinet) TypeCode(code string) bool {
	if !c.online {
		c.Stats.PinsRefusedOffline++
		return false
	}
	c.emit(Event{Type: EvtPin, Code: code})
	return true
}

// Repair clears a jammed door (a technician's visit): it is locked again.
func (c *Cabinet) Repair(slot int) error {
	d, err := c.door(slot)
	if err != nil {
		return err
	}
	if d.state == DoorJammed {
		d.state = DoorLocked
		c.changed()
	}
	return nil
}

// ForceEmpty is staff emptying a compartment with a service key, in
// maintenance mode: the item is gone and the door is locked, without events.
func (c *Cabinet) ForceEmpty(slot int) error {
	d, err := c.door(slot)
	if err != nil {
		return err
	}
	d.occupied = false
	if d.state == DoorOpen {
		d.state = DoorLocked
	}
	c.changed()
	return nil
}

// DoorState returns a door's state and the physical occupancy.
func (c *Cabinet) DoorState(slot int) (DoorState, bool, error) {
	d, err := c.door(slot)
	if err != nil {
		return "", false, err
	}
	return d.state, d.occupied, nil
}

// Temperature returns a chilled compartment's temperature now.
func (c *Cabinet) Temperature(slot int) (float64, error) {
	d, err := c.door(slot)
	if err != nil {
		return 0, err
	}
	if !d.chilled {
		return 0, fmt.Errorf("twin: compartment %s/%d is not chilled", c.cfg.Name, slot)
	}
	return c.temperature(d), nil
}

// temperature evaluates the first-order model from the last known point.
func (c *Cabinet) temperature(d *door) float64 {
	target, tau := ChilledSetpointC, TauClosed
	if d.state == DoorOpen {
		target, tau = RoomC, TauOpen
	}
	dt := c.clock.Now().Sub(d.tempAt)
	return target + (d.tempC-target)*math.Exp(-float64(dt)/float64(tau))
}

// watchTemperature schedules the next crossing of the allowed range: out of
// range while open (warming past 6 °C), back in range once closed.
func (c *Cabinet) watchTemperature(slot int) {
	d := &c.doors[slot-1]
	if d.tempTimer != nil {
		d.tempTimer.Stop()
		d.tempTimer = nil
	}
	t := c.temperature(d)
	var target float64
	var tau time.Duration
	var limit float64
	if d.state == DoorOpen {
		target, tau, limit = RoomC, TauOpen, ChilledMaxC
		if t >= limit {
			c.tempOut(slot, t)
			return
		}
	} else {
		target, tau, limit = ChilledSetpointC, TauClosed, ChilledMaxC-0.5 // hysteresis
		if !d.tempAlarm {
			return
		}
		if t <= limit {
			c.tempBack(slot, t)
			return
		}
	}
	// Solve target + (t - target)·e^(-x/τ) = limit for x.
	x := time.Duration(float64(tau) * math.Log((t-target)/(limit-target)))
	d.tempTimer = c.clock.AfterFunc(x+time.Second, func() {
		d.tempTimer = nil
		c.watchTemperature(slot)
	})
}

func (c *Cabinet) tempOut(slot int, t float64) {
	d := &c.doors[slot-1]
	if d.tempAlarm {
		return
	}
	d.tempAlarm = true
	c.emit(Event{Type: EvtFault, Fault: FaultTempRange, Compartment: slot, TempC: &t})
}

func (c *Cabinet) tempBack(slot int, t float64) {
	d := &c.doors[slot-1]
	d.tempAlarm = false
	c.emit(Event{Type: EvtTemp, Compartment: slot, TempC: &t})
}

func (c *Cabinet) heartbeat() {
	if c.online {
		c.emit(Event{Type: EvtHeartbeat})
	}
	c.clock.AfterFunc(c.cfg.Heartbeat, c.heartbeat)
}

func (c *Cabinet) scheduleUncommanded() {
	perDay := c.cfg.Faults.UncommandedOpensPerDay
	wait := time.Duration(c.uncommanded.ExpFloat64() / perDay * float64(24*time.Hour))
	c.clock.AfterFunc(wait, func() {
		slot := 1 + c.uncommanded.IntN(len(c.doors))
		if c.doors[slot-1].state == DoorLocked {
			c.Stats.Uncommanded++
			c.openDoor(slot, "")
			// Nobody is there: someone notices and shuts it after a while.
			c.clock.AfterFunc(time.Duration(c.uncommanded.ExpFloat64()*float64(2*time.Minute)), func() {
				if c.doors[slot-1].state == DoorOpen {
					c.shut(slot)
				}
			})
		}
		c.scheduleUncommanded()
	})
}

func (c *Cabinet) scheduleOutage() {
	up := time.Duration(c.outage.ExpFloat64() * float64(c.cfg.Faults.OutageMTBF))
	c.clock.AfterFunc(up, func() {
		down := time.Duration(c.outage.ExpFloat64() * float64(c.cfg.Faults.OutageMTTR))
		c.Disconnect()
		c.clock.AfterFunc(down, func() {
			c.Reconnect()
			c.scheduleOutage()
		})
	})
}

// Disconnect takes the cabinet offline: the broker publishes its will.
func (c *Cabinet) Disconnect() {
	if !c.online {
		return
	}
	c.Stats.Outages++
	c.online = false
	c.up.PublishStatus(c.cfg.Name, StatusOffline)
}

// Reconnect brings the cabinet back: online status, the events it held, and
// its full reported state for the controller's shadow to reconcile.
func (c *Cabinet) Reconnect() {
	if c.online {
		return
	}
	c.online = true
	c.up.PublishStatus(c.cfg.Name, StatusOnline)
	held := c.outbox
	c.outbox = nil
	for _, ev := range held {
		c.up.PublishEvent(c.cfg.Name, ev)
	}
	c.up.PublishState(c.cfg.Name, c.State())
}
