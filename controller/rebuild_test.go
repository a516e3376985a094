package controller

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/twin"
	"github.com/stretchr/testify/require"
)

// chaos drives a rig with a long random history: announcements, deposits,
// pickups with right and wrong codes, lost acks, jams, nacks, uncommanded
// openings, flipped sensors, expiries, returns and operator resolutions.
func chaos(t *testing.T, r *rig, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 11))
	classes := []string{"S", "M", "L", "M-cold"}
	next := 0
	handled := 0 // commands in r.out.sent already answered
	ids := func(want State) []string {
		var out []string
		for id, p := range r.core.parcels {
			if p.state == want {
				out = append(out, id)
			}
		}
		// map order must not steer the history: sort
		for i := 1; i < len(out); i++ {
			for j := i; j > 0 && out[j] < out[j-1]; j-- {
				out[j], out[j-1] = out[j-1], out[j]
			}
		}
		return out
	}
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	for step := 0; step < steps; step++ {
		// The cabinets answer outstanding commands first, imperfectly.
		for ; handled < len(r.out.sent); handled++ {
			sc := r.out.sent[handled]
			ci, _ := r.core.cabinetIndex(sc.cabinet)
			cmd := r.core.liveCommand(ci, sc.cmd.ID)
			if cmd == nil || cmd.opened {
				continue
			}
			switch u := rng.Float64(); {
			case u < 0.04: // lost: the core will retry
			case u < 0.05:
				require.NoError(t, r.evt(sc.cabinet, twin.Event{Type: twin.EvtNack, Command: sc.cmd.ID, Reason: twin.NackExpired}))
			case u < 0.06:
				r.ack(sc)
				require.NoError(t, r.evt(sc.cabinet, twin.Event{Type: twin.EvtFault, Fault: twin.FaultJam, Compartment: sc.cmd.Compartment}))
			default:
				r.ack(sc)
				r.opened(sc)
				r.clock.Advance(time.Duration(1+rng.IntN(20)) * time.Second)
				occupied := cmd.purpose == PurposeDeposit
				if rng.Float64() < 0.05 {
					occupied = !occupied
				}
				r.closed(sc.cabinet, sc.cmd.Compartment, occupied)
			}
		}
		switch op := rng.IntN(12); op {
		case 0, 1:
			spec := ParcelSpec{Class: classes[rng.IntN(len(classes))]}
			if rng.IntN(5) == 0 {
				spec = ParcelSpec{LengthMm: 100 + rng.IntN(500), WidthMm: 100 + rng.IntN(300), HeightMm: 20 + rng.IntN(400)}
			}
			id := ""
			if rng.IntN(4) == 0 { // a refused or cancelled parcel brought back
				var again []string
				for fid, st := range r.core.finished {
					if st.Reofferable() {
						again = append(again, fid)
					}
				}
				slices.Sort(again)
				if len(again) > 0 {
					id = pick(again)
				}
			}
			if id == "" {
				next++
				id = "p" + itoa(uint64(next))
			}
			_, err := r.core.Announce(id, spec, "r")
			if err != nil && !errors.Is(err, ErrNoCapacity) {
				require.NoError(t, err)
			}
		case 2, 3:
			if l := append(ids(StateReserved), ids(StateAnnounced)...); len(l) > 0 {
				if rng.IntN(6) == 0 { // the courier withdraws it
					require.NoError(t, r.core.Cancel(pick(l)))
					break
				}
				_, err := r.core.StartDeposit(pick(l))
				if err != nil && !errors.Is(err, ErrNoCapacity) {
					require.NoError(t, err)
				}
			}
		case 4:
			if l := ids(StateAwaitingPickup); len(l) > 0 {
				id := pick(l)
				p := r.core.parcels[id]
				code := r.out.codes[id]
				tries := 1
				switch rng.IntN(8) {
				case 0, 1:
					code = "000000000001" // names slot 2, whoever is in it
				case 2:
					code = sameSlotWrong(t, code) // guesses at this parcel's code
					tries += rng.IntN(3)
				}
				for range tries {
					_, err := r.core.Pickup(r.core.cabinets[p.cabinet].name, code)
					if err != nil && !errors.Is(err, ErrWrongCode) && !errors.Is(err, ErrLockedOut) && !errors.Is(err, ErrCodeExpired) {
						require.NoError(t, err)
					}
				}
			}
		case 5:
			if l := ids(StateAwaitingReturn); len(l) > 0 {
				_, err := r.core.CollectReturn(pick(l))
				require.NoError(t, err)
			}
		case 6:
			if l := ids(StateException); len(l) > 0 {
				res := ResolveResume
				if rng.IntN(2) == 0 {
					res = ResolveRemoved
				}
				require.NoError(t, r.core.ResolveException(pick(l), res))
			}
		case 7:
			for i := 0; i < r.core.inv.Len(); i++ {
				id := allocator.CompartmentID(i)
				if r.core.inv.Status(id) == allocator.OutOfService && r.core.comps[i].parcel == nil {
					comp, _ := r.core.inv.Compartment(id)
					require.NoError(t, r.core.ReturnToService(r.core.cabinets[comp.Cabinet].name, comp.Slot))
					break
				}
			}
		case 8:
			if rng.IntN(25) == 0 { // a cabinet drops off the network or comes back
				cab := []string{"a1", "a2"}[rng.IntN(2)]
				require.NoError(t, r.core.CabinetOnline(cab, !r.core.inv.CabinetOnline(allocator.CabinetID(r.core.byName[cab]))))
			} else if rng.IntN(10) == 0 { // a rare uncommanded opening or sensor flip
				cab := []string{"a1", "a2"}[rng.IntN(2)]
				slot := 1 + rng.IntN(7)
				ci := r.core.byName[cab]
				id, _ := r.core.inv.CompartmentAt(allocator.CabinetID(ci), slot)
				if r.core.comps[id].cmd == nil {
					if rng.IntN(2) == 0 {
						require.NoError(t, r.evt(cab, twin.Event{Type: twin.EvtDoorOpened, Compartment: slot}))
						require.NoError(t, r.evt(cab, twin.Event{Type: twin.EvtDoorClosed, Compartment: slot, Occupied: ptr(r.core.comps[id].parcel != nil)}))
					} else {
						require.NoError(t, r.evt(cab, twin.Event{Type: twin.EvtOccupancy, Compartment: slot, Occupied: ptr(rng.IntN(2) == 0)}))
					}
				}
			} else if rng.IntN(3) == 0 { // a compartment or cabinet warms up, or is back in range
				cab := []string{"a1", "a2"}[rng.IntN(2)]
				slot := rng.IntN(8) // 0: the cabinet as a whole
				ev := twin.Event{Type: twin.EvtFault, Fault: twin.FaultTempRange, Compartment: slot, TempC: ptr(6.1)}
				if rng.IntN(2) == 0 {
					// Mostly a compartment that is out of range comes back.
					var warm []allocator.CompartmentID
					for i := range r.core.comps {
						if r.core.comps[i].warm {
							warm = append(warm, allocator.CompartmentID(i))
						}
					}
					if len(warm) > 0 && rng.IntN(4) > 0 {
						comp, _ := r.core.inv.Compartment(warm[rng.IntN(len(warm))])
						cab, slot = r.core.cabinets[comp.Cabinet].name, comp.Slot
					}
					ev = twin.Event{Type: twin.EvtTemp, Compartment: slot, TempC: ptr(5.4)}
				}
				require.NoError(t, r.evt(cab, ev))
			}
		default:
			r.clock.Advance(time.Duration(rng.ExpFloat64() * float64(3*time.Hour)))
		}
		require.NoError(t, r.checker.Err(), "step %d", step)
		if step%50 == 0 {
			require.NoError(t, CheckCore(r.core), "step %d", step)
		}
	}
}

