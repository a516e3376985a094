package twin

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type uplink struct {
	events []Event
	states []State
	status []string
}

func (u *uplink) PublishEvent(_ string, ev Event)  { u.events = append(u.events, ev) }
func (u *uplink) PublishState(_ string, st State)  { u.states = append(u.states, st) }
func (u *uplink) PublishStatus(_ string, s string) { u.status = append(u.status, s) }
func (u *uplink) last() Event                      { return u.events[len(u.events)-1] }
func (u *uplink) types() (ts []EventType) {
	for _, e := range u.events {
		ts = append(ts, e.Type)
	}
	return ts
}

type watcher struct {
	opened []int
	jammed []int
}

func (w *watcher) DoorOpened(_ string, slot int, _ string) { w.opened = append(w.opened, slot) }
func (w *watcher) DoorJammed(_ string, slot int)           { w.jammed = append(w.jammed, slot) }

func streams(seed uint64) Streams {
	return func(name string) *rand.Rand {
		h := uint64(14695981039346656037)
		for i := 0; i < len(name); i++ {
			h = (h ^ uint64(name[i])) * 1099511628211
		}
		return rand.New(rand.NewPCG(seed, h))
	}
}

func newTestCabinet(t *testing.T, f Faults) (*Cabinet, *ManualClock, *uplink, *watcher) {
	clock := NewManualClock(t0)
	up := &uplink{}
	w := &watcher{}
	c, err := NewCabinet(CabinetConfig{Site: "lobby", Name: "a1", Faults: f,
		Compartments: []CompartmentSpec{{}, {}, {Chilled: true}}}, clock, up, w, streams(1))
	require.NoError(t, err)
	c.Start()
	return c, clock, up, w
}

func open(id string, slot int, at time.Time) Command {
	return Command{V: 1, ID: id, Type: CmdOpen, Compartment: slot, IssuedAt: at, ExpiresAt: at.Add(time.Minute)}
}

func TestCabinetRepliesToACopyAsToTheFirstUntilItForgets(t *testing.T) {
	c, clock, up, _ := newTestCabinet(t, Faults{})
	bad := open("c9", 9, clock.Now())
	c.HandleCommand(bad)
	c.HandleCommand(bad)
	first, again := up.events[len(up.events)-2], up.last()
	require.Equal(t, EvtNack, again.Type)
	require.Equal(t, first.Reason, again.Reason)
	require.Equal(t, NackUnknownCompartment, again.Reason)
	require.Equal(t, "c9", again.Command)
	require.Greater(t, again.Seq, first.Seq)

	cmd := open("c1", 1, clock.Now())
	c.HandleCommand(cmd)
	require.NoError(t, c.Close(1))
	clock.Advance(11 * time.Minute) // past the dedup window: c1 is forgotten
	cmd = open("c1", 1, clock.Now())
	c.HandleCommand(cmd)
	require.Equal(t, []EventType{EvtAck, EvtDoorOpened}, up.types()[len(up.types())-2:], "executed again")
	require.Equal(t, 1, c.Stats.Duplicates)
	require.Len(t, c.seen, 1, "only the new c1 is remembered")
}

// A cabinet under a load test remembers thousands of ids; past seenIndexAt
// it indexes them, and it drops the index when it forgets most of them.
func TestCabinetRemembersManyCommandsAsItDoesAFew(t *testing.T) {
	c, clock, up, _ := newTestCabinet(t, Faults{})
	const n = 5 * seenIndexAt
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("sync-%d", i)
		c.HandleCommand(Command{V: 1, ID: ids[i], Type: CmdSync, IssuedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Minute)})
		if i == seenIndexAt-1 {
			require.Nil(t, c.index, "a few ids are scanned")
		}
		clock.Advance(time.Second)
	}
	require.NotNil(t, c.index)
	require.Len(t, c.index, len(c.seen))
	for _, i := range []int{0, 1, seenIndexAt, n - 1} {
		before := len(up.events)
		c.HandleCommand(Command{V: 1, ID: ids[i], Type: CmdSync, IssuedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Minute)})
		require.Len(t, up.events, before+1, "a copy of %s is acked, not executed again", ids[i])
		require.Equal(t, ids[i], up.last().Command)
	}
	require.Equal(t, 4, c.Stats.Duplicates)
	require.Equal(t, n, c.Stats.Commands)

	// ids[i] came at i seconds and is forgotten at i seconds + 10 minutes:
	// at n-2 seconds + 10 minutes, only the newest is left.
	clock.Advance(10*time.Minute - 2*time.Second)
	c.HandleCommand(Command{V: 1, ID: "late", Type: CmdSync, IssuedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Minute)})
	require.Equal(t, 2, len(c.seen), "%s and late", ids[n-1])
	require.Nil(t, c.index, "the index goes with the crowd")
	c.HandleCommand(Command{V: 1, ID: ids[0], Type: CmdSync, IssuedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Minute)})
	require.Equal(t, n+2, c.Stats.Commands, "a forgotten id is a new command")
	c.HandleCommand(Command{V: 1, ID: ids[n-1], Type: CmdSync, IssuedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Minute)})
	require.Equal(t, 5, c.Stats.Duplicates, "a remembered one is still a copy")
}

