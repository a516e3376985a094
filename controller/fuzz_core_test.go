package controller

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lockertwin/lockertwin/twin"
)

// FuzzCoreOperations drives a core with any interleaving of API calls (with
// good and bad arguments), cabinet events and state reports, and the
// passing of time. The
// checker watches every event; after every call the core is consistent;
// and a refused call is refused with a typed error and changes nothing,
// except that a wrong code counts toward the keypad's and the code's
// limits (which is what refusing it means), and that a parcel refused for
// want of room has the refusal logged.
func FuzzCoreOperations(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 9, 0, 0, 10, 0, 0, 11, 1, 0, 2, 0, 0, 9, 0, 0, 10, 0, 0, 11, 0, 0})
	f.Add([]byte{0, 1, 3, 1, 1, 0, 9, 1, 0, 12, 200, 0, 10, 1, 0, 11, 1, 1, 12, 255, 9, 5, 1, 0, 6, 1, 1})
	f.Add([]byte{0, 2, 1, 1, 2, 0, 9, 2, 0, 10, 2, 0, 11, 2, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 4, 2, 0})
	f.Add([]byte{15, 3, 0, 14, 255, 0, 15, 3, 1, 15, 0, 0, 14, 7, 4, 15, 0, 1, 14, 8, 1})
	ids := []string{"p0", "p1", "p2", "p3", "bad id", ""}
	classes := []string{"S", "M", "L", "M-cold", "XL", ""}
	cabs := []string{"a1", "a2", "zz"}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 3*80 {
			in = in[:3*80]
		}
		r := newRig(t, testSettings())
		seqs := map[string]uint64{}
		for ; len(in) >= 3; in = in[3:] {
			op, a, b := in[0]%16, in[1], in[2]
			id, cab := ids[int(a)%len(ids)], cabs[int(b)%len(cabs)]
			before, n := r.core.Snapshot(), r.log.Len()
			var err error
			wrongCode := false
			switch op {
			case 0:
				_, err = r.core.Announce(id, ParcelSpec{Class: classes[int(b)%len(classes)]}, "r@example.org")
			case 1:
				_, err = r.core.StartDeposit(id)
			case 2:
				code := r.out.codes[id]
				switch b % 4 {
				case 1:
					if code != "" {
						code = sameSlotWrong(t, code)
					}
				case 2:
					code = "000000000001"
				case 3:
					code = "not a code"
				}
				_, err = r.core.Pickup(cabs[int(b>>2)%2], code)
				wrongCode = errors.Is(err, ErrWrongCode) || errors.Is(err, ErrLockedOut)
			case 3:
				if b%5 == 4 { // customer service sends a new code instead
					err = r.core.ReissueCode(id)
					break
				}
				qr, qerr := r.core.IssueQR(id)
				if qerr != nil || b%3 == 0 {
					qr = "LT1.forged"
				}
				_, err = r.core.PickupQR(cabs[int(b>>2)%2], qr)
			case 4:
				err = r.core.Cancel(id)
			case 5:
				_, err = r.core.CollectReturn(id)
			case 6:
				err = r.core.ResolveException(id, []Resolution{ResolveResume, ResolveRemoved, "shrug"}[int(b)%3])
			case 7:
				err = r.core.ReturnToService(cab, int(a%9))
			case 8:
				err = r.core.CabinetOnline(cab, b%2 == 0)
			case 9, 10, 11: // the cabinet answers the last command: ack, opened, closed
				if len(r.out.sent) == 0 {
					continue
				}
				sc := r.out.sent[len(r.out.sent)-1-int(a)%min(3, len(r.out.sent))]
				ev := twin.Event{Command: sc.cmd.ID, Compartment: sc.cmd.Compartment}
				switch op {
				case 9:
					ev.Type = twin.EvtAck
				case 10:
					ev.Type = twin.EvtDoorOpened
				case 11:
					ev.Type, ev.Command, ev.Occupied = twin.EvtDoorClosed, "", ptr(b%2 == 1)
				}
				seqs[sc.cabinet]++
				ev.V, ev.Seq, ev.At = twin.ProtocolVersion, seqs[sc.cabinet], r.clock.Now()
				ev.ID = sc.cabinet + "-f" + strconv.FormatUint(seqs[sc.cabinet], 10)
				if b&0x80 != 0 {
					ev.Seq-- // a repeat, or a sequence number gone back
				}
				err = r.core.HandleEvent(sc.cabinet, ev)
			case 12:
				r.clock.Advance(time.Duration(a) * time.Duration(b) * time.Minute) // up to 45 days
			case 13:
				r.clock.Advance(time.Duration(a) * time.Second)
			case 14: // a state report, right or wrong, fresh or stale
				st := twin.State{V: twin.ProtocolVersion, Cabinet: cab, Version: uint64(a % 8), Seq: seqs[cab] - uint64(b%3), At: r.clock.Now(), Firmware: "fz"}
				for i := range int(a % 9) {
					door := []twin.DoorState{twin.DoorLocked, twin.DoorOpen, twin.DoorJammed, "ajar"}[(int(b)+i)%4]
					cs := twin.CompartmentState{Compartment: i + 1, Door: door, Occupied: (int(b)>>i)&1 == 1}
					if (int(a)>>i)&1 == 1 { // a chilled one's reading, in range or out
						temp := 3 + float64(b%5)
						cs.TempC, cs.TempAlarm = &temp, temp > 6
					}
					st.Compartments = append(st.Compartments, cs)
				}
				err = r.core.HandleState(cab, st)
			case 15: // a compartment (0: the cabinet) out of its temperature range, or back
				temp := 7.5
				ev := twin.Event{Type: twin.EvtFault, Fault: twin.FaultTempRange, Compartment: int(a % 9), TempC: &temp}
				if b%2 == 1 {
					temp = 5
					ev = twin.Event{Type: twin.EvtTemp, Compartment: int(a % 9), TempC: &temp}
				}
				seqs[cab]++
				ev.V, ev.Seq, ev.At = twin.ProtocolVersion, seqs[cab], r.clock.Now()
				ev.ID = cab + "-f" + strconv.FormatUint(seqs[cab], 10)
				err = r.core.HandleEvent(cab, ev)
			}
			require.NoError(t, r.checker.Err())
			require.NoError(t, CheckCore(r.core))
			if err == nil {
				continue
			}
			require.NotEqual(t, "internal", ErrorCode(err), "op %d: %v", op, err)
			if wrongCode {
				for _, e := range r.log.Events()[n:] {
					require.Contains(t, []Kind{CodeRejected, LockedOut, AlarmRaised}, e.Kind, "a wrong code logs only its count and lockouts")
				}
				continue
			}
			if errors.Is(err, ErrNoCapacity) { // not bad input: the allocator's answer, which the log keeps
				for _, e := range r.log.Events()[n:] {
					require.Contains(t, []Kind{Announced, Refused}, e.Kind, "a refusal logs only itself (and the announcement it answers)")
				}
				continue
			}
			require.Equal(t, n, r.log.Len(), "op %d refused (%v) logs nothing", op, err)
			require.Equal(t, before, r.core.Snapshot(), "op %d refused (%v) changes nothing", op, err)
		}
		require.NoError(t, Verify(r.log.Events()))
	})
}
