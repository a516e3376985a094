package controller

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lockertwin/lockertwin/twin"
)

// TestRepeatedEventIDs: an event whose id one of the cabinet's last
// idWindowLen events had, or an event held for a gap has, is a duplicate
// whatever its sequence number, and changes nothing.
func TestRepeatedEventIDs(t *testing.T) {
	r := newRig(t, testSettings())
	send := func(seq uint64, id string) error {
		return r.core.HandleEvent("a2", twin.Event{V: twin.ProtocolVersion, ID: id, Seq: seq, Type: twin.EvtHeartbeat, At: r.clock.Now()})
	}
	for i := uint64(1); i <= 20; i++ {
		require.NoError(t, send(i, "h"+itoa(i)))
	}
	before, n := r.core.Snapshot(), r.log.Len()
	tests := []struct {
		name   string
		seq    uint64
		id     string
		behind bool // ErrSequenceBehind, not a copy
	}{
		{"the last event's id, next number", 21, "h20", false},
		{"the oldest id in the window", 21, "h" + itoa(20-idWindowLen+1), false},
		{"the last event's id, a later number (a gap)", 25, "h20", false},
		{"the last event's id and number", 20, "h20", false},
		{"the last event's number, a new id", 20, "h99", true},
		{"an early number, a new id (a cabinet counting again from 1)", 1, "h1-after-reset", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := send(tt.seq, tt.id)
			require.ErrorIs(t, err, ErrDuplicateEvent)
			require.Equal(t, tt.behind, errors.Is(err, ErrSequenceBehind), "%v", err)
			require.Equal(t, "duplicate_event", ErrorCode(err))
			require.Equal(t, n, r.log.Len(), "nothing logged")
			require.Equal(t, before, r.core.Snapshot(), "nothing changed")
		})
	}

	// An id older than the window is a new event: the window is bounded.
	require.NoError(t, send(21, "h"+itoa(20-idWindowLen)))

	// Held for a gap (22 missing), an event's id is taken: neither a later
	// event nor the missing one may carry it.
	require.NoError(t, send(23, "g23"))
	require.ErrorIs(t, send(24, "g23"), ErrDuplicateEvent)
	require.ErrorIs(t, send(22, "g23"), ErrDuplicateEvent)
	require.NoError(t, send(22, "g22"), "the missing event fills the gap")
	require.NoError(t, send(24, "g24"), "23 was handled behind 22, so 24 is next")
	r.clock.Advance(time.Minute)
	require.Zero(t, r.core.Alarms()["sequence_gap"], "the gap filled in time")
	require.ErrorIs(t, send(25, "g23"), ErrDuplicateEvent, "the held event's id, now handled")
	r.healthy()
}

// TestIDPrint: the fingerprint is a fixed function of the id (a run
// repeats), never 0 (an empty slot), and tells apart the ids cabinets make.
func TestIDPrint(t *testing.T) {
	require.Equal(t, idPrint("a1-e1"), idPrint("a1-e"+strconv.Itoa(1)))
	seen := map[uint64]string{}
	add := func(id string) {
		f := idPrint(id)
		require.NotZero(t, f, id)
		prev, dup := seen[f]
		require.False(t, dup, "%q and %q share a fingerprint", prev, id)
		seen[f] = id
	}
	for i := range 200_000 {
		add("lobby-a1-e" + strconv.Itoa(i))
	}
	long := make([]byte, twin.MaxIDLen)
	for i := range long {
		long[i] = 'x'
	}
	for n := 1; n <= twin.MaxIDLen; n++ { // every length, and one byte changed at every place
		add(string(long[:n]))
		for i := range n {
			b := append([]byte(nil), long[:n]...)
			b[i] = 'y'
			add(string(b))
		}
	}
	require.Len(t, seen, 200_000+twin.MaxIDLen+twin.MaxIDLen*(twin.MaxIDLen+1)/2)
}