func TestRebuildReproducesTheCoreExactly(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		r := newRig(t, testSettings())
		chaos(t, r, seed, 2000)
		r.healthy()
		events := r.log.Events()
		require.Greater(t, len(events), 1000)
		kinds := map[Kind]bool{}
		codeLocks := 0
		for _, e := range events {
			kinds[e.Kind] = true
			if e.Kind == LockedOut && e.Parcel != "" {
				codeLocks++
			}
		}
		require.Positive(t, codeLocks, "seed %d: the history should lock a code", seed)
		for _, k := range []Kind{Refused, ReservationLapsed, CommandRetried, CommandFailed, Deposited, DepositAborted,
			PickedUp, PickupAborted, Expired, Returned, ExceptionRaised, ExceptionResolved, AlarmRaised, AlarmCleared, OutOfService, CodeRejected, LockedOut, Cancelled} {
			require.True(t, kinds[k], "seed %d: the history should exercise %v", seed, k)
		}

		cfg := r.rebuildConfig()
		clock2 := twin.NewManualClock(r.clock.Now())
		cfg.Clock = clock2
		log2 := cfg.Log.(*MemoryLog)
		out2 := &recorder{codes: map[string]string{}, byKind: map[NotificationKind]int{}}
		cfg.Out = out2
		rebuilt, err := Rebuild(cfg, events)
		require.NoError(t, err)
		require.Equal(t, r.core.Snapshot(), rebuilt.Snapshot(), "seed %d", seed)
		require.NoError(t, CheckCore(rebuilt))

		// Both carry on identically: timers fire the same, with the same events.
		r.core.cfg.Rand = rand.New(rand.NewPCG(9, 9))
		rebuilt.cfg.Rand = rand.New(rand.NewPCG(9, 9))
		r.clock.Advance(100 * time.Hour)
		clock2.Advance(100 * time.Hour)
		require.Equal(t, r.core.Snapshot(), rebuilt.Snapshot())
		require.Equal(t, len(events)+log2.Len(), r.log.Len())
	}
}