func TestCabinetOpensOnceAndAcksEveryCopy(t *testing.T) {
	c, clock, up, w := newTestCabinet(t, Faults{})
	require.Equal(t, []string{StatusOnline}, up.status)
	require.Len(t, up.states, 1)
	cmd := open("c1", 2, clock.Now())
	c.HandleCommand(cmd)
	require.Equal(t, []EventType{EvtAck, EvtDoorOpened}, up.types())
	require.Equal(t, "c1", up.events[1].Command)
	require.Equal(t, []int{2}, w.opened)
	c.HandleCommand(cmd) // redelivered under QoS 1
	require.Equal(t, []EventType{EvtAck, EvtDoorOpened, EvtAck}, up.types(), "acked again, not opened again")
	require.Equal(t, 1, c.Stats.Duplicates)
	require.NoError(t, c.Place(2))
	require.NoError(t, c.Close(2))
	ev := up.last()
	require.Equal(t, EvtDoorClosed, ev.Type)
	require.True(t, *ev.Occupied)
	for i, e := range up.events {
		require.Equal(t, uint64(i+1), e.Seq, "sequence numbers count every event")
		require.NoError(t, e.Validate())
	}
	st := c.State()
	require.NoError(t, st.Validate())
	require.Equal(t, DoorLocked, st.Compartments[1].Door)
	require.True(t, st.Compartments[1].Occupied)
	require.Equal(t, uint64(3), st.Version, "open, place, close: each change bumps the version")
}

func TestCabinetRefusesWhatItShould(t *testing.T) {
	c, clock, up, _ := newTestCabinet(t, Faults{})
	stale := open("c1", 1, clock.Now().Add(-2*time.Minute))
	c.HandleCommand(stale)
	require.Equal(t, NackExpired, up.last().Reason)
	c.HandleCommand(open("c2", 9, clock.Now()))
	require.Equal(t, NackUnknownCompartment, up.last().Reason)
	n := len(up.events)
	c.HandleCommand(Command{V: 1, ID: "bad id!", Type: CmdOpen, Compartment: 1})
	require.Len(t, up.events, n, "an invalid command cannot even be nacked")
	require.Error(t, c.Place(1), "a closed door takes nothing")
	require.Error(t, c.Close(1))
	require.Error(t, c.Place(7))
	c.HandleCommand(Command{V: 1, ID: "s1", Type: CmdSync, IssuedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Minute)})
	require.Equal(t, EvtAck, up.last().Type)
	require.Len(t, up.states, 2, "sync republishes the state")
	// The dedup memory is bounded in time: old ids are forgotten as new
	// commands arrive.
	require.Len(t, c.seen, 3)
	clock.Advance(11 * time.Minute)
	c.HandleCommand(open("c3", 1, clock.Now()))
	require.Len(t, c.seen, 1)
	require.Equal(t, "c3", c.seen[0].id)
}

func TestJamFault(t *testing.T) {
	c, clock, up, w := newTestCabinet(t, Faults{DoorJamProbability: 1})
	c.HandleCommand(open("c1", 1, clock.Now()))
	require.Equal(t, []EventType{EvtNack, EvtFault}, up.types())
	require.Equal(t, NackJammed, up.events[0].Reason)
	require.Equal(t, FaultJam, up.events[1].Fault)
	require.Equal(t, []int{1}, w.jammed)
	state, _, _ := c.DoorState(1)
	require.Equal(t, DoorJammed, state)
	c.HandleCommand(open("c2", 1, clock.Now()))
	require.Equal(t, NackJammed, up.last().Reason)
	require.NoError(t, c.Repair(1))
	state, _, _ = c.DoorState(1)
	require.Equal(t, DoorLocked, state)
}

