package controller

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/twin"
	"github.com/stretchr/testify/require"
)

var epoch = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// recorder collects the core's outputs.
type recorder struct {
	sent   []sentCommand
	notes  []Notification
	codes  map[string]string // parcel → latest code
	byKind map[NotificationKind]int
}

type sentCommand struct {
	cabinet string
	cmd     twin.Command
}

func (r *recorder) Send(cab string, cmd twin.Command) { r.sent = append(r.sent, sentCommand{cab, cmd}) }
func (r *recorder) Notify(n Notification) {
	r.notes = append(r.notes, n)
	r.byKind[n.Kind]++
	if n.Code != "" {
		r.codes[n.Parcel] = n.Code
	}
}

func (r *recorder) last() sentCommand { return r.sent[len(r.sent)-1] }

// rig is a core with a manual clock, a seeded stream, a memory log, a
// recorder and the invariant checker attached.
type rig struct {
	t       testing.TB
	clock   *twin.ManualClock
	core    *Core
	log     *MemoryLog
	out     *recorder
	checker *Checker
	seq     map[string]uint64
	cfg     Config
}

func testSettings() Settings {
	return Settings{
		PickupWindow: 72 * time.Hour, ChilledPickupWindow: 24 * time.Hour,
		ReminderAfter: 24 * time.Hour, ReservationTimeout: 4 * time.Hour,
	}
}

func testInventory(t testing.TB) *allocator.Inventory {
	cat, err := allocator.NewCatalog([]allocator.Class{
		{Name: "S", WidthMm: 380, HeightMm: 80, DepthMm: 640},
		{Name: "M", WidthMm: 380, HeightMm: 190, DepthMm: 640},
		{Name: "L", WidthMm: 380, HeightMm: 410, DepthMm: 640},
		{Name: "M-cold", WidthMm: 380, HeightMm: 190, DepthMm: 640, Zone: allocator.Chilled},
	})
	require.NoError(t, err)
	var specs []allocator.CabinetSpec
	for _, name := range []string{"a1", "a2"} {
		comps, err := allocator.StackLayout(cat, []allocator.ClassCount{{Class: 0, Count: 3}, {Class: 1, Count: 2}, {Class: 2, Count: 1}, {Class: 3, Count: 1}})
		require.NoError(t, err)
		specs = append(specs, allocator.CabinetSpec{Name: name, Compartments: comps})
	}
	inv, err := allocator.NewInventory(cat, specs)
	require.NoError(t, err)
	return inv
}

func newRig(t testing.TB, set Settings, opts ...func(*Config)) *rig {
	r := &rig{t: t, clock: twin.NewManualClock(epoch), log: &MemoryLog{},
		out: &recorder{codes: map[string]string{}, byKind: map[NotificationKind]int{}}, seq: map[string]uint64{}}
	inv := testInventory(t)
	pol, err := allocator.New("first-fit", inv.Catalog(), allocator.Config{})
	require.NoError(t, err)
	r.cfg = Config{
		Site: "lobby", Inventory: inv, Policy: pol, Settings: set, Clock: r.clock,
		Rand: rand.New(rand.NewPCG(1, 2)), CodeKey: []byte("0123456789abcdef0123456789abcdef"),
		Log: r.log, Out: r.out, RetainFinished: true,
	}
	for _, o := range opts {
		o(&r.cfg)
	}
	r.core, err = New(r.cfg)
	require.NoError(t, err)
	r.checker = NewChecker(CodeLimits{})
	r.core.AddHook(r.checker)
	return r
}

// evt sends a cabinet event with the cabinet's next sequence number.
func (r *rig) evt(cab string, ev twin.Event) error {
	r.seq[cab]++
	ev.V, ev.Seq, ev.At = twin.ProtocolVersion, r.seq[cab], r.clock.Now()
	ev.ID = cab + "-e" + itoa(r.seq[cab])
	return r.core.HandleEvent(cab, ev)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func ptr[T any](v T) *T { return &v }

func (r *rig) ack(sc sentCommand) {
	require.NoError(r.t, r.evt(sc.cabinet, twin.Event{Type: twin.EvtAck, Command: sc.cmd.ID}))
}

func (r *rig) opened(sc sentCommand) {
	require.NoError(r.t, r.evt(sc.cabinet, twin.Event{Type: twin.EvtDoorOpened, Compartment: sc.cmd.Compartment, Command: sc.cmd.ID}))
}

func (r *rig) closed(cab string, slot int, occupied bool) {
	require.NoError(r.t, r.evt(cab, twin.Event{Type: twin.EvtDoorClosed, Compartment: slot, Occupied: ptr(occupied)}))
}

// doorCycle acks the last command, opens its door and closes it.
func (r *rig) doorCycle(occupiedAfter bool) {
	sc := r.out.last()
	r.ack(sc)
	r.opened(sc)
	r.clock.Advance(5 * time.Second)
	r.closed(sc.cabinet, sc.cmd.Compartment, occupiedAfter)
}

func (r *rig) state(id string) State {
	info, err := r.core.Parcel(id)
	require.NoError(r.t, err)
	st, ok := r.core.ParcelState(id)
	require.True(r.t, ok)
	require.Equal(r.t, info.State, st, "ParcelState agrees with Parcel")
	return info.State
}

// startDeposit announces a parcel and commands its door for the courier;
// it returns the command.
func (r *rig) startDeposit(id, class string) sentCommand {
	_, err := r.core.Announce(id, ParcelSpec{Class: class}, id+"@example.org")
	require.NoError(r.t, err)
	_, err = r.core.StartDeposit(id)
	require.NoError(r.t, err)
	return r.out.last()
}

func (r *rig) deposit(id, class string) {
	r.startDeposit(id, class)
	r.doorCycle(true)
	require.Equal(r.t, StateAwaitingPickup, r.state(id))
}

// rebuildConfig is the rig's configuration for a core rebuilt from its
// log: a fresh inventory, policy and log; the clock, keys, settings and
// outputs are the rig's unless the caller sets others.
func (r *rig) rebuildConfig() Config {
	cfg := r.cfg
	cfg.Inventory = testInventory(r.t)
	pol, err := allocator.New("first-fit", cfg.Inventory.Catalog(), allocator.Config{})
	require.NoError(r.t, err)
	cfg.Policy, cfg.Log = pol, &MemoryLog{}
	return cfg
}

// rebuilt rebuilds a core from the rig's log, requires its state to be
// the rig's core's, and returns it.
func (r *rig) rebuilt() *Core {
	r.t.Helper()
	c, err := Rebuild(r.rebuildConfig(), r.log.Events())
	require.NoError(r.t, err)
	require.Equal(r.t, r.core.Snapshot(), c.Snapshot())
	return c
}

func (r *rig) healthy() {
	r.t.Helper()
	require.NoError(r.t, r.checker.Err())
	require.NoError(r.t, CheckCore(r.core))
	require.NoError(r.t, Verify(r.log.Events()))
}

func (r *rig) kinds() []Kind {
	var ks []Kind
	for _, e := range r.log.Events() {
		ks = append(ks, e.Kind)
	}
	return ks
}