func TestRebuildRefusesABrokenLog(t *testing.T) {
	r := newRig(t, testSettings())
	chaos(t, r, 5, 300)
	events := append([]Event(nil), r.log.Events()...)
	fresh := func() Config {
		cfg := r.cfg
		cfg.Inventory = testInventory(t)
		cfg.Log = &MemoryLog{}
		return cfg
	}
	events[10].Text = "tampered"
	_, err := Rebuild(fresh(), events)
	require.ErrorIs(t, err, ErrChainBroken)
}

func TestVerifyDetectsTampering(t *testing.T) {
	r := newRig(t, testSettings())
	r.deposit("p1", "S")
	r.deposit("p2", "M")
	good := r.log.Events()
	require.NoError(t, Verify(good))
	clone := func() []Event { return append([]Event(nil), good...) }
	tests := []struct {
		name   string
		tamper func([]Event) []Event
		at     int
	}{
		{"altered field", func(es []Event) []Event { es[5].Parcel = "p9"; return es }, 5},
		{"altered time", func(es []Event) []Event { es[3].At++; return es }, 3},
		{"altered digest", func(es []Event) []Event { es[7].Digest[0] ^= 1; return es }, 7},
		{"removed entry", func(es []Event) []Event { return append(es[:4], es[5:]...) }, 4},
		{"reordered entries", func(es []Event) []Event { es[2], es[3] = es[3], es[2]; return es }, 2},
		{"removed first", func(es []Event) []Event { return es[1:] }, 0},
		{"rehashed alone", func(es []Event) []Event {
			es[6].Text = "forged"
			c := NewChain()
			c.head, c.seq = es[5].Hash, es[5].Seq
			c.Link(&es[6]) // a forger recomputes this hash, but the next link breaks
			return es
		}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.tamper(clone()))
			require.ErrorIs(t, err, ErrChainBroken)
			var ce *ChainError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tt.at, ce.Index)
		})
	}
}

func TestCheckerCatchesViolations(t *testing.T) {
	for _, recall := range []bool{true, false} {
		t.Run(map[bool]string{true: "recalling", false: "not recalling"}[recall], func(t *testing.T) {
			r := newRig(t, testSettings())
			r.deposit("p1", "S")
			events := r.log.Events()
			var got *Violation
			k := NewChecker(CodeLimits{})
			require.True(t, k.Recall, "a checker recalls unless told not to")
			k.Recall = recall
			k.OnViolation = func(v *Violation) { got = v }
			for i := range events {
				k.Check(&events[i])
			}
			require.NoError(t, k.Err())
			// A forged door opening: a command id that never was.
			forged := Event{Kind: DoorOpened, Cabinet: 0, Compartment: 3, Command: "lobby-c999", CabinetSeq: 99, At: events[len(events)-1].At}
			c := NewChain()
			c.head, c.seq = events[len(events)-1].Hash, events[len(events)-1].Seq
			c.Link(&forged)
			k.Check(&forged)
			require.Error(t, k.Err())
			require.NotNil(t, got)
			require.Contains(t, got.Error(), "matched by a live command")
			if !recall {
				require.Empty(t, got.Recent)
				require.NotContains(t, got.Error(), "events before it")
				return
			}
			require.Contains(t, got.Error(), "events before it")
			require.Len(t, got.Recent, min(len(events), 16))
			last, recalled := events[len(events)-1], got.Recent[len(got.Recent)-1]
			require.Equal(t, last.Seq, recalled.Seq)
			require.Equal(t, last.Kind, recalled.Kind)
			require.Equal(t, last.Parcel, recalled.Parcel)
			require.Equal(t, last.At, recalled.At)
			require.Contains(t, got.Error(), last.String())
		})
	}
}