func TestSensorAndLeftOpenFaults(t *testing.T) {
	c, clock, up, _ := newTestCabinet(t, Faults{SensorErrorProbability: 1, DoorLeftOpenProbability: 1, LeftOpenFor: time.Minute})
	c.HandleCommand(open("c1", 1, clock.Now()))
	require.NoError(t, c.Place(1))
	require.NoError(t, c.Close(1))
	require.Equal(t, EvtDoorOpened, up.last().Type, "left open: no close yet")
	clock.Advance(time.Hour)
	ev := up.last()
	require.Equal(t, EvtDoorClosed, ev.Type)
	require.False(t, *ev.Occupied, "the sensor misreports the parcel inside")
	_, occupied, _ := c.DoorState(1)
	require.True(t, occupied)
	require.Equal(t, 1, c.Stats.SensorErrors)
	require.Equal(t, 1, c.Stats.LeftOpen)
}

func TestUncommandedOpens(t *testing.T) {
	c, clock, up, w := newTestCabinet(t, Faults{UncommandedOpensPerDay: 24})
	clock.Advance(48 * time.Hour)
	require.InDelta(t, 48, c.Stats.Uncommanded, 25)
	require.Len(t, w.opened, c.Stats.Uncommanded)
	for _, e := range up.events {
		if e.Type == EvtDoorOpened {
			require.Empty(t, e.Command, "nobody commanded it")
		}
	}
}

func TestOutageHoldsEventsAndResyncs(t *testing.T) {
	c, clock, up, _ := newTestCabinet(t, Faults{})
	c.HandleCommand(open("c1", 1, clock.Now()))
	c.Disconnect()
	require.Equal(t, StatusOffline, up.status[len(up.status)-1])
	n := len(up.events)
	require.NoError(t, c.Place(1))
	require.NoError(t, c.Close(1))
	c.HandleCommand(open("c2", 2, clock.Now()))
	require.Len(t, up.events, n, "offline: nothing published, commands lost")
	c.Reconnect()
	require.Equal(t, StatusOnline, up.status[len(up.status)-1])
	require.Len(t, up.events, n+1, "the held door_closed is sent on reconnect")
	require.Equal(t, EvtDoorClosed, up.last().Type)
	require.Equal(t, up.events[n-1].Seq+1, up.last().Seq)
	st := up.states[len(up.states)-1]
	require.True(t, st.Compartments[0].Occupied, "and the full state, for the shadow")

	// Outages from the fault model, reproducibly.
	run := func() CabinetStats {
		c, clock, _, _ := newTestCabinet(t, Faults{OutageMTBF: 24 * time.Hour, OutageMTTR: time.Hour})
		clock.Advance(30 * 24 * time.Hour)
		return c.Stats
	}
	a, b := run(), run()
	require.Equal(t, a, b)
	require.InDelta(t, 29, a.Outages, 15)
}

func TestChilledTemperatureModel(t *testing.T) {
	c, clock, up, _ := newTestCabinet(t, Faults{})
	temp, err := c.Temperature(3)
	require.NoError(t, err)
	require.InDelta(t, ChilledSetpointC, temp, 1e-9)
	_, err = c.Temperature(1)
	require.Error(t, err)
	c.HandleCommand(open("c1", 3, clock.Now()))
	clock.Advance(time.Minute)
	temp, _ = c.Temperature(3)
	require.InDelta(t, RoomC+(ChilledSetpointC-RoomC)*0.8825, temp, 0.01, "first order: e^(-1/8)")
	require.NotEqual(t, EvtFault, up.last().Type)
	// Open long enough to pass 6 °C: t = 8 min · ln(16/14) ≈ 1.07 min.
	clock.Advance(time.Minute)
	ev := up.last()
	require.Equal(t, EvtFault, ev.Type)
	require.Equal(t, FaultTempRange, ev.Fault)
	require.Greater(t, *ev.TempC, ChilledMaxC)
	st := c.State().Compartments[2]
	require.True(t, st.TempAlarm, "the state says so too, for a controller that lost the fault")
	require.Greater(t, *st.TempC, ChilledMaxC)
	require.NoError(t, c.Close(3))
	clock.Advance(2 * time.Hour)
	back := up.last()
	require.Equal(t, EvtTemp, back.Type, "back in range is reported")
	require.LessOrEqual(t, *back.TempC, ChilledMaxC)
	require.False(t, c.State().Compartments[2].TempAlarm)
	require.False(t, c.State().Compartments[0].TempAlarm, "an ambient compartment never")
}

func TestNewCabinetValidates(t *testing.T) {
	clock := NewManualClock(t0)
	_, err := NewCabinet(CabinetConfig{Site: "Lobby", Name: "a1", Compartments: []CompartmentSpec{{}}}, clock, &uplink{}, nil, streams(1))
	require.Error(t, err)
	_, err = NewCabinet(CabinetConfig{Site: "lobby", Name: "a1"}, clock, &uplink{}, nil, streams(1))
	require.Error(t, err)
	_, err = NewCabinet(CabinetConfig{Site: "lobby", Name: "a1", Compartments: []CompartmentSpec{{}}, Faults: Faults{DoorJamProbability: 2}},
		clock, &uplink{}, nil, streams(1))
	require.ErrorContains(t, err, "twin: cabinet a1: door jam probability must be between 0 and 1, got 2")
}