// TestIDWindowIsExact: the window answers as a list of the last 16 prints
// would, for repeats inside it and just outside it, and for prints whose
// tags match but which differ (the tag is only a filter).
func TestIDWindowIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var w idWindow
	var last []uint64 // the reference: the last idWindowLen added
	for step := range 20_000 {
		var f uint64
		switch rng.IntN(4) {
		case 0: // anything
			f = rng.Uint64() | 1
		case 1, 2: // a recent one, in the window or up to 8 past it
			if len(last) > 0 {
				f = last[max(0, len(last)-1-rng.IntN(idWindowLen+8))]
			} else {
				f = 1
			}
		case 3: // the same tag as a recent one, another print
			if len(last) > 0 {
				f = last[len(last)-1-rng.IntN(min(len(last), idWindowLen))] ^ 1<<(1+rng.IntN(47))
			} else {
				f = 3
			}
		}
		want := slices.Contains(last[max(0, len(last)-idWindowLen):], f)
		require.Equal(t, want, w.has(f), "step %d", step)
		if !want {
			w.add(f)
			last = append(last, f)
		}
	}
}

// FuzzCabinetEvents: what cabinets send is outside input. Any sequence of
// events (any type, repeated or reused ids, sequence numbers that repeat,
// go back or skip, compartments that do not exist, commands that are not
// live, wrong occupancy) never makes the core panic or break an invariant;
// an event refused is refused with a typed error and changes nothing.
func FuzzCabinetEvents(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 1, 1, 2, 2, 1, 2, 2, 3, 3, 3, 9, 0})
	f.Add([]byte{1, 0, 0, 0, 1, 0, 0, 0, 2, 200, 5, 7, 7, 7, 7, 7})
	f.Add([]byte{8, 1, 1, 1, 8, 1, 1, 1, 8, 0, 1, 1, 8, 255, 1, 1})
	types := []twin.EventType{twin.EvtAck, twin.EvtNack, twin.EvtDoorOpened, twin.EvtDoorClosed, twin.EvtOccupancy,
		twin.EvtTemp, twin.EvtFault, twin.EvtPin, twin.EvtHeartbeat}
	faults := []string{twin.FaultJam, twin.FaultDoorLeftOpen, twin.FaultSensor, twin.FaultUncommanded, twin.FaultPowerRestored, "boom"}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 4*64 {
			in = in[:4*64]
		}
		r := newRig(t, testSettings())
		r.deposit("p1", "S")
		r.startDeposit("p2", "M") // a live command to ack, open or refuse
		seq := r.seq["a1"]
		for ; len(in) >= 4; in = in[4:] {
			kind, step, id, x := in[0], in[1], in[2], in[3]
			seq = uint64(int64(seq) + int64(step%8) - 2) // repeats, goes back, skips
			ev := twin.Event{V: twin.ProtocolVersion, Seq: seq, At: r.clock.Now(), ID: "a1-" + strconv.Itoa(int(id%24)),
				Type: types[int(kind)%len(types)], Compartment: int(x % 12)}
			if x&0x10 != 0 && len(r.out.sent) > 0 {
				ev.Command = r.out.last().cmd.ID
			} else if x&0x20 != 0 {
				ev.Command = "c-forged"
			}
			ev.Occupied = ptr(x&0x40 != 0)
			ev.Reason, ev.Fault = twin.NackJammed, faults[int(x>>4)%len(faults)]
			ev.TempC = ptr(float64(x%100) - 20)
			ev.Code = r.out.codes["p1"]
			if x&0x80 != 0 {
				ev.Code = sameSlotWrong(t, ev.Code)
			}
			before, n := r.core.Snapshot(), r.log.Len()
			err := r.core.HandleEvent("a1", ev)
			if err != nil {
				require.True(t, errors.Is(err, ErrBadRequest) || errors.Is(err, ErrDuplicateEvent) || errors.Is(err, ErrUnknownCompartment), "%v", err)
				require.Equal(t, n, r.log.Len(), "a refused event logs nothing: %v", err)
				require.Equal(t, before, r.core.Snapshot(), "a refused event changes nothing: %v", err)
			}
			r.clock.Advance(time.Duration(x%32) * time.Second)
		}
		r.clock.Advance(time.Hour)
		require.NoError(t, r.checker.Err())
		require.NoError(t, CheckCore(r.core))
		require.NoError(t, Verify(r.log.Events()))
	})
}