func TestRebuiltCoreResyncsCabinetSequences(t *testing.T) {
	r := newRig(t, testSettings())
	r.deposit("p1", "S")
	for range 3 { // heartbeats change nothing, so nothing of them is logged
		require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtHeartbeat}))
	}
	cfg := r.rebuildConfig()
	rebuilt, err := Rebuild(cfg, r.log.Events())
	require.NoError(t, err)
	require.Equal(t, r.core.Snapshot(), rebuilt.Snapshot(), "the snapshot holds what the log holds")

	next := r.seq["a1"] + 1
	ev := twin.Event{V: twin.ProtocolVersion, ID: "a1-e" + itoa(next), Seq: next, Type: twin.EvtHeartbeat, At: r.clock.Now()}
	require.NoError(t, rebuilt.HandleEvent("a1", ev))
	clock := cfg.Clock.(*twin.ManualClock)
	clock.Advance(3 * time.Second) // past ReorderWait: a held event would have raised its alarm by now
	require.Zero(t, rebuilt.Alarms()["sequence_gap"], "the heartbeats the log did not keep are not a gap")
	ev.Seq, ev.ID = next, "a1-again"
	require.ErrorIs(t, rebuilt.HandleEvent("a1", ev), ErrDuplicateEvent)

	ev.Seq, ev.ID = next+3, "a1-later"
	require.NoError(t, rebuilt.HandleEvent("a1", ev))
	clock.Advance(3 * time.Second)
	require.Equal(t, 1, rebuilt.Alarms()["sequence_gap"], "after the first event, a gap is a gap again")
}