func TestFaultsValidate(t *testing.T) {
	tests := []struct {
		name    string
		faults  Faults
		problem string // "" for none
	}{
		{"none", Faults{}, ""},
		{"all at their limits", Faults{DoorJamProbability: 1, SensorErrorProbability: 1, DoorLeftOpenProbability: 1,
			UncommandedOpensPerDay: 3, LeftOpenFor: time.Minute, OutageMTBF: time.Hour, OutageMTTR: time.Minute}, ""},
		{"jam above 1", Faults{DoorJamProbability: 1.5}, "door jam probability must be between 0 and 1, got 1.5"},
		{"negative sensor error", Faults{SensorErrorProbability: -0.1}, "occupancy sensor error probability must be between 0 and 1, got -0.1"},
		{"left open NaN", Faults{DoorLeftOpenProbability: math.NaN()}, "probability a person leaves a door open must be between 0 and 1, got NaN"},
		{"negative uncommanded rate", Faults{UncommandedOpensPerDay: -1}, "uncommanded door openings per cabinet per day must be 0 or more, got -1"},
		{"infinite uncommanded rate", Faults{UncommandedOpensPerDay: math.Inf(1)}, "must be 0 or more, got +Inf"},
		{"negative left-open time", Faults{LeftOpenFor: -time.Second}, "how long a door is left open cannot be negative, got -1s"},
		{"negative MTBF", Faults{OutageMTBF: -time.Hour, OutageMTTR: time.Minute}, "mean time between cabinet outages cannot be negative, got -1h0m0s"},
		{"outages without a duration", Faults{OutageMTBF: time.Hour}, "cabinet outages need a mean outage duration above 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.faults.Validate()
			if tt.problem == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.problem)
		})
	}
	// Every problem at once, as a scenario's validator reports them.
	err := Faults{DoorJamProbability: 2, OutageMTTR: -time.Minute}.Validate()
	require.ErrorContains(t, err, "door jam probability")
	require.ErrorContains(t, err, "mean outage duration cannot be negative")
}