// TestCheckerInvariants forges, after a real deposit, one event (or a few)
// that breaks each invariant, and requires the checker to name it.
func TestCheckerInvariants(t *testing.T) {
	r := newRig(t, testSettings())
	r.deposit("p1", "S")
	valid := r.log.Events()
	var loc int32 = -1
	var cabSeq uint64
	for _, e := range valid {
		if e.Kind == Deposited {
			loc = e.Compartment
		}
		cabSeq = max(cabSeq, e.CabinetSeq)
	}
	require.GreaterOrEqual(t, loc, int32(0))
	last := valid[len(valid)-1]
	at := last.At + int64(time.Second)
	other := (loc + 1) % 4
	authorize := Event{Kind: PickupAuthorized, Parcel: "p1", Cabinet: 0, Compartment: loc, At: at, Text: "code"}
	pickupCmd := Event{Kind: DoorCommanded, Parcel: "p1", Cabinet: 0, Compartment: loc, Command: "x1", At: at, Num: at + int64(time.Minute), Text: "pickup"}
	rejected := Event{Kind: CodeRejected, Cabinet: 0, Compartment: -1, At: at}
	guessed := Event{Kind: CodeRejected, Parcel: "p1", Cabinet: 0, Compartment: loc, At: at}
	codeLock := Event{Kind: LockedOut, Parcel: "p1", Cabinet: 0, Compartment: loc, At: at, Num: at + int64(time.Hour)}
	tests := []struct {
		name   string
		forged []Event
		want   string
	}{
		{"compartment twice", []Event{{Kind: Reserved, Parcel: "p2", Cabinet: 0, Compartment: loc, At: at}}, "a compartment holds at most one parcel"},
		{"parcel twice", []Event{{Kind: Reserved, Parcel: "p1", Cabinet: 0, Compartment: other, At: at}}, "a parcel is in at most one compartment"},
		{"pickup door without code", []Event{pickupCmd}, "a code opens only its own compartment"},
		{"pickup door elsewhere", []Event{authorize, {Kind: DoorCommanded, Parcel: "p1", Cabinet: 0, Compartment: other, Command: "x1", At: at, Num: at + 1, Text: "pickup"}}, "a code opens only its own compartment"},
		{"code used twice", []Event{authorize, authorize}, "a code opens once"},
		{"command id reused", []Event{authorize, pickupCmd, pickupCmd}, "command ids are unique"},
		{"opening without command", []Event{{Kind: DoorOpened, Cabinet: 0, Compartment: loc, Command: "never", At: at}}, "matched by a live command"},
		{"command opens twice", []Event{authorize, pickupCmd,
			{Kind: DoorOpened, Parcel: "p1", Cabinet: 0, Compartment: loc, Command: "x1", At: at},
			{Kind: DoorOpened, Parcel: "p1", Cabinet: 0, Compartment: loc, Command: "x1", At: at}}, "a command id opens at most once"},
		{"command opens again after its door closed", []Event{authorize, pickupCmd,
			{Kind: DoorOpened, Parcel: "p1", Cabinet: 0, Compartment: loc, Command: "x1", At: at},
			{Kind: DoorClosed, Parcel: "p1", Cabinet: 0, Compartment: loc, At: at},
			{Kind: DoorOpened, Parcel: "p1", Cabinet: 0, Compartment: loc, Command: "x1", At: at}}, "matched by a live command"},
		{"command opens another door", []Event{authorize, pickupCmd,
			{Kind: DoorOpened, Cabinet: 0, Compartment: other, Command: "x1", At: at}}, "a command opens only its compartment"},
		{"command opens after expiry", []Event{authorize, pickupCmd,
			{Kind: DoorOpened, Parcel: "p1", Cabinet: 0, Compartment: loc, Command: "x1", At: at + int64(time.Hour)}}, "before it expires"},
		{"uncommanded opening without alarm", []Event{{Kind: DoorOpened, Cabinet: 0, Compartment: loc, At: at}, {Kind: DoorClosed, Cabinet: 0, Compartment: loc, At: at}}, "no alarm followed"},
		{"notified twice", []Event{{Kind: Notified, Parcel: "p1", Cabinet: 0, Compartment: loc, At: at, Text: "arrival"}}, "notified exactly once"},
		{"notified twice, naming another compartment", []Event{{Kind: Notified, Parcel: "p1", Cabinet: 0, Compartment: other, At: at, Text: "arrival"}}, "notified exactly once"},
		{"notified twice across its return", []Event{
			{Kind: Expired, Parcel: "p1", Cabinet: 0, Compartment: loc, At: at},
			{Kind: Notified, Parcel: "p1", Cabinet: 0, Compartment: loc, At: at, Text: "expiry"},
			{Kind: Returned, Parcel: "p1", Cabinet: 0, Compartment: loc, At: at},
			{Kind: Notified, Parcel: "p1", Cabinet: -1, Compartment: -1, At: at, Text: "expiry"}}, "notified exactly once"},
		{"parcel twice, the second compartment free", []Event{{Kind: Reserved, Parcel: "p1", Cabinet: 0, Compartment: other, At: at}}, "a parcel is in at most one compartment"},
		{"picked up unnotified", []Event{{Kind: PickedUp, Parcel: "p9", Cabinet: 0, Compartment: other, At: at}}, "notified of its arrival"},
		{"deposited twice", []Event{{Kind: Deposited, Parcel: "p1", Cabinet: 0, Compartment: loc, At: at}}, "parcels are conserved"},
		{"cabinet sequence backwards", []Event{{Kind: OccupancyChanged, Cabinet: 0, Compartment: loc, CabinetSeq: cabSeq, At: at, Num: 1}}, "never go backwards"},
		{"keypad past its limit", []Event{rejected, rejected, rejected, rejected, rejected, rejected}, "keypad failures stay within limits"},
		{"code guessed past its limit", []Event{guessed, guessed, guessed, guessed}, "a code locks after 3 wrong guesses"},
		{"code locked too soon", []Event{guessed, guessed, codeLock}, "a code locks only after 3 wrong guesses"},
		{"code locked too long", []Event{guessed, guessed, guessed, {Kind: LockedOut, Parcel: "p1", Cabinet: 0, Compartment: loc, At: at, Num: at + int64(2*time.Hour)}}, "a code lockout lasts at most 1h0m0s"},
		{"locked code opens", []Event{guessed, guessed, guessed, codeLock, authorize}, "a locked code opens nothing"},
		{"guess at no live code", []Event{{Kind: CodeRejected, Parcel: "p9", Cabinet: 0, Compartment: other, At: at}}, "a rejected guess names only a live code"},
		{"keypad locked too long", []Event{{Kind: LockedOut, Cabinet: 0, Compartment: -1, At: at, Num: at + int64(25*time.Hour)}}, "a keypad lockout lasts at most 24h0m0s"},
		{"lapse of nothing", []Event{{Kind: ReservationLapsed, Parcel: "p7", Cabinet: 0, Compartment: other, At: at}}, "releases only a compartment it holds"},
		{"reservation of no compartment", []Event{{Kind: Reserved, Parcel: "p3", Cabinet: 0, Compartment: -1, At: at}}, "names a compartment that exists"},
		{"absurd compartment", []Event{{Kind: Reserved, Parcel: "p3", Cabinet: 0, Compartment: 1 << 30, At: at}}, "names a compartment that exists"},
		{"sequence of no cabinet", []Event{{Kind: OccupancyChanged, Cabinet: -1, Compartment: loc, CabinetSeq: cabSeq + 1, At: at}}, "names a cabinet that exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := NewChecker(CodeLimits{})
			for i := range valid {
				k.Check(&valid[i])
			}
			require.NoError(t, k.Err(), "the real history is clean")
			c := NewChain()
			c.head, c.seq = last.Hash, last.Seq
			for _, f := range tt.forged {
				c.Link(&f)
				k.Check(&f)
			}
			require.Error(t, k.Err())
			require.Contains(t, k.Err().Error(), tt.want)
		})
	}
	t.Run("chain", func(t *testing.T) {
		k := NewChecker(CodeLimits{})
		for i := range valid {
			k.Check(&valid[i])
		}
		forged := last
		forged.Seq++
		forged.Prev = last.Hash // linked, but its hash is not its content's
		k.Check(&forged)
		require.ErrorContains(t, k.Err(), "chain verifies")
		k = NewChecker(CodeLimits{})
		k.Rehash = false
		for i := range valid {
			k.Check(&valid[i])
		}
		k.Check(&last) // the same entry again
		require.ErrorContains(t, k.Err(), "chain links")
	})
}

// TestCheckerForgetsDeadCommands: the checker remembers a command until its
// door closes after opening, or, if it never opens (its opening was lost on
// the link, say), until it has expired and its compartment is commanded
// again. A long run does not grow it.
func TestCheckerForgetsDeadCommands(t *testing.T) {
	k := NewChecker(CodeLimits{})
	k.Rehash = false
	var seq uint64
	check := func(e Event) {
		seq++
		e.Seq, e.Cabinet = seq, 0
		k.Check(&e)
	}
	check(Event{Kind: Reserved, Parcel: "p1", Compartment: 2})
	minute := int64(time.Minute)
	for i := range 1000 {
		at := int64(i) * 2 * minute
		id := "c" + strconv.Itoa(i)
		check(Event{Kind: DoorCommanded, Parcel: "p1", Compartment: 2, Command: id, At: at, Num: at + minute, Text: "deposit"})
		if i%2 == 0 { // every other one opens and closes
			check(Event{Kind: DoorOpened, Parcel: "p1", Compartment: 2, Command: id, At: at + 1})
			check(Event{Kind: DoorClosed, Parcel: "p1", Compartment: 2, At: at + 2})
		}
	}
	require.NoError(t, k.Err())
	require.LessOrEqual(t, len(k.live), 2, "commands that can no longer open are forgotten")
	// One that expired unopened and opens after all is not live.
	check(Event{Kind: DoorOpened, Parcel: "p1", Compartment: 2, Command: "c997", At: 2000 * minute})
	require.ErrorContains(t, k.Err(), "matched by a live command")
}