func TestShadowReconciles(t *testing.T) {
	s := &Shadow{Cabinet: "a1"}
	st := State{V: 1, Cabinet: "a1", Version: 5, Seq: 20, At: t0, Compartments: []CompartmentState{
		{Compartment: 1, Door: DoorLocked, Occupied: true},
		{Compartment: 2, Door: DoorLocked, Occupied: false},
		{Compartment: 3, Door: DoorOpen, Occupied: false},
		{Compartment: 4, Door: DoorJammed, Occupied: true},
	}}
	want := []Expectation{{Occupied: true}, {Occupied: true}, {}, {Occupied: true, OutOfService: true}}
	diffs, err := s.Reconcile(st, want, t0)
	require.NoError(t, err)
	require.Equal(t, []Difference{
		{Compartment: 2, Field: "occupied", Expected: "true", Reported: "false"},
		{Compartment: 3, Field: "door", Expected: "locked", Reported: "open"},
	}, diffs)
	require.Equal(t, "compartment 2 occupied: expected true, reported false", diffs[0].String())
	_, err = s.Reconcile(st, want, t0)
	require.ErrorIs(t, err, ErrStaleState, "the same report twice is stale")
	st.Version = 6
	st.Compartments = st.Compartments[:3]
	diffs, err = s.Reconcile(st, want, t0)
	require.NoError(t, err)
	require.Equal(t, "compartments", diffs[0].Field)
	st.Cabinet = "a2"
	st.Version = 7
	_, err = s.Reconcile(st, want, t0)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestSimLink(t *testing.T) {
	deliver := func(q LinkQuality, seed uint64) ([]int, LinkStats) {
		clock := NewManualClock(t0)
		l := NewSimLink(q, clock, rand.New(rand.NewPCG(seed, 0)))
		var got []int
		for i := 0; i < 1000; i++ {
			i := i
			l.Deliver(func() { got = append(got, i) })
			clock.Advance(time.Millisecond)
		}
		clock.Advance(time.Second)
		return got, l.Stats
	}
	perfect, st := deliver(LinkQuality{Latency: 50 * time.Millisecond}, 1)
	require.Len(t, perfect, 1000)
	for i, v := range perfect {
		require.Equal(t, i, v, "a perfect link keeps order")
	}
	require.Equal(t, LinkStats{Sent: 1000}, st)

	lossy, st := deliver(LinkQuality{Latency: 20 * time.Millisecond, Loss: 0.1, Duplication: 0.05, Reorder: 0.05}, 2)
	require.InDelta(t, 100, st.Lost, 40)
	require.InDelta(t, 45, st.Duplicated, 25)
	require.InDelta(t, 45, st.Reordered, 25)
	require.Equal(t, 1000-st.Lost+st.Duplicated, len(lossy))
	inversions := 0
	for i := 1; i < len(lossy); i++ {
		if lossy[i] < lossy[i-1] {
			inversions++
		}
	}
	require.Positive(t, inversions, "reordering happens")
	again, _ := deliver(LinkQuality{Latency: 20 * time.Millisecond, Loss: 0.1, Duplication: 0.05, Reorder: 0.05}, 2)
	require.Equal(t, lossy, again, "a seed reproduces the faults")
}

// TestLongCabinetNamesMakeValidEventIDs: a cabinet id may be 64 characters;
// its events' ids are still valid (they were not).
func TestLongCabinetNamesMakeValidEventIDs(t *testing.T) {
	up := &uplink{}
	clock := NewManualClock(t0)
	c, err := NewCabinet(CabinetConfig{Site: "s", Name: strings.Repeat("c", 64), Compartments: make([]CompartmentSpec, 2)},
		clock, up, &watcher{}, streams(1))
	require.NoError(t, err)
	c.HandleCommand(open("c1", 1, clock.Now()))
	require.NotEmpty(t, up.events)
	for _, ev := range up.events {
		require.NoError(t, ev.Validate())
	}
}

// TestCabinetRestartsFromItsMemory: a cabinet rebuilt from what it kept in
// non-volatile memory carries on: its events go on counting (the
// controller drops one whose seq it has seen), its state is newer, its
// compartments hold what they held, a jammed door is still jammed, and a
// command it answered before the restart is answered again, not executed
// again.
func TestCabinetRestartsFromItsMemory(t *testing.T) {
	c, clock, up, _ := newTestCabinet(t, Faults{})
	open1 := open("c1", 2, clock.Now())
	c.HandleCommand(open1)
	require.NoError(t, c.Place(2))
	require.NoError(t, c.Close(2))
	c.cfg.Faults.DoorJamProbability = 1
	c.HandleCommand(open("c2", 3, clock.Now()))
	mem := c.Memory()
	require.Equal(t, up.last().Seq, mem.Seq)
	require.Equal(t, []bool{false, true, false}, mem.Occupied)
	require.Equal(t, []bool{false, false, true}, mem.Jammed)
	require.Len(t, mem.Commands, 2)

	clock.Advance(time.Minute)
	up2, w2 := &uplink{}, &watcher{}
	again, err := NewCabinet(CabinetConfig{Site: "lobby", Name: "a1", Memory: &mem,
		Compartments: []CompartmentSpec{{}, {}, {Chilled: true}}}, clock, up2, w2, streams(1))
	require.NoError(t, err)
	again.Start()
	st := up2.states[0]
	require.Equal(t, mem.Seq, st.Seq)
	require.Greater(t, st.Version, mem.Version, "the restart is a change the shadow takes")
	require.True(t, st.Compartments[1].Occupied)
	require.Equal(t, DoorJammed, st.Compartments[2].Door)
	again.HandleCommand(open1) // the controller resends it: it never saw the ack
	require.Equal(t, []EventType{EvtAck}, up2.types(), "answered, not opened again")
	require.Empty(t, w2.opened)
	require.Equal(t, mem.Seq+1, up2.events[0].Seq, "the sequence goes on")
	require.Equal(t, fmt.Sprintf("a1-%d", mem.Seq+1), up2.events[0].ID)

	// Past the dedup window the memory of a command is gone, as it would be
	// without the restart.
	clock.Advance(10 * time.Minute)
	later, err := NewCabinet(CabinetConfig{Site: "lobby", Name: "a1", Memory: &mem,
		Compartments: []CompartmentSpec{{}, {}, {Chilled: true}}}, clock, &uplink{}, nil, streams(1))
	require.NoError(t, err)
	require.Empty(t, later.Memory().Commands)

	mem.Occupied = mem.Occupied[:2]
	_, err = NewCabinet(CabinetConfig{Site: "lobby", Name: "a1", Memory: &mem,
		Compartments: []CompartmentSpec{{}, {}, {}}}, clock, &uplink{}, nil, streams(1))
	require.ErrorContains(t, err, "twin: cabinet a1: its memory is of 2 compartments, not 3")
}
