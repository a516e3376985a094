package controller

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/twin"
	"github.com/stretchr/testify/require"
)

func TestHappyLifecycle(t *testing.T) {
	r := newRig(t, testSettings())
	res, err := r.core.Announce("p1", ParcelSpec{Class: "M"}, "ana@example.org")
	require.NoError(t, err)
	require.Equal(t, "a1", res.Cabinet)
	require.Equal(t, "M", res.Class)
	require.Equal(t, epoch.Add(4*time.Hour), res.Until)
	require.Equal(t, StateReserved, r.state("p1"))

	door, err := r.core.StartDeposit("p1")
	require.NoError(t, err)
	require.Equal(t, StateDepositOpening, r.state("p1"))
	sc := r.out.last()
	require.Equal(t, "a1", sc.cabinet)
	require.Equal(t, twin.CmdOpen, sc.cmd.Type)
	require.Equal(t, door.Command, sc.cmd.ID)
	require.Equal(t, "lobby-cmd-1", door.Command, "the site's first command; not to be read as a cabinet's name")
	require.Equal(t, res.Compartment, sc.cmd.Compartment)
	require.Equal(t, 60*time.Second, sc.cmd.ExpiresAt.Sub(sc.cmd.IssuedAt))
	require.NoError(t, sc.cmd.Validate())

	r.ack(sc)
	r.opened(sc)
	require.Equal(t, StateDepositOpen, r.state("p1"))
	r.closed("a1", sc.cmd.Compartment, true)
	require.Equal(t, StateAwaitingPickup, r.state("p1"))
	require.Len(t, r.out.notes, 1)
	note := r.out.notes[0]
	require.Equal(t, NotifyArrival, note.Kind)
	require.Equal(t, "ana@example.org", note.Recipient)
	require.Len(t, note.Code, CodeDigits)
	require.Equal(t, epoch.Add(72*time.Hour), note.Deadline)

	r.clock.Advance(3 * time.Hour)
	got, err := r.core.Pickup("a1", note.Code[:4]+" "+note.Code[4:8]+" "+note.Code[8:])
	require.NoError(t, err)
	require.Equal(t, PickupResult{Parcel: "p1", Cabinet: "a1", Compartment: res.Compartment}, got)
	require.Equal(t, StatePickupOpening, r.state("p1"))
	r.doorCycle(false)
	require.Equal(t, StatePickedUp, r.state("p1"))
	require.Equal(t, allocator.Free, r.core.Inventory().Status(0+allocator.CompartmentID(0)))
	require.Equal(t, 0, r.core.ActiveParcels())
	require.Equal(t, []Kind{Announced, Reserved, DoorCommanded, CommandAcked, DoorOpened, DoorClosed, Deposited,
		CodeIssued, Notified, PickupAuthorized, DoorCommanded, CommandAcked, DoorOpened, DoorClosed, PickedUp}, r.kinds())
	r.healthy()

	// The plain code is nowhere in the log.
	for _, e := range r.log.Events() {
		require.NotContains(t, e.String(), note.Code)
		require.NotContains(t, string(e.AppendCanonical(nil)), note.Code)
	}
	// A used code opens nothing.
	_, err = r.core.Pickup("a1", note.Code)
	require.ErrorIs(t, err, ErrWrongCode)
}

func TestReservationLapsesAndIsRenewedAtDeposit(t *testing.T) {
	r := newRig(t, testSettings())
	_, err := r.core.Announce("p1", ParcelSpec{Class: "L"}, "x")
	require.NoError(t, err)
	require.Equal(t, 1, r.core.Inventory().Count(allocator.Reserved))
	r.clock.Advance(4*time.Hour - time.Second)
	require.Equal(t, StateReserved, r.state("p1"))
	r.clock.Advance(time.Second)
	require.Equal(t, StateAnnounced, r.state("p1"))
	require.Equal(t, 0, r.core.Inventory().Count(allocator.Reserved))
	_, err = r.core.StartDeposit("p1")
	require.NoError(t, err)
	require.Equal(t, StateDepositOpening, r.state("p1"))
	r.doorCycle(true)
	require.Equal(t, StateAwaitingPickup, r.state("p1"))
	r.healthy()
}

func TestReminderThenExpiryThenReturn(t *testing.T) {
	r := newRig(t, testSettings())
	r.deposit("p1", "S")
	r.clock.Advance(24 * time.Hour)
	require.Equal(t, 1, r.out.byKind[NotifyReminder])
	r.clock.Advance(47 * time.Hour)
	require.Equal(t, StateAwaitingPickup, r.state("p1"))
	require.Equal(t, 1, r.out.byKind[NotifyReminder], "exactly one reminder")
	r.clock.Advance(time.Hour)
	require.Equal(t, StateAwaitingReturn, r.state("p1"))
	require.Equal(t, 1, r.out.byKind[NotifyExpiry])
	_, err := r.core.Pickup("a1", r.out.codes["p1"])
	require.ErrorIs(t, err, ErrWrongCode, "an expired parcel's code is gone")

	_, err = r.core.CollectReturn("p1")
	require.NoError(t, err)
	require.Equal(t, StateReturnOpening, r.state("p1"))
	r.doorCycle(false)
	require.Equal(t, StateReturned, r.state("p1"))
	require.Equal(t, 1, r.out.byKind[NotifyReturned])
	require.Equal(t, r.core.Inventory().Len(), r.core.Inventory().Count(allocator.Free))
	r.healthy()
}

// A parcel awaiting pickup has one deadline queued at a time, the reminder
// and then the expiry: the expiry must come (72 h after the deposit)
// however the reminder went in its first day.
func TestTheExpiryComesWhateverBecameOfTheReminder(t *testing.T) {
	for _, tc := range []struct {
		name      string
		firstDay  func(r *rig, log *refusingLog)
		reminders int
	}{
		{"it was sent", func(r *rig, _ *refusingLog) { r.clock.Advance(24 * time.Hour) }, 1},
		{"it could not be logged", func(r *rig, log *refusingLog) {
			log.refuse = true
			r.clock.Advance(24 * time.Hour)
			log.refuse = false
		}, 0},
		{"it fell due while the door was open for pickup", func(r *rig, _ *refusingLog) {
			r.clock.Advance(24*time.Hour - 2*time.Second)
			_, err := r.core.Pickup("a1", r.out.codes["p1"])
			require.NoError(t, err)
			r.doorCycle(true) // open 5 s, over the reminder's time; left inside: a new code, the same deadline
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &refusingLog{}
			r := newRig(t, testSettings(), func(c *Config) { c.Log = log })
			r.log = &log.MemoryLog
			r.deposit("p1", "S")
			tc.firstDay(r, log)
			require.Equal(t, tc.reminders, r.out.byKind[NotifyReminder])
			r.clock.Advance(47 * time.Hour)
			require.Equal(t, StateAwaitingPickup, r.state("p1"))
			r.clock.Advance(time.Hour)
			require.Equal(t, StateAwaitingReturn, r.state("p1"))
			require.Equal(t, 1, r.out.byKind[NotifyExpiry])
			r.healthy()
		})
	}
}

func TestChilledParcelsHaveTheirOwnWindow(t *testing.T) {
	r := newRig(t, testSettings())
	r.deposit("cold", "M-cold")
	r.deposit("warm", "M")
	r.clock.Advance(24 * time.Hour)
	require.Equal(t, StateAwaitingReturn, r.state("cold"))
	require.Equal(t, StateAwaitingPickup, r.state("warm"))
	r.healthy()
}

func TestRefusedWithTheAllocatorsReason(t *testing.T) {
	r := newRig(t, testSettings())
	for i := 0; i < 2; i++ {
		_, err := r.core.Announce("l"+itoa(uint64(i)), ParcelSpec{Class: "L"}, "x")
		require.NoError(t, err)
	}
	_, err := r.core.Announce("l3", ParcelSpec{Class: "L"}, "x")
	var refused *RefusedError
	require.ErrorAs(t, err, &refused)
	require.ErrorIs(t, err, ErrNoCapacity)
	require.Equal(t, allocator.ReasonAllBusy, refused.Reason)
	require.Equal(t, StateRefused, r.state("l3"))
	_, err = r.core.Announce("huge", ParcelSpec{LengthMm: 2000, WidthMm: 500, HeightMm: 500}, "x")
	require.ErrorAs(t, err, &refused)
	require.Equal(t, allocator.ReasonNoFittingClass, refused.Reason)
	r.healthy()
}

func TestDepositAbortedWhenTheDoorClosesEmpty(t *testing.T) {
	r := newRig(t, testSettings())
	r.startDeposit("p1", "S")
	r.doorCycle(false)
	require.Equal(t, StateReserved, r.state("p1"))
	require.Empty(t, r.out.notes)
	_, err := r.core.StartDeposit("p1")
	require.NoError(t, err)
	r.doorCycle(true)
	require.Equal(t, StateAwaitingPickup, r.state("p1"))
	r.healthy()
}

func TestPickupAbortedReissuesTheCode(t *testing.T) {
	r := newRig(t, testSettings())
	r.deposit("p1", "S")
	first := r.out.codes["p1"]
	_, err := r.core.Pickup("a1", first)
	require.NoError(t, err)
	r.doorCycle(true) // closed with the parcel still inside
	require.Equal(t, StateAwaitingPickup, r.state("p1"))
	require.Equal(t, 1, r.out.byKind[NotifyCodeReissued])
	second := r.out.codes["p1"]
	require.NotEqual(t, first, second)
	_, err = r.core.Pickup("a1", first)
	require.ErrorIs(t, err, ErrWrongCode, "the first code was single use")
	_, err = r.core.Pickup("a1", second)
	require.NoError(t, err)
	r.doorCycle(false)
	require.Equal(t, StatePickedUp, r.state("p1"))
	r.healthy()
}

func TestUnacknowledgedCommandIsRetriedThenFails(t *testing.T) {
	r := newRig(t, testSettings())
	r.startDeposit("p1", "S")
	id := r.out.last().cmd.ID
	r.clock.Advance(15 * time.Second)
	require.Len(t, r.out.sent, 2)
	require.Equal(t, id, r.out.sent[1].cmd.ID, "a retry resends the same id: the cabinet dedups")
	r.clock.Advance(15 * time.Second)
	require.Len(t, r.out.sent, 3)
	r.clock.Advance(15 * time.Second)
	require.Len(t, r.out.sent, 3, "bounded: three sends")
	info, err := r.core.Parcel("p1")
	require.NoError(t, err)
	require.Equal(t, StateException, info.State)
	require.Equal(t, "command_timeout", info.Exception)
	require.Equal(t, 1, r.core.Alarms()["command_failed"])
	// A door opening for the dead command now is an alarm, not a deposit.
	require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtDoorOpened, Compartment: r.out.last().cmd.Compartment, Command: id}))
	require.Equal(t, 1, r.core.Alarms()["late_or_unknown_command_open"])
	r.closed("a1", r.out.last().cmd.Compartment, false)
	r.healthy()

	// The operator resumes: the parcel is reserved again and can be deposited.
	require.NoError(t, r.core.ResolveException("p1", ResolveResume))
	require.Equal(t, StateReserved, r.state("p1"))
	_, err = r.core.StartDeposit("p1")
	require.NoError(t, err)
	r.doorCycle(true)
	require.Equal(t, StateAwaitingPickup, r.state("p1"))
	r.healthy()
}

func TestNackExpiredFailsIntoException(t *testing.T) {
	r := newRig(t, testSettings())
	r.startDeposit("p1", "S")
	require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtNack, Command: r.out.last().cmd.ID, Reason: twin.NackExpired}))
	info, _ := r.core.Parcel("p1")
	require.Equal(t, StateException, info.State)
	require.Equal(t, "command_expired", info.Exception)
	r.healthy()
}

func TestJamTakesTheCompartmentOutOfService(t *testing.T) {
	r := newRig(t, testSettings())
	r.deposit("p1", "L")
	code := r.out.codes["p1"]
	res, err := r.core.Pickup("a1", code)
	require.NoError(t, err)
	r.ack(r.out.last())
	require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtNack, Command: r.out.last().cmd.ID, Reason: twin.NackJammed}))
	require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtFault, Fault: twin.FaultJam, Compartment: res.Compartment}))
	info, _ := r.core.Parcel("p1")
	require.Equal(t, StateException, info.State)
	id, _ := r.core.Inventory().CompartmentAt(0, res.Compartment)
	require.Equal(t, allocator.OutOfService, r.core.Inventory().Status(id))
	require.Equal(t, allocator.Occupied, r.core.Inventory().Holding(id), "the parcel is still inside: not lost")
	require.Equal(t, map[string]int{"jam": 1}, r.core.Alarms(), "one incident, one alarm: not also command_failed")
	// Only L was free in cabinet a1; the jammed one is not offered again.
	res2, err := r.core.Announce("p2", ParcelSpec{Class: "L"}, "x")
	require.NoError(t, err)
	require.Equal(t, "a2", res2.Cabinet)
	r.healthy()

	// Staff recover the parcel by hand; after repair the door is free again.
	require.NoError(t, r.core.ResolveException("p1", ResolveRemoved))
	require.Equal(t, StateRemoved, r.state("p1"))
	require.NoError(t, r.core.ReturnToService("a1", res.Compartment))
	require.Equal(t, allocator.Free, r.core.Inventory().Status(id))
	r.healthy()
}

func TestDoorAlarms(t *testing.T) {
	r := newRig(t, testSettings())
	r.deposit("p1", "S")
	info, _ := r.core.Parcel("p1")
	// An uncommanded opening is an alarm (PickPoint 2020); closing empty
	// means the parcel is gone: an exception, never a silent loss.
	require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtDoorOpened, Compartment: info.Compartment}))
	require.Equal(t, 1, r.core.Alarms()["uncommanded_open"])
	id, _ := r.core.Inventory().CompartmentAt(0, info.Compartment)
	alarms, open := r.core.Conditions(id)
	require.True(t, open)
	require.Empty(t, alarms, "open, not yet left open")
	r.clock.Advance(2 * time.Minute)
	require.Equal(t, 1, r.core.Alarms()["door_left_open"])
	alarms, _ = r.core.Conditions(id)
	require.Equal(t, []string{ConditionLeftOpen}, alarms)
	require.Equal(t, map[string]int{ConditionLeftOpen: 1, ConditionOutOfRange: 0}, r.core.ConditionCounts())
	r.clock.Advance(10 * time.Minute)
	require.Equal(t, 1, r.core.Alarms()["door_left_open"], "one alarm per opening")
	require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtFault, Fault: twin.FaultDoorLeftOpen, Compartment: info.Compartment}))
	require.Equal(t, 1, r.core.Alarms()["door_left_open"], "the cabinet's own report of it, after the core's, adds none")
	r.closed("a1", info.Compartment, false)
	alarms, open = r.core.Conditions(id)
	require.False(t, open)
	require.Empty(t, alarms, "a door left open is over once it closes")
	require.Equal(t, map[string]int{ConditionLeftOpen: 0, ConditionOutOfRange: 0}, r.core.ConditionCounts())
	info, _ = r.core.Parcel("p1")
	require.Equal(t, StateException, info.State)
	require.Equal(t, "parcel_missing", info.Exception)
	r.healthy()

	// A sensor that flips with the door closed is a disagreement.
	r.deposit("p2", "S")
	info2, _ := r.core.Parcel("p2")
	require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtOccupancy, Compartment: info2.Compartment, Occupied: ptr(false)}))
	info2, _ = r.core.Parcel("p2")
	require.Equal(t, "sensor_disagreement", info2.Exception)
	r.healthy()
}

func TestBadInputChangesNothing(t *testing.T) {
	r := newRig(t, testSettings())
	r.deposit("p1", "S")
	before := r.core.Snapshot()
	n := r.log.Len()
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"unknown parcel deposit", func() error { _, err := r.core.StartDeposit("nope"); return err }, ErrUnknownParcel},
		{"unknown parcel info", func() error { _, err := r.core.Parcel("nope"); return err }, ErrUnknownParcel},
		{"deposit twice", func() error { _, err := r.core.StartDeposit("p1"); return err }, ErrWrongState},
		{"return before expiry", func() error { _, err := r.core.CollectReturn("p1"); return err }, ErrWrongState},
		{"resolve without exception", func() error { return r.core.ResolveException("p1", ResolveResume) }, ErrWrongState},
		{"announce same id, other details", func() error { _, err := r.core.Announce("p1", ParcelSpec{Class: "M"}, "x"); return err }, ErrDuplicateParcel},
		{"announce bad id", func() error { _, err := r.core.Announce("no spaces", ParcelSpec{Class: "S"}, "x"); return err }, ErrBadRequest},
		{"announce unknown class", func() error { _, err := r.core.Announce("p9", ParcelSpec{Class: "XL"}, "x"); return err }, ErrBadRequest},
		{"announce class and dims", func() error {
			_, err := r.core.Announce("p9", ParcelSpec{Class: "S", LengthMm: 1, WidthMm: 1, HeightMm: 1}, "x")
			return err
		}, ErrBadRequest},
		{"announce nothing", func() error { _, err := r.core.Announce("p9", ParcelSpec{}, "x"); return err }, ErrBadRequest},
		{"announce bad zone", func() error {
			_, err := r.core.Announce("p9", ParcelSpec{LengthMm: 1, WidthMm: 1, HeightMm: 1, Zone: "tepid"}, "x")
			return err
		}, ErrBadRequest},
		{"announce unknown preferred cabinet", func() error {
			_, err := r.core.Announce("p9", ParcelSpec{Class: "S", PreferCabinet: "zz"}, "x")
			return err
		}, ErrUnknownCabinet},
		{"pickup at unknown cabinet", func() error { _, err := r.core.Pickup("zz", "123456789012"); return err }, ErrUnknownCabinet},
		{"event from unknown cabinet", func() error { return r.core.HandleEvent("zz", twin.Event{}) }, ErrUnknownCabinet},
		{"invalid event", func() error { return r.core.HandleEvent("a1", twin.Event{V: 1, Type: "boom"}) }, ErrBadRequest},
		{"event for a compartment the cabinet lacks", func() error {
			return r.core.HandleEvent("a1", twin.Event{V: 1, ID: "x1", Seq: 99, Type: twin.EvtDoorOpened, Compartment: 42, At: r.clock.Now()})
		}, ErrUnknownCompartment},
		{"duplicate cabinet event", func() error {
			return r.core.HandleEvent("a1", twin.Event{V: 1, ID: "x2", Seq: r.seq["a1"], Type: twin.EvtDoorOpened, Compartment: 1, At: r.clock.Now()})
		}, ErrDuplicateEvent},
		{"cabinet event resent under a new number", func() error {
			// The door-opened event of p1's deposit again: handled, it would
			// log an uncommanded opening and its alarm.
			return r.core.HandleEvent("a1", twin.Event{V: 1, ID: "a1-e2", Seq: r.seq["a1"] + 1, Type: twin.EvtDoorOpened, Compartment: 1, At: r.clock.Now()})
		}, ErrDuplicateEvent},
		{"out-of-order cabinet event", func() error {
			return r.core.HandleEvent("a1", twin.Event{V: 1, ID: "x3", Seq: 1, Type: twin.EvtHeartbeat, At: r.clock.Now()})
		}, ErrDuplicateEvent},
		{"unknown resolution", func() error { return r.core.ResolveException("nope", "shrug") }, ErrUnknownParcel},
		{"return to service unknown cabinet", func() error { return r.core.ReturnToService("zz", 1) }, ErrUnknownCabinet},
		{"return to service unknown slot", func() error { return r.core.ReturnToService("a1", 77) }, ErrUnknownCompartment},
		{"return to service working door", func() error { return r.core.ReturnToService("a1", 1) }, ErrBadRequest},
		{"qr for unknown parcel", func() error { _, err := r.core.IssueQR("nope"); return err }, ErrUnknownParcel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			require.ErrorIs(t, err, tt.want)
			require.NotEqual(t, "internal", ErrorCode(err))
			require.Equal(t, n, r.log.Len(), "nothing logged")
			require.Equal(t, before, r.core.Snapshot(), "nothing changed")
		})
	}
	_, known := r.core.ParcelState("nope")
	require.False(t, known, "an unknown parcel has no state")
	// Announcing the same parcel with the same details is idempotent.
	res, err := r.core.Announce("p1", ParcelSpec{Class: "S"}, "p1@example.org")
	require.NoError(t, err)
	require.Equal(t, "p1", res.Parcel)
	require.Equal(t, n, r.log.Len())
	// A finished parcel's id stays taken.
	_, err = r.core.Pickup("a1", r.out.codes["p1"])
	require.NoError(t, err)
	r.doorCycle(false)
	_, err = r.core.Announce("p1", ParcelSpec{Class: "S"}, "p1@example.org")
	require.ErrorIs(t, err, ErrDuplicateParcel)
	_, err = r.core.StartDeposit("p1")
	require.ErrorIs(t, err, ErrWrongState)
	r.healthy()
}

func TestWrongCodesLockTheKeypad(t *testing.T) {
	r := newRig(t, testSettings())
	r.deposit("p1", "S")
	good := r.out.codes["p1"]
	for i := 1; i <= 4; i++ {
		_, err := r.core.Pickup("a1", "000000000000")
		require.ErrorIs(t, err, ErrWrongCode, "attempt %d", i)
	}
	_, err := r.core.Pickup("a1", "not a code")
	var lock *LockoutError
	require.ErrorAs(t, err, &lock, "the fifth failure in 15 minutes locks")
	require.Equal(t, r.clock.Now().Add(15*time.Minute), lock.Until)
	_, err = r.core.Pickup("a1", good)
	require.ErrorIs(t, err, ErrLockedOut, "even the right code waits")
	require.Equal(t, 1, r.core.Alarms()["keypad_lockout"])
	// The recipient's app still opens the door with a QR: a keypad attacker
	// cannot lock recipients out.
	_, err = r.core.PickupQR("a1", "garbage")
	require.ErrorIs(t, err, ErrBadQR)
	qr, err := r.core.IssueQR("p1")
	require.NoError(t, err)
	_, err = r.core.PickupQR("a1", qr)
	require.NoError(t, err)
	r.doorCycle(true) // left inside: a new code is issued
	good = r.out.codes["p1"]
	// The other cabinet is not locked.
	_, err = r.core.Pickup("a2", "000000000000")
	require.ErrorIs(t, err, ErrWrongCode)
	r.clock.Advance(15 * time.Minute)
	_, err = r.core.Pickup("a1", good)
	require.NoError(t, err)
	r.healthy()
}

// sameSlotWrong is a wrong code naming the same compartment as code: the
// secret is one more.
func sameSlotWrong(t *testing.T, code string) string {
	n, err := strconv.ParseUint(code, 10, 64)
	require.NoError(t, err)
	return formatCode((n + codeSlots) % codeSpace)
}

// TestWrongCodesLockTheCode: the third wrong guess at one live code locks
// that code for an hour. The guesser is told "wrong code" as for an empty
// compartment; the recipient's right code is refused with the time it
// unlocks; the QR still opens; and guesses while it is locked count for
// the keypad only.
func TestWrongCodesLockTheCode(t *testing.T) {
	r := newRig(t, testSettings())
	r.deposit("p1", "S")
	r.deposit("p2", "S")
	good1, good2 := r.out.codes["p1"], r.out.codes["p2"]
	wrong1 := sameSlotWrong(t, good1)
	require.Equal(t, codeSlot(good1), codeSlot(wrong1))
	lockouts := func() (n int) {
		for _, e := range r.log.Events() {
			if e.Kind == LockedOut {
				n++
			}
		}
		return n
	}
	for i := 1; i <= 3; i++ {
		_, err := r.core.Pickup("a1", wrong1)
		require.ErrorIs(t, err, ErrWrongCode, "guess %d", i)
		require.NotErrorIs(t, err, ErrLockedOut, "guess %d: the guesser is not told", i)
		require.Equal(t, i/3, lockouts(), "guess %d", i)
	}
	last := r.log.Events()[r.log.Len()-2] // the lockout, then its alarm
	require.Equal(t, LockedOut, last.Kind)
	require.Equal(t, "p1", last.Parcel)
	require.Equal(t, r.clock.Now().Add(time.Hour).UnixNano(), last.Num)
	require.Equal(t, 1, r.core.Alarms()["code_lockout"])
	require.Zero(t, r.core.Alarms()["keypad_lockout"], "3 failures are under the keypad's 5")

	n := r.log.Len()
	_, err := r.core.Pickup("a1", good1)
	var lock *LockoutError
	require.ErrorAs(t, err, &lock, "the right code waits out the hour")
	require.Equal(t, LockoutError{Cabinet: "a1", Parcel: "p1", Until: r.clock.Now().Add(time.Hour)}, *lock)
	require.ErrorIs(t, err, ErrLockedOut)
	require.Equal(t, n, r.log.Len(), "refusing the right code logs nothing")
	require.Equal(t, StateAwaitingPickup, r.state("p1"))
	info, err := r.core.Parcel("p1")
	require.NoError(t, err)
	require.Equal(t, lock.Until, info.CodeLockedUntil, "an operator sees the lock")
	_, err = r.core.Pickup("a1", good2)
	require.NoError(t, err, "another parcel's code still opens")
	r.doorCycle(false)

	rebuiltSnapshot := func() Snapshot {
		cfg := r.rebuildConfig()
		cfg.Clock = twin.NewManualClock(r.clock.Now())
		rebuilt, err := Rebuild(cfg, r.log.Events())
		require.NoError(t, err)
		return rebuilt.Snapshot()
	}
	require.Equal(t, r.core.Snapshot(), rebuiltSnapshot(), "the lock is in the log")

	r.clock.Advance(20 * time.Minute) // out of the keypad's short window
	_, err = r.core.Pickup("a1", wrong1)
	require.ErrorIs(t, err, ErrWrongCode, "a wrong guess at a locked code is a wrong code")
	require.Equal(t, 1, lockouts())
	r.clock.Advance(41 * time.Minute) // the hour is over
	for range 2 {
		_, err = r.core.Pickup("a1", wrong1)
		require.ErrorIs(t, err, ErrWrongCode)
	}
	require.Equal(t, 1, lockouts(), "the guess while locked did not count: 2 since, not 3")
	info, err = r.core.Parcel("p1")
	require.NoError(t, err)
	require.Zero(t, info.CodeLockedUntil)
	require.Equal(t, r.core.Snapshot(), rebuiltSnapshot())
	_, err = r.core.Pickup("a1", good1)
	require.NoError(t, err)
	r.doorCycle(false)
	require.Equal(t, StatePickedUp, r.state("p1"))
	r.healthy()

	// The QR opens while the code is locked; a new code starts afresh.
	r.deposit("p3", "S")
	wrong3 := sameSlotWrong(t, r.out.codes["p3"])
	r.clock.Advance(20 * time.Minute)
	for range 3 {
		_, err = r.core.Pickup("a1", wrong3)
		require.ErrorIs(t, err, ErrWrongCode)
	}
	_, err = r.core.Pickup("a1", r.out.codes["p3"])
	require.ErrorIs(t, err, ErrLockedOut)
	qr, err := r.core.IssueQR("p3")
	require.NoError(t, err)
	_, err = r.core.PickupQR("a1", qr)
	require.NoError(t, err)
	r.doorCycle(true) // left inside: a new code, not locked
	_, err = r.core.Pickup("a1", r.out.codes["p3"])
	require.NoError(t, err)
	r.doorCycle(false)
	require.Equal(t, 2, r.core.Alarms()["code_lockout"])
	r.healthy()
}

func TestAttackerHammeringForAMonth(t *testing.T) {
	r := newRig(t, testSettings())
	failures, lockouts := 0, 0
	end := r.clock.Now().Add(31 * 24 * time.Hour)
	for r.clock.Now().Before(end) {
		_, err := r.core.Pickup("a1", "999999999999")
		switch {
		case errors.Is(err, ErrWrongCode):
			failures++
		case errors.Is(err, ErrLockedOut):
			lockouts++
		default:
			t.Fatalf("unexpected %v", err)
		}
		r.clock.Advance(20 * time.Second) // a guess every 20 s, day and night
	}
	lim := DefaultCodeLimits
	// Failures that locked the keypad are counted as rejected too.
	rejected := 0
	for _, e := range r.log.Events() {
		if e.Kind == CodeRejected && e.Cabinet == 0 {
			rejected++
		}
	}
	require.LessOrEqual(t, rejected, lim.MaxFailures(31*24*time.Hour))
	require.GreaterOrEqual(t, rejected, 300, "the limit, not the attacker, is what bounds it")
	require.LessOrEqual(t, AttackSuccessBound(lim, 200, 31*24*time.Hour), 1e-6)
	require.Positive(t, lockouts)
	t.Logf("31 days of guessing: %d rejected guesses (%d answered 'locked'), bound for 200 active parcels %.2g", rejected, lockouts, AttackSuccessBound(lim, 200, 31*24*time.Hour))
	r.healthy()
}

func TestAttackBoundArithmetic(t *testing.T) {
	lim := DefaultCodeLimits
	require.Equal(t, 300, lim.MaxFailures(30*24*time.Hour))
	require.Equal(t, 310, lim.MaxFailures(31*24*time.Hour))
	require.InDelta(t, 310.0/1_953_125_000, AttackSuccessBound(lim, 200, 31*24*time.Hour), 1e-15)
	require.InDelta(t, 1.5872e-7, AttackSuccessBound(lim, 200, 31*24*time.Hour), 1e-12)
	// A guess matches only the code of the compartment it names: the bound
	// is the same for a full cabinet of the largest size, and nil for none.
	require.Equal(t, AttackSuccessBound(lim, 200, 31*24*time.Hour), AttackSuccessBound(lim, 512, 31*24*time.Hour))
	require.Zero(t, AttackSuccessBound(lim, 0, 31*24*time.Hour))
	require.Equal(t, uint64(1_953_125_000), uint64(codeSecrets))
	// The naive scheme the REFERENCES warn about: 6 digits, 5 per 15 min.
	naive := 480.0 * 200 / 1e6
	require.InDelta(t, 0.096, naive, 0.001)
}

func TestCodesAreWellFormed(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"123456789012", true}, {"1234 5678 9012", true}, {"1234-5678-9012", true},
		{"12345678901", false}, {"1234567890123", false}, {"12345678901a", false}, {"", false},
		{"12345678901 ", false}, {"1234 5678 901", false}, {"١٢٣٤٥٦٧٨٩٠١٢", false},
	} {
		norm, ok := normalizeCode(tt.in)
		require.Equal(t, tt.ok, ok, tt.in)
		if ok {
			require.Equal(t, "123456789012", norm, tt.in)
		}
	}
	require.Equal(t, "000000000042", formatCode(42))
	require.Equal(t, "000000000000", formatCode(0))
	require.Equal(t, "999999999999", formatCode(codeSpace-1))
	for _, tt := range []struct {
		secret uint64
		slot   int
	}{{0, 1}, {0, 512}, {7, 3}, {codeSecrets - 1, 1}, {codeSecrets - 1, 512}} {
		n := drawCode(&repeating{vals: []uint64{tt.secret}}, tt.slot)
		require.Less(t, n, uint64(codeSpace))
		require.Equal(t, tt.slot, codeSlot(formatCode(n)), "secret %d slot %d", tt.secret, tt.slot)
		require.Equal(t, tt.secret, n/codeSlots)
	}
	// A draw past the last whole multiple of the secrets is drawn again.
	r := &repeating{vals: []uint64{math.MaxUint64, 7}}
	require.Equal(t, uint64(7*codeSlots+2), drawCode(r, 3))
	require.Equal(t, 2, r.i)
}

// TestCodesNameTheirCompartment: two parcels whose codes have the same
// secret still have distinct codes, each naming its compartment; a code
// with a parcel's secret and another compartment, or naming an empty
// compartment, is a wrong code and counts toward the lockout.
func TestEqualDigestComparesEveryByte(t *testing.T) {
	var a [32]byte
	for i := range a {
		a[i] = byte(3*i + 1)
	}
	b := a
	require.True(t, equalDigest(&a, &b))
	for i := range a {
		for _, bit := range []byte{0x01, 0x80} {
			c := a
			c[i] ^= bit
			require.False(t, equalDigest(&a, &c), "byte %d bit %#x", i, bit)
			require.False(t, equalDigest(&c, &a), "byte %d bit %#x", i, bit)
		}
	}
}

func TestCodesNameTheirCompartment(t *testing.T) {
	r := newRig(t, testSettings())
	r.core.cfg.Rand = &repeating{vals: []uint64{7}}
	r.deposit("p1", "S")
	r.deposit("p2", "S")
	c1, c2 := r.out.codes["p1"], r.out.codes["p2"]
	require.NotEqual(t, c1, c2, "one secret, two compartments")
	slots := map[string]int{}
	for _, n := range r.out.notes {
		if n.Kind == NotifyArrival {
			slots[n.Parcel] = n.Compartment
			require.Equal(t, n.Compartment, codeSlot(n.Code), n.Parcel)
		}
	}
	require.Len(t, slots, 2)

	// p1's secret with a compartment that holds nothing, and with p2's.
	empty := 1
	for empty == slots["p1"] || empty == slots["p2"] {
		empty++
	}
	for _, code := range []string{formatCode(7*codeSlots + uint64(empty-1)), formatCode(8*codeSlots + uint64(slots["p2"]-1))} {
		_, err := r.core.Pickup("a1", code)
		require.ErrorIs(t, err, ErrWrongCode, code)
	}
	require.Len(t, r.core.cabinets[0].fails, 2)
	for _, id := range []string{"p1", "p2"} {
		res, err := r.core.Pickup("a1", r.out.codes[id])
		require.NoError(t, err, id)
		require.Equal(t, id, res.Parcel)
		require.Equal(t, slots[id], res.Compartment)
	}
	r.healthy()
}

type repeating struct {
	vals []uint64
	i    int
}

func (r *repeating) Uint64() uint64 {
	v := r.vals[min(r.i, len(r.vals)-1)]
	r.i++
	return v
}

func TestQRPickup(t *testing.T) {
	r := newRig(t, testSettings())
	r.deposit("p1", "S")
	qr, err := r.core.IssueQR("p1")
	require.NoError(t, err)
	_, err = r.core.PickupQR("a2", qr)
	require.ErrorIs(t, err, ErrBadQR, "a QR opens only at its own cabinet")
	forged := qr[:len(qr)-2] + "AA"
	_, err = r.core.PickupQR("a1", forged)
	require.ErrorIs(t, err, ErrBadQR)
	res, err := r.core.PickupQR("a1", qr)
	require.NoError(t, err)
	require.Equal(t, "p1", res.Parcel)
	r.doorCycle(true) // aborted: a new code generation, the old QR is dead
	_, err = r.core.PickupQR("a1", qr)
	require.ErrorIs(t, err, ErrBadQR)
	qr2, err := r.core.IssueQR("p1")
	require.NoError(t, err)
	_, err = r.core.PickupQR("a1", qr2)
	require.NoError(t, err)
	r.doorCycle(false)
	require.Equal(t, StatePickedUp, r.state("p1"))
	_, err = r.core.PickupQR("a1", qr2)
	require.ErrorIs(t, err, ErrBadQR, "single use")
	r.healthy()
}

func TestKeypadPinGoesThroughPickup(t *testing.T) {
	r := newRig(t, testSettings())
	r.deposit("p1", "M")
	require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtPin, Code: r.out.codes["p1"]}))
	require.Equal(t, StatePickupOpening, r.state("p1"))
	require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtPin, Code: "111111111111"}), "a wrong pin is the cabinet's user's mistake, not the cabinet's")
	r.healthy()
}

// TestStalePinOpensNothing: a code typed before an outage and delivered
// after it would open a door for someone long gone. It opens nothing, is
// not a wrong guess, raises an alarm, and the code still works when typed
// again; a code typed within the limit (or by a cabinet whose clock runs
// a little behind) works.
func TestStalePinOpensNothing(t *testing.T) {
	r := newRig(t, testSettings())
	r.deposit("p1", "M")
	r.deposit("p2", "M")
	sent := len(r.out.sent)
	typed := r.clock.Now()
	r.clock.Advance(5*time.Minute + time.Second)
	pin := func(code string, at time.Time) error {
		r.seq["a1"]++
		ev := twin.Event{V: twin.ProtocolVersion, Seq: r.seq["a1"], At: at, ID: "a1-e" + itoa(r.seq["a1"]), Type: twin.EvtPin, Code: code}
		return r.core.HandleEvent("a1", ev)
	}
	require.NoError(t, pin(r.out.codes["p1"], typed))
	require.Equal(t, StateAwaitingPickup, r.state("p1"))
	require.Len(t, r.out.sent, sent, "no door commanded")
	require.Equal(t, 1, r.core.Alarms()["stale_pin"])
	require.Empty(t, r.core.cabinets[0].fails, "not a wrong guess")

	require.NoError(t, pin(r.out.codes["p1"], r.clock.Now().Add(-4*time.Minute)))
	require.Equal(t, StatePickupOpening, r.state("p1"), "typed 4 minutes ago: within the limit")
	require.NoError(t, pin(r.out.codes["p2"], r.clock.Now().Add(time.Minute)))
	require.Equal(t, StatePickupOpening, r.state("p2"), "a cabinet clock ahead of ours")
	r.healthy()
}

func TestCabinetStatusAndSequenceGaps(t *testing.T) {
	r := newRig(t, testSettings())
	require.NoError(t, r.core.CabinetOnline("a1", false))
	require.NoError(t, r.core.CabinetOnline("a1", false), "no change, no event")
	info, err := r.core.Announce("p1", ParcelSpec{Class: "S"}, "x")
	require.NoError(t, err)
	require.Equal(t, "a2", info.Cabinet, "nothing is reserved in a cabinet that cannot be reached")
	require.NoError(t, r.core.CabinetOnline("a1", true))
	info, err = r.core.Announce("p2", ParcelSpec{Class: "S"}, "x")
	require.NoError(t, err)
	require.Equal(t, "a1", info.Cabinet, "first-fit is back to the first cabinet")
	require.ErrorIs(t, r.core.CabinetOnline("zz", true), ErrUnknownCabinet)
	require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtHeartbeat}))
	r.seq["a1"] += 5
	require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtHeartbeat}))
	require.Zero(t, r.core.Alarms()["sequence_gap"], "held while the gap may still fill")
	r.clock.Advance(2 * time.Second)
	require.Equal(t, 1, r.core.Alarms()["sequence_gap"], "lost for good: an alarm, and the held event is handled")
	r.healthy()
}

func TestReorderedEventsAreHandledInSequence(t *testing.T) {
	r := newRig(t, testSettings())
	r.startDeposit("p1", "S")
	sc := r.out.last()
	mk := func(seq uint64, ev twin.Event) twin.Event {
		ev.V, ev.Seq, ev.At, ev.ID = 1, seq, r.clock.Now(), "a1-"+itoa(seq)
		return ev
	}
	ack := mk(1, twin.Event{Type: twin.EvtAck, Command: sc.cmd.ID})
	opened := mk(2, twin.Event{Type: twin.EvtDoorOpened, Compartment: sc.cmd.Compartment, Command: sc.cmd.ID})
	closed := mk(3, twin.Event{Type: twin.EvtDoorClosed, Compartment: sc.cmd.Compartment, Occupied: ptr(true)})
	require.NoError(t, r.core.HandleEvent("a1", ack))
	require.NoError(t, r.core.HandleEvent("a1", closed), "held: 2 is missing")
	require.Equal(t, StateDepositOpening, r.state("p1"))
	require.ErrorIs(t, r.core.HandleEvent("a1", closed), ErrDuplicateEvent, "held once")
	require.NoError(t, r.core.HandleEvent("a1", opened))
	require.Equal(t, StateAwaitingPickup, r.state("p1"), "2 then 3, in the cabinet's order")
	require.ErrorIs(t, r.core.HandleEvent("a1", opened), ErrDuplicateEvent)
	r.clock.Advance(time.Minute)
	require.Zero(t, r.core.Alarms()["sequence_gap"])
	require.Zero(t, r.core.Alarms()["late_or_unknown_command_open"])
	r.healthy()
}

func TestNewValidatesConfig(t *testing.T) {
	r := newRig(t, testSettings())
	good := r.cfg
	good.Inventory = testInventory(t)
	for _, tt := range []struct {
		name string
		mod  func(*Config)
	}{
		{"no site", func(c *Config) { c.Site = "" }},
		{"no inventory", func(c *Config) { c.Inventory = nil }},
		{"no clock", func(c *Config) { c.Clock = nil }},
		{"short key", func(c *Config) { c.CodeKey = []byte("short") }},
	} {
		cfg := good
		tt.mod(&cfg)
		_, err := New(cfg)
		require.Error(t, err, tt.name)
	}
}

func TestCancelReleasesTheReservation(t *testing.T) {
	r := newRig(t, testSettings())
	_, err := r.core.Announce("p1", ParcelSpec{Class: "L"}, "x")
	require.NoError(t, err)
	require.Equal(t, 1, r.core.Inventory().Count(allocator.Reserved))
	require.NoError(t, r.core.Cancel("p1"))
	require.Equal(t, StateCancelled, r.state("p1"))
	require.Equal(t, 0, r.core.Inventory().Count(allocator.Reserved))
	require.ErrorIs(t, r.core.Cancel("p1"), ErrWrongState)
	require.ErrorIs(t, r.core.Cancel("nope"), ErrUnknownParcel)
	r.deposit("p2", "S")
	require.ErrorIs(t, r.core.Cancel("p2"), ErrWrongState, "a deposited parcel is not cancelled")
	require.Empty(t, r.core.Exceptions())
	r.healthy()
}

func TestHandleStateReconcilesThroughTheShadow(t *testing.T) {
	r := newRig(t, testSettings())
	r.deposit("p1", "S")
	info, _ := r.core.Parcel("p1")
	st := twin.State{V: 1, Cabinet: "a1", Version: 1, Seq: 10, At: r.clock.Now()}
	for slot := 1; slot <= 7; slot++ {
		st.Compartments = append(st.Compartments, twin.CompartmentState{Compartment: slot, Door: twin.DoorLocked})
	}
	st.Compartments[info.Compartment-1].Occupied = true
	require.NoError(t, r.core.HandleState("a1", st))
	require.Zero(t, r.core.Alarms()["state_mismatch_occupied"])
	// After an outage the cabinet reports the parcel gone: an alarm, not a guess.
	st.Version, st.Compartments[info.Compartment-1].Occupied = 2, false
	require.NoError(t, r.core.HandleState("a1", st))
	require.Equal(t, 1, r.core.Alarms()["state_mismatch_occupied"])
	require.Equal(t, StateAwaitingPickup, r.state("p1"), "the controller does not guess")
	require.ErrorIs(t, r.core.HandleState("a1", st), twin.ErrStaleState)
	require.ErrorIs(t, r.core.HandleState("zz", st), ErrUnknownCabinet)
	st.Version, st.Cabinet = 3, "a2"
	require.ErrorIs(t, r.core.HandleState("a1", st), ErrBadRequest)
	r.healthy()
}

// TestUnsealedCoreNumbersButDoesNotChain: the simulator's unsealed core logs
// the same events with the same sequence numbers, only without hashes, and
// such a log does not pass for an audited one.
func TestUnsealedCoreNumbersButDoesNotChain(t *testing.T) {
	sealed := newRig(t, testSettings())
	unsealed := newRig(t, testSettings(), func(c *Config) { c.Unsealed = true })
	unsealed.checker.Rehash = false // as the simulator's checker: numbering is still checked
	for _, r := range []*rig{sealed, unsealed} {
		r.deposit("p1", "S")
		_, err := r.core.Pickup("a1", r.out.codes["p1"])
		require.NoError(t, err)
		r.doorCycle(false)
		require.Equal(t, StatePickedUp, r.state("p1"))
		require.NoError(t, r.checker.Err())
	}
	a, b := sealed.log.Events(), unsealed.log.Events()
	require.Len(t, b, len(a))
	for i := range a {
		require.NotZero(t, a[i].Hash)
		require.Zero(t, b[i].Hash)
		require.Zero(t, b[i].Prev)
		x, y := a[i], b[i]
		x.Prev, x.Hash = [32]byte{}, [32]byte{}
		require.Equal(t, x, y, "event %d", i)
	}
	require.NoError(t, Verify(a))
	require.ErrorIs(t, Verify(b), ErrChainBroken)
	_, err := Rebuild(unsealed.cfg, b)
	require.Error(t, err)
}

// TestResendWhenCabinetComesOnline: a cabinet that reports online gets the
// door commands it has not acknowledged again, as first sent, and no
// others; so does the cabinet of a core rebuilt after a restart.
func TestResendWhenCabinetComesOnline(t *testing.T) {
	r := newRig(t, testSettings())
	for _, id := range []string{"p1", "p2", "p3"} {
		_, err := r.core.Announce(id, ParcelSpec{Class: "S"}, "r")
		require.NoError(t, err)
		_, err = r.core.StartDeposit(id)
		require.NoError(t, err)
	}
	sent := append([]sentCommand(nil), r.out.sent...)
	require.Len(t, sent, 3)
	r.ack(sent[0]) // acknowledged: not awaited
	r.ack(sent[2])
	r.opened(sent[2])
	r.closed(sent[2].cabinet, sent[2].cmd.Compartment, true) // done
	for _, sc := range sent {
		require.Equal(t, "a1", sc.cabinet)
	}

	r.out.sent = nil
	require.NoError(t, r.core.CabinetOnline("a2", true))
	require.Empty(t, r.out.sent, "another cabinet's commands stay")
	require.NoError(t, r.core.CabinetOnline("a1", false))
	require.Empty(t, r.out.sent, "nothing is sent to a cabinet going away")
	require.NoError(t, r.core.CabinetOnline("a1", true))
	require.Equal(t, []sentCommand{sent[1]}, r.out.sent, "the same command: id, compartment, issue and expiry")

	cfg := r.rebuildConfig()
	out := &recorder{codes: map[string]string{}, byKind: map[NotificationKind]int{}}
	cfg.Out = out
	rebuilt, err := Rebuild(cfg, r.log.Events())
	require.NoError(t, err)
	require.Empty(t, out.sent, "rebuilding sends nothing")
	require.NoError(t, rebuilt.CabinetOnline("a1", true))
	require.Equal(t, []sentCommand{sent[1]}, out.sent)

	r.out.sent = nil
	r.ack(sent[1])
	require.NoError(t, r.core.CabinetOnline("a1", true))
	require.Empty(t, r.out.sent, "all acknowledged")
}

// TestHolding: what a compartment holds, for the site view: nothing, a
// reservation, a parcel awaiting pickup, then awaiting return once expired.
func TestHolding(t *testing.T) {
	r := newRig(t, testSettings())
	for id := range r.core.Inventory().Len() {
		_, _, ok := r.core.Holding(allocator.CompartmentID(id))
		require.False(t, ok, "empty at first")
	}
	_, _, ok := r.core.Holding(-1)
	require.False(t, ok)
	_, _, ok = r.core.Holding(allocator.CompartmentID(r.core.Inventory().Len()))
	require.False(t, ok)

	res, err := r.core.Announce("p1", ParcelSpec{Class: "S"}, "r")
	require.NoError(t, err)
	comp, ok := r.core.Inventory().CompartmentAt(allocator.CabinetID(0), res.Compartment)
	require.True(t, ok)
	require.Equal(t, "a1", res.Cabinet)
	holding := func() (string, State) {
		p, st, ok := r.core.Holding(comp)
		require.True(t, ok)
		return p, st
	}
	p, st := holding()
	require.Equal(t, "p1", p)
	require.Equal(t, StateReserved, st)
	_, err = r.core.StartDeposit("p1")
	require.NoError(t, err)
	r.doorCycle(true)
	_, st = holding()
	require.Equal(t, StateAwaitingPickup, st)
	r.clock.Advance(testSettings().PickupWindow + time.Minute)
	_, st = holding()
	require.Equal(t, StateAwaitingReturn, st)
}

// TestLongSiteNamesMakeValidCommandIDs: a site id may be 64 characters; the
// command ids its core makes from it are still valid (they were not).
func TestLongSiteNamesMakeValidCommandIDs(t *testing.T) {
	r := newRig(t, testSettings(), func(c *Config) { c.Site = strings.Repeat("s", 64) })
	r.deposit("p1", "S")
	cmd := r.out.last().cmd
	require.NoError(t, cmd.Validate())
	r.healthy()
}

// reportState is cabinet cab's reported state at its current sequence
// number: every door locked, the given slots occupied.
func (r *rig) reportState(cab string, version uint64, occupied ...int) twin.State {
	st := twin.State{V: 1, Cabinet: cab, Version: version, Seq: r.seq[cab], At: r.clock.Now()}
	for slot := 1; slot <= 7; slot++ {
		st.Compartments = append(st.Compartments, twin.CompartmentState{Compartment: slot, Door: twin.DoorLocked,
			Occupied: slices.Contains(occupied, slot)})
	}
	return st
}

// TestLostDoorClosedIsSettledByTheReportedState: when a door_closed event
// is lost, the door-open alarm asks the cabinet for its state, and a report
// made after the opening that shows the door locked settles the operation
// as the event would have, with a DoorClosed marked as derived from state.
func TestLostDoorClosedIsSettledByTheReportedState(t *testing.T) {
	for _, tt := range []struct {
		name     string
		pickup   bool
		occupied bool
		want     State
	}{
		{"pickup, taken", true, false, StatePickedUp},
		{"pickup, left", true, true, StateAwaitingPickup},
		{"deposit, placed", false, true, StateAwaitingPickup},
		{"deposit, not placed", false, false, StateReserved},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, testSettings())
			if tt.pickup {
				r.deposit("p1", "S")
				require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtPin, Code: r.out.codes["p1"]}))
			} else {
				r.startDeposit("p1", "S")
			}
			sc := r.out.last()
			r.ack(sc)
			r.opened(sc)
			sent := len(r.out.sent)
			r.seq["a1"]++ // the door closes; its event is lost on the way
			r.clock.Advance(119 * time.Second)
			require.Len(t, r.out.sent, sent, "nothing is asked before the door is overdue")
			r.clock.Advance(time.Second)
			require.Equal(t, 1, r.core.Alarms()["door_left_open"])
			require.Len(t, r.out.sent, sent+1)
			sync := r.out.last()
			require.Equal(t, twin.CmdSync, sync.cmd.Type, "the overdue door makes the core ask for the state")
			require.Equal(t, "a1", sync.cabinet)
			require.NoError(t, sync.cmd.Validate())

			var occupied []int
			if tt.occupied {
				occupied = append(occupied, sc.cmd.Compartment)
			}
			require.NoError(t, r.core.HandleState("a1", r.reportState("a1", 5, occupied...)))
			require.Equal(t, tt.want, r.state("p1"))
			events := r.log.Events()
			var closed []Event
			for _, e := range events {
				if e.Kind == DoorClosed {
					closed = append(closed, e)
				}
			}
			last := closed[len(closed)-1]
			require.Equal(t, ClosedFromState, last.Text)
			require.Zero(t, last.CabinetSeq)
			require.Zero(t, r.core.Alarms()["state_mismatch_door"], "a door expected open and reported locked is not a mismatch")
			r.healthy()

			// The log alone rebuilds the same core.
			cfg := r.rebuildConfig()
			cfg.Clock = twin.NewManualClock(r.clock.Now())
			rebuilt, err := Rebuild(cfg, events)
			require.NoError(t, err)
			require.Equal(t, r.core.Snapshot(), rebuilt.Snapshot())
		})
	}
}

// TestLostReportsAreAskedForAgain: when the answer to the door-open
// alarm's state request is lost too, the core asks again while the door is
// believed open: after the open limit, then twice as long each time (at
// most an hour); the report that comes settles the door, and the asking
// stops.
func TestLostReportsAreAskedForAgain(t *testing.T) {
	r := newRig(t, testSettings())
	sc := r.startDeposit("p1", "S")
	r.ack(sc)
	r.opened(sc)
	r.seq["a1"]++ // the door closes; its event is lost on the way
	r.clock.Advance(2 * time.Minute)
	require.Equal(t, 1, r.core.Alarms()["door_left_open"])
	syncs := func() int {
		n := 0
		for _, s := range r.out.sent {
			if s.cmd.Type == twin.CmdSync {
				n++
			}
		}
		return n
	}
	require.Equal(t, 1, syncs())
	for i, wait := range []time.Duration{2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour} {
		r.clock.Advance(wait - 1) // the last report was lost
		require.Equal(t, i+1, syncs(), "not a nanosecond early (request %d)", i+2)
		r.clock.Advance(1)
		require.Equal(t, i+2, syncs(), "asked again after %v", wait)
		require.Equal(t, StateDepositOpen, r.state("p1"))
	}
	require.Equal(t, 1, r.core.Alarms()["door_left_open"], "one alarm for the opening")
	n := syncs()
	r.clock.Advance(72 * time.Hour) // every answer lost for three days
	require.Equal(t, n+72, syncs(), "hourly, however long")
	require.NoError(t, r.core.HandleState("a1", r.reportState("a1", 5, sc.cmd.Compartment)))
	require.Equal(t, StateAwaitingPickup, r.state("p1"))
	n = syncs()
	r.clock.Advance(3 * time.Hour)
	require.Equal(t, n, syncs(), "a settled door is not asked about again")
	r.healthy()
}

// TestAnOldReportDoesNotCloseANewerOpening: a report made before the door
// opened (a lower sequence number) says nothing about the opening.
func TestAnOldReportDoesNotCloseANewerOpening(t *testing.T) {
	r := newRig(t, testSettings())
	r.startDeposit("p1", "S")
	sc := r.out.last()
	r.ack(sc)
	old := r.reportState("a1", 1) // made before the opening
	r.opened(sc)
	require.NoError(t, r.core.HandleState("a1", old))
	require.Equal(t, StateDepositOpen, r.state("p1"), "the door stays open for the core")
	r.closed("a1", sc.cmd.Compartment, true)
	require.Equal(t, StateAwaitingPickup, r.state("p1"))
	r.healthy()
}

// TestASequenceGapAsksForTheState: an event lost for good (the gap does not
// fill) makes the core ask the cabinet for its state, once per AckTimeout.
func TestASequenceGapAsksForTheState(t *testing.T) {
	r := newRig(t, testSettings())
	require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtHeartbeat}))
	gap := func() {
		r.seq["a1"]++
		require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtHeartbeat}))
		r.clock.Advance(2 * time.Second)
	}
	gap()
	require.Equal(t, 1, r.core.Alarms()["sequence_gap"])
	require.Len(t, r.out.sent, 1)
	require.Equal(t, twin.CmdSync, r.out.last().cmd.Type)
	gap()
	require.Equal(t, 2, r.core.Alarms()["sequence_gap"])
	require.Len(t, r.out.sent, 1, "one request answers both")
	r.clock.Advance(15 * time.Second)
	gap()
	require.Len(t, r.out.sent, 2, "a later gap asks again")
	require.NotEqual(t, r.out.sent[0].cmd.ID, r.out.sent[1].cmd.ID)
	r.healthy()
}

// FuzzPickupInput: what a recipient types or shows is outside input. No
// code or QR payload makes the core panic, opens a door unless it is the
// parcel's own code or QR, or leaves the core inconsistent; a refusal is
// one of the typed errors.
func FuzzPickupInput(f *testing.F) {
	for _, s := range []string{"", "000000000000", "1234 5678 9012", "9999-9999-9999", "12345678901a", "LT1.p1.a1.1.0.1.AAAAAAAAAAAAAAAAAAAAAA",
		"LT1...", strings.Repeat("9", 36), "١٢٣٤٥٦٧٨٩٠١٢"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, in string, qr bool) {
		r := newRig(t, testSettings())
		r.deposit("p1", "S")
		code, _ := normalizeCode(r.out.codes["p1"])
		real, err := r.core.IssueQR("p1")
		require.NoError(t, err)
		sent := len(r.out.sent)
		var res PickupResult
		if qr {
			res, err = r.core.PickupQR("a1", in)
		} else {
			res, err = r.core.Pickup("a1", in)
		}
		norm, _ := normalizeCode(in)
		if (qr && in == real) || (!qr && norm == code) {
			require.NoError(t, err)
			require.Equal(t, "p1", res.Parcel)
		} else {
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrWrongCode) || errors.Is(err, ErrBadQR), "%v", err)
			require.Len(t, r.out.sent, sent, "no door commanded")
			require.Equal(t, StateAwaitingPickup, r.state("p1"))
		}
		r.healthy()
	})
}

// TestNewRefusesABadConfig: each missing or impossible part of a core's
// configuration is a clear error, among them a cabinet with more
// compartments than the protocol and the pickup codes can name.
func TestNewRefusesABadConfig(t *testing.T) {
	cat, err := allocator.NewCatalog([]allocator.Class{{Name: "S", WidthMm: 380, HeightMm: 80, DepthMm: 640}})
	require.NoError(t, err)
	inventory := func(n int) *allocator.Inventory {
		comps, err := allocator.StackLayout(cat, []allocator.ClassCount{{Class: 0, Count: n}})
		require.NoError(t, err)
		inv, err := allocator.NewInventory(cat, []allocator.CabinetSpec{{Name: "big", Compartments: comps}})
		require.NoError(t, err)
		return inv
	}
	for _, tt := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no site", func(c *Config) { c.Site = "" }, "needs a site"},
		{"no inventory", func(c *Config) { c.Inventory = nil }, "needs an inventory"},
		{"no clock", func(c *Config) { c.Clock = nil }, "needs a clock"},
		{"short code key", func(c *Config) { c.CodeKey = []byte("short") }, "at least 16 bytes"},
		{"513 compartments in a cabinet", func(c *Config) { c.Inventory = inventory(513) }, `cabinet "big" has 513 compartments, at most 512`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, testSettings())
			cfg := r.cfg
			if tt.change != nil {
				tt.change(&cfg)
			}
			_, err := New(cfg)
			require.ErrorContains(t, err, tt.want)
		})
	}
	r := newRig(t, testSettings())
	cfg := r.cfg
	cfg.Inventory = inventory(512)
	_, err = New(cfg)
	require.NoError(t, err, "512 is the most, and allowed")
}

// TestCommandDeadlineTimings: a command's one deadline does the work of a
// retry, an expiry and a door-open limit, each at its own time to the
// nanosecond: nothing happens a nanosecond before, and it happens at it.
func TestCommandDeadlineTimings(t *testing.T) {
	type step struct {
		after time.Duration // since the previous step
		do    func(r *rig, sc sentCommand)
		sends int    // commands sent so far (door commands and sync requests)
		alarm string // an alarm raised by now, once ("" for none)
		fail  string // the parcel's exception by now ("" for none)
	}
	ack := func(r *rig, sc sentCommand) { r.ack(sc) }
	open := func(r *rig, sc sentCommand) { r.ack(sc); r.opened(sc) }
	for _, tc := range []struct {
		name  string
		set   func(*Settings)
		steps []step
	}{
		{"acknowledged, never opened: fails at its expiry", nil, []step{
			{0, ack, 1, "", ""},
			{60*time.Second - 1, nil, 1, "", ""},
			{1, nil, 1, "command_failed", "command_not_opened"},
		}},
		{"unacknowledged past its expiry: expiry wins over a retry", func(s *Settings) { s.MaxAttempts = 10 }, []step{
			{15 * time.Second, nil, 2, "", ""},
			{45*time.Second - 1, nil, 4, "", ""},
			{1, nil, 4, "command_failed", "command_not_opened"},
		}},
		{"opened and left open: the limit runs from the opening", nil, []step{
			{3 * time.Second, open, 1, "", ""},
			{120*time.Second - 1, nil, 1, "", ""},
			{1, nil, 2, "door_left_open", ""}, // and a state sync is asked for
		}},
		{"a limit shorter than the command's life", func(s *Settings) { s.DoorOpenLimit = 10 * time.Second }, []step{
			{2 * time.Second, open, 1, "", ""},
			{10*time.Second - 1, nil, 1, "", ""},
			{1, nil, 2, "door_left_open", ""}, // and a state sync is asked for
		}},
		{"opened after the retry was due", nil, []step{
			{0, ack, 1, "", ""},
			{40 * time.Second, func(r *rig, sc sentCommand) { r.opened(sc) }, 1, "", ""},
			{120*time.Second - 1, nil, 1, "", ""},
			{1, nil, 2, "door_left_open", ""}, // and a state sync is asked for
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := testSettings()
			if tc.set != nil {
				tc.set(&set)
			}
			r := newRig(t, set)
			sc := r.startDeposit("p1", "S")
			for i, st := range tc.steps {
				r.clock.Advance(st.after)
				if st.do != nil {
					st.do(r, sc)
				}
				require.Len(t, r.out.sent, st.sends, "step %d", i)
				alarms := r.core.Alarms()
				for _, kind := range []string{"command_failed", "door_left_open"} {
					want := 0
					if kind == st.alarm {
						want = 1
					}
					require.Equal(t, want, alarms[kind], "step %d: %s", i, kind)
				}
				info, err := r.core.Parcel("p1")
				require.NoError(t, err)
				require.Equal(t, st.fail, info.Exception, "step %d", i)
			}
			if info, _ := r.core.Parcel("p1"); info.State == StateDepositOpen {
				r.closed(sc.cabinet, sc.cmd.Compartment, true)
			}
			r.clock.Advance(time.Hour)
			require.Equal(t, tc.steps[len(tc.steps)-1].sends, len(r.out.sent), "nothing more is sent")
			r.healthy()
		})
	}
}

// refusingLog keeps events in memory but refuses the appends it is told to.
type refusingLog struct {
	MemoryLog
	refuse bool
}

func (l *refusingLog) Append(e *Event) error {
	if l.refuse {
		return errors.New("disk full")
	}
	return l.MemoryLog.Append(e)
}

// TestRefusedAppendChangesNothing: when the log refuses an event, the call
// fails with ErrLogFailed, the core acts on nothing and its chain stays
// where it was, so the next event links to the last one stored, sealed or
// not.
func TestRefusedAppendChangesNothing(t *testing.T) {
	for _, unsealed := range []bool{false, true} {
		t.Run(fmt.Sprintf("unsealed=%v", unsealed), func(t *testing.T) {
			log := &refusingLog{}
			r := newRig(t, testSettings(), func(c *Config) { c.Log, c.Unsealed = log, unsealed })
			r.log = &log.MemoryLog
			r.checker.Rehash = !unsealed // unsealed events carry no hashes; it checks their links
			r.deposit("p1", "S")
			head, seq := r.core.ChainHead()
			sent := len(r.out.sent)

			log.refuse = true
			_, err := r.core.Pickup("a1", r.out.codes["p1"])
			require.ErrorIs(t, err, ErrLogFailed)
			_, err = r.core.Announce("p2", ParcelSpec{Class: "S"}, "x")
			require.ErrorIs(t, err, ErrLogFailed)
			h2, s2 := r.core.ChainHead()
			require.Equal(t, seq, s2)
			require.Equal(t, head, h2)
			require.Len(t, r.out.sent, sent, "no door opened")
			require.Equal(t, StateAwaitingPickup, r.state("p1"))
			_, err = r.core.Parcel("p2")
			require.ErrorIs(t, err, ErrUnknownParcel)

			log.refuse = false
			_, err = r.core.Pickup("a1", r.out.codes["p1"])
			require.NoError(t, err, "the code was not used up by the refused attempt")
			r.doorCycle(false)
			require.Equal(t, StatePickedUp, r.state("p1"))
			_, s3 := r.core.ChainHead()
			require.Equal(t, uint64(log.Len()), s3, "sequence numbers run on without a gap")
			require.NoError(t, r.checker.Err())
			require.NoError(t, CheckCore(r.core))
			if !unsealed {
				require.NoError(t, Verify(log.Events()))
			}
		})
	}
}

// countingClock counts the timers moved while set (Reset of a pending
// timer): on a simulator's clock each is an event cancelled and another
// scheduled.
type countingClock struct {
	*twin.ManualClock
	moved int
}

type countingTimer struct {
	twin.ResettableTimer
	c *countingClock
}

func (c *countingClock) AfterFunc(d time.Duration, f func()) twin.Timer {
	return &countingTimer{c.ManualClock.AfterFunc(d, f).(twin.ResettableTimer), c}
}

func (t *countingTimer) Reset(d time.Duration) bool {
	pending := t.ResettableTimer.Reset(d)
	if pending {
		t.c.moved++
	}
	return pending
}

// TestCommandsLeaveTheFarTimerSet: a parcel waits a day for its reminder
// while other parcels come and go, each with door commands whose retry
// deadlines are seconds ahead. They take the core's second timer, and the
// one set for the reminder stays set. Every deadline still falls due on
// time: a reservation that lapses, a command left unacknowledged, the
// reminder.
func TestCommandsLeaveTheFarTimerSet(t *testing.T) {
	clock := &countingClock{ManualClock: twin.NewManualClock(epoch)}
	set := testSettings()
	set.ReservationTimeout = 10 * time.Second
	r := newRig(t, set, func(c *Config) { c.Clock = clock })
	r.clock = clock.ManualClock
	r.deposit("waits", "S")
	moved := clock.moved
	for i := range 20 {
		id := "p" + itoa(uint64(i))
		r.deposit(id, "M")
		_, err := r.core.Pickup(r.out.last().cabinet, r.out.codes[id])
		require.NoError(t, err, id)
		r.doorCycle(false)
		require.Equal(t, StatePickedUp, r.state(id))
		r.clock.Advance(time.Minute) // the commands' retry deadlines pass, stale
	}
	require.Equal(t, moved, clock.moved, "no timer was moved: the commands took the spare")

	// A reservation that lapses, a command never acknowledged, and the
	// reminder, all with timers set for later deadlines.
	_, err := r.core.Announce("lapses", ParcelSpec{Class: "S"}, "x")
	require.NoError(t, err)
	unacked := r.startDeposit("unacked", "S")
	sent := len(r.out.sent)
	r.clock.Advance(10 * time.Second)
	require.Equal(t, StateAnnounced, r.state("lapses"), "the reservation lapsed at 10 s")
	require.Len(t, r.out.sent, sent)
	r.clock.Advance(5 * time.Second)
	require.Len(t, r.out.sent, sent+1, "the command was resent at 15 s")
	require.Equal(t, unacked.cmd.ID, r.out.last().cmd.ID)
	r.doorCycle(true)
	require.Equal(t, StateAwaitingPickup, r.state("unacked"))
	require.Zero(t, r.out.byKind[NotifyReminder])
	reminderAt := epoch.Add(5*time.Second + set.ReminderAfter) // "waits" was deposited 5 s in
	r.clock.Advance(reminderAt.Sub(r.clock.Now()) - time.Second)
	require.Zero(t, r.out.byKind[NotifyReminder])
	r.clock.Advance(time.Second)
	require.Equal(t, 1, r.out.byKind[NotifyReminder], "the reminder came on time")
	r.healthy()
}

// A cabinet reports a compartment out of its temperature range with a
// temp_out_of_range fault, and back in range with a temperature event
// (PROTOCOL.md). The first is an alarm; the second ends it, and is not an
// alarm itself: once it was, and every excursion counted twice.
func TestTemperatureBackInRangeClearsTheAlarm(t *testing.T) {
	r := newRig(t, testSettings())
	hot, back := ptr(6.2), ptr(5.4)
	logged := func() int { return len(r.log.Events()) }
	lastKind := func() Kind { ev := r.log.Events(); return ev[len(ev)-1].Kind }

	steps := []struct {
		name    string
		ev      twin.Event
		logs    Kind // KindInvalid: logs nothing
		raised  int  // temp_out_of_range alarms so far
		warm3   bool // compartment 3 out of range
		warmCab bool // cabinet a1 as a whole out of range
	}{
		{"a reading in range with nothing open", twin.Event{Type: twin.EvtTemp, Compartment: 3, TempC: back}, KindInvalid, 0, false, false},
		{"compartment 3 warms up", twin.Event{Type: twin.EvtFault, Fault: twin.FaultTempRange, Compartment: 3, TempC: hot}, AlarmRaised, 1, true, false},
		{"the cabinet as a whole warms up", twin.Event{Type: twin.EvtFault, Fault: twin.FaultTempRange, TempC: hot}, AlarmRaised, 2, true, true},
		{"compartment 3 is back", twin.Event{Type: twin.EvtTemp, Compartment: 3, TempC: back}, AlarmCleared, 2, false, true},
		{"compartment 3 is back again", twin.Event{Type: twin.EvtTemp, Compartment: 3, TempC: back}, KindInvalid, 2, false, true},
		{"another compartment's reading leaves the cabinet's open", twin.Event{Type: twin.EvtTemp, Compartment: 4, TempC: back}, KindInvalid, 2, false, true},
		{"the cabinet is back", twin.Event{Type: twin.EvtTemp, TempC: back}, AlarmCleared, 2, false, false},
	}
	comp3, ok := r.core.inv.CompartmentAt(0, 3)
	require.True(t, ok)
	for _, st := range steps {
		before := logged()
		require.NoError(t, r.evt("a1", st.ev), st.name)
		if st.logs == KindInvalid {
			require.Equal(t, before, logged(), "%s: logs nothing", st.name)
		} else {
			require.Equal(t, before+1, logged(), st.name)
			require.Equal(t, st.logs, lastKind(), st.name)
		}
		require.Equal(t, st.raised, r.core.Alarms()[twin.FaultTempRange], st.name)
		require.Zero(t, r.core.Alarms()["temperature"], "%s: back in range is no alarm", st.name)
		var want3, wantCab []string
		if st.warm3 {
			want3 = []string{ConditionOutOfRange}
		}
		if st.warmCab {
			wantCab = []string{ConditionOutOfRange}
		}
		alarms, open := r.core.Conditions(comp3)
		require.Equal(t, want3, alarms, st.name)
		require.False(t, open, st.name)
		require.Equal(t, wantCab, r.core.CabinetConditions(0), st.name)
		r.healthy()
	}

	// An excursion still open is part of the state a rebuild reproduces.
	require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtFault, Fault: twin.FaultTempRange, Compartment: 3, TempC: hot}))
	rebuilt := r.rebuilt()
	alarms, _ := rebuilt.Conditions(comp3)
	require.Equal(t, []string{ConditionOutOfRange}, alarms)
}

// The checker holds that an alarm is cleared only while it is raised: a
// core that logged a clearing out of nowhere is caught.
func TestCheckerCatchesAnAlarmClearedThatWasNotRaised(t *testing.T) {
	r := newRig(t, testSettings())
	comp3, _ := r.core.inv.CompartmentAt(0, 3)
	e := r.core.newEvent(AlarmCleared, 0, int32(comp3))
	e.Text = twin.FaultTempRange
	require.NoError(t, r.core.emit(e))
	require.ErrorContains(t, r.checker.Err(), "an alarm is cleared only while raised")
}

// A parcel refused for want of room, or withdrawn before its deposit,
// never entered the locker: its courier brings it back at the next wave
// under the same tracking number, and it is offered afresh. Once it was
// "duplicate_parcel" for good, and the courier had to invent an id.
func TestARefusedOrCancelledParcelIsOfferedAgain(t *testing.T) {
	r := newRig(t, testSettings())
	large := ParcelSpec{Class: "L"}
	announce := func(id string) error { _, err := r.core.Announce(id, large, id+"@example.org"); return err }
	announced := func(id string) int {
		n := 0
		for _, e := range r.log.Events() {
			if e.Kind == Announced && e.Parcel == id {
				n++
			}
		}
		return n
	}
	require.NoError(t, announce("l1"))
	require.NoError(t, announce("l2")) // both L compartments are held
	require.ErrorIs(t, announce("l3"), ErrNoCapacity)
	require.Equal(t, StateRefused, r.state("l3"))

	require.NoError(t, r.core.Cancel("l1"))
	require.Equal(t, StateCancelled, r.state("l1"))
	require.NoError(t, announce("l3"), "refused at one wave, offered at the next")
	require.Equal(t, StateReserved, r.state("l3"))
	require.Equal(t, 2, announced("l3"), "the log keeps both offers")

	require.ErrorIs(t, announce("l1"), ErrNoCapacity, "a cancelled parcel is offered again (and finds no room)")
	require.Equal(t, StateRefused, r.state("l1"))
	r.healthy()

	// A parcel that was in the locker keeps its id: picked up is final.
	_, err := r.core.StartDeposit("l3")
	require.NoError(t, err)
	r.doorCycle(true)
	_, err = r.core.Pickup(r.out.last().cabinet, r.out.codes["l3"])
	require.NoError(t, err)
	r.doorCycle(false)
	require.Equal(t, StatePickedUp, r.state("l3"))
	require.ErrorIs(t, announce("l3"), ErrDuplicateParcel)
	r.healthy()

	r.rebuilt()
}

// TestAStateReportSettlesATemperatureExcursion: a report no older than the
// last event handled says which compartments are out of range. It raises
// the alarm whose temp_out_of_range fault was lost (and that fault, come
// late, raises no second one), and clears one whose temperature event was
// lost or that a cabinet's restart ended. An older report settles nothing.
func TestAStateReportSettlesATemperatureExcursion(t *testing.T) {
	r := newRig(t, testSettings())
	comp3, _ := r.core.inv.CompartmentAt(0, 3)
	hot := 6.4
	version := uint64(0)
	report := func(warm bool, seqBack uint64) error {
		version++
		st := r.reportState("a1", version)
		st.Seq -= seqBack
		t := 5.1
		if warm {
			t = hot
		}
		st.Compartments[2].TempC, st.Compartments[2].TempAlarm = &t, warm
		return r.core.HandleState("a1", st)
	}
	fault := func() error {
		return r.evt("a1", twin.Event{Type: twin.EvtFault, Fault: twin.FaultTempRange, Compartment: 3, TempC: &hot})
	}
	for _, step := range []struct {
		name   string
		do     func() error
		warm   bool
		raised int
	}{
		{"a heartbeat, so the cabinet has a number", func() error { return r.evt("a1", twin.Event{Type: twin.EvtHeartbeat}) }, false, 0},
		{"a report in range changes nothing", func() error { return report(false, 0) }, false, 0},
		{"a report out of range: the fault was lost", func() error { return report(true, 0) }, true, 1},
		{"the fault, late: no second alarm", fault, true, 1},
		{"a report back in range: the temperature event was lost", func() error { return report(false, 0) }, false, 1},
		{"another excursion", fault, true, 2},
		{"a report older than the fault settles nothing", func() error { return report(false, 1) }, true, 2},
		{"the cabinet restarted, in range", func() error { return report(false, 0) }, false, 2},
	} {
		require.NoError(t, step.do(), step.name)
		alarms, _ := r.core.Conditions(comp3)
		require.Equal(t, step.warm, slices.Contains(alarms, ConditionOutOfRange), step.name)
		require.Equal(t, step.raised, r.core.Alarms()[ConditionOutOfRange], step.name)
		total := 0
		for _, n := range r.core.Alarms() {
			total += n
		}
		require.Equal(t, step.raised, total, "%s: no other alarm (the reports match the doors)", step.name)
		r.healthy()
	}
	r.rebuilt()
}

// A door left open is one alarm, whichever says so first: the core at its
// door-open limit, or the cabinet's own door_left_open fault.
func TestADoorLeftOpenIsOneAlarm(t *testing.T) {
	for _, cabinetFirst := range []bool{false, true} {
		r := newRig(t, testSettings())
		require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtDoorOpened, Compartment: 2}))
		fault := func() {
			require.NoError(t, r.evt("a1", twin.Event{Type: twin.EvtFault, Fault: twin.FaultDoorLeftOpen, Compartment: 2}))
		}
		if cabinetFirst {
			r.clock.Advance(time.Minute)
			fault()
		}
		r.clock.Advance(5 * time.Minute)
		if !cabinetFirst {
			fault()
		}
		require.Equal(t, 1, r.core.Alarms()[ConditionLeftOpen], "cabinet first: %v", cabinetFirst)
		id, _ := r.core.Inventory().CompartmentAt(0, 2)
		alarms, open := r.core.Conditions(id)
		require.True(t, open)
		require.Equal(t, []string{ConditionLeftOpen}, alarms)
		r.healthy()
	}
}

// TestADepositMovesOffAnOutOfServiceCompartment: a deposit whose door
// jammed puts the parcel in exception and the compartment out of service;
// an operator who resumes the parcel without a repair must not send the
// courier back to the jammed door. The deposit moves to another
// compartment, or the parcel is refused when none is left (and may be
// offered again).
func TestADepositMovesOffAnOutOfServiceCompartment(t *testing.T) {
	r := newRig(t, testSettings())
	jamDeposit := func(id string) sentCommand {
		sc := r.startDeposit(id, "L")
		r.ack(sc)
		require.NoError(t, r.evt(sc.cabinet, twin.Event{Type: twin.EvtFault, Fault: twin.FaultJam, Compartment: sc.cmd.Compartment}))
		require.Equal(t, StateException, r.state(id))
		require.NoError(t, r.core.ResolveException(id, ResolveResume))
		require.Equal(t, StateReserved, r.state(id), "resumed: reserved again")
		return sc
	}
	first := jamDeposit("p1")
	d, err := r.core.StartDeposit("p1")
	require.NoError(t, err)
	require.NotEqual(t, [2]any{first.cabinet, first.cmd.Compartment}, [2]any{d.Cabinet, d.Compartment}, "not the jammed door again")
	var lapsed *Event
	for _, e := range r.log.Events() {
		if e.Kind == ReservationLapsed && e.Parcel == "p1" {
			lapsed = &e
		}
	}
	require.NotNil(t, lapsed)
	require.Equal(t, LapsedOutOfService, lapsed.Text)
	r.doorCycle(true)
	require.Equal(t, StateAwaitingPickup, r.state("p1"))
	r.healthy()

	// The other L is held now: a parcel that jams the first L again has
	// nowhere to go, and is refused (its courier may offer it again).
	require.NoError(t, r.core.ReturnToService(first.cabinet, first.cmd.Compartment))
	jamDeposit("p2")
	_, err = r.core.StartDeposit("p2")
	require.ErrorIs(t, err, ErrNoCapacity)
	require.Equal(t, StateRefused, r.state("p2"))
	r.healthy()

	r.rebuilt()
}

// TestAnOperatorReissuesALostCode: a recipient whose arrival notification
// never came gets a new code from customer service. The old code and the
// parcel's QR code stop working, the new one opens the door, the deadline
// stays and the reminder still goes; a reissue where there is no code to
// replace is refused and changes nothing.
func TestAnOperatorReissuesALostCode(t *testing.T) {
	r := newRig(t, testSettings())
	r.deposit("p1", "S")
	old := r.out.codes["p1"]
	qr, err := r.core.IssueQR("p1")
	require.NoError(t, err)
	before, err := r.core.Parcel("p1")
	require.NoError(t, err)

	r.clock.Advance(2 * time.Hour)
	require.NoError(t, r.core.ReissueCode("p1"))
	note := r.out.notes[len(r.out.notes)-1]
	require.Equal(t, NotifyCodeReissued, note.Kind)
	require.Equal(t, "p1", note.Parcel)
	require.NotEmpty(t, note.Code)
	require.NotEqual(t, old, note.Code)
	after, err := r.core.Parcel("p1")
	require.NoError(t, err)
	require.Equal(t, before.Deadline, after.Deadline, "the pickup deadline stays")

	_, err = r.core.Pickup("a1", old)
	require.ErrorIs(t, err, ErrWrongCode, "the old code is void")
	_, err = r.core.PickupQR("a1", qr)
	require.ErrorIs(t, err, ErrBadQR, "so is a QR code issued for the old one")

	r.clock.Advance(22 * time.Hour) // 24 h after the deposit
	require.Equal(t, 1, r.out.byKind[NotifyReminder], "the reminder still goes")
	_, err = r.core.Pickup("a1", note.Code)
	require.NoError(t, err)
	r.doorCycle(false)
	require.Equal(t, StatePickedUp, r.state("p1"))
	require.Equal(t, 1, r.out.byKind[NotifyCodeReissued])
	r.healthy()

	r.deposit("p2", "M")
	r.startDeposit("p3", "S")
	for _, tc := range []struct {
		name, parcel string
		want         error
	}{
		{"unknown parcel", "nope", ErrUnknownParcel},
		{"picked up", "p1", ErrWrongState},
		{"not deposited yet", "p3", ErrWrongState},
	} {
		n, notes := r.log.Len(), len(r.out.notes)
		require.ErrorIs(t, r.core.ReissueCode(tc.parcel), tc.want, tc.name)
		require.Equal(t, n, r.log.Len(), "%s: nothing logged", tc.name)
		require.Equal(t, notes, len(r.out.notes), "%s: nothing sent", tc.name)
	}
	// A reissue once the reminder went sets none again; a rebuilt core
	// has the new code's state.
	r.clock.Advance(25 * time.Hour)
	require.Equal(t, 2, r.out.byKind[NotifyReminder])
	require.NoError(t, r.core.ReissueCode("p2"))
	r.clock.Advance(48 * time.Hour) // past p2's deadline, 72 h after its deposit
	require.Equal(t, 2, r.out.byKind[NotifyReminder], "no second reminder for p2")
	require.Equal(t, StateAwaitingReturn, r.state("p2"), "expired when it was due")
	r.healthy()
	r.rebuilt()
}

// TestAParcelInAnExcursionIsMarked: a parcel in the locker while its
// compartment, or (chilled) its cabinet, is out of temperature range is
// marked for good, and so is one deposited while the excursion lasts; a
// parcel not yet deposited, an ambient one in a warm cabinet, and one
// deposited after the excursion are not.
func TestAParcelInAnExcursionIsMarked(t *testing.T) {
	r := newRig(t, testSettings())
	hot, back := ptr(9.5), ptr(4.0)
	fault := func(cab string, slot int) {
		require.NoError(t, r.evt(cab, twin.Event{Type: twin.EvtFault, Fault: twin.FaultTempRange, Compartment: slot, TempC: hot}))
	}
	inRange := func(cab string, slot int) {
		require.NoError(t, r.evt(cab, twin.Event{Type: twin.EvtTemp, Compartment: slot, TempC: back}))
	}
	info := func(id string) ParcelInfo {
		info, err := r.core.Parcel(id)
		require.NoError(t, err)
		return info
	}
	depositAt := func(id, class, cab string) {
		_, err := r.core.Announce(id, ParcelSpec{Class: class, PreferCabinet: cab}, id+"@example.org")
		require.NoError(t, err)
		_, err = r.core.StartDeposit(id)
		require.NoError(t, err)
		r.doorCycle(true)
		require.Equal(t, cab, info(id).Cabinet, id)
	}
	steps := []struct {
		name string
		do   func()
		want map[string]bool // parcel → marked, after the step
	}{
		{"a chilled and an ambient parcel in a1, an ambient one in a2", func() {
			depositAt("cold1", "M-cold", "a1")
			depositAt("amb1", "S", "a1")
			depositAt("amb2", "S", "a2")
		}, map[string]bool{"cold1": false, "amb1": false, "amb2": false}},
		{"cold1's compartment warms up", func() { fault("a1", info("cold1").Compartment) },
			map[string]bool{"cold1": true, "amb1": false, "amb2": false}},
		{"and is back in range: cold1 stays marked", func() { inRange("a1", info("cold1").Compartment) },
			map[string]bool{"cold1": true}},
		{"cold2 is announced for a2, and a2 as a whole warms up", func() {
			_, err := r.core.Announce("cold2", ParcelSpec{Class: "M-cold", PreferCabinet: "a2"}, "cold2@example.org")
			require.NoError(t, err)
			fault("a2", 0)
		}, map[string]bool{"cold2": false, "amb2": false}},
		{"cold2 is deposited into the warm cabinet", func() {
			_, err := r.core.StartDeposit("cold2")
			require.NoError(t, err)
			r.doorCycle(true)
		}, map[string]bool{"cold2": true, "amb2": false}},
		{"a2 is back; cold1 is picked up and cold3 takes its compartment", func() {
			inRange("a2", 0)
			_, err := r.core.Pickup("a1", r.out.codes["cold1"])
			require.NoError(t, err)
			r.doorCycle(false)
			depositAt("cold3", "M-cold", "a1")
		}, map[string]bool{"cold3": false, "cold2": true}},
		{"cold3's recipient opens its door and leaves it open: it warms, but cold3 is in their hands", func() {
			_, err := r.core.Pickup("a1", r.out.codes["cold3"])
			require.NoError(t, err)
			sc := r.out.last()
			r.ack(sc)
			r.opened(sc)
			fault("a1", sc.cmd.Compartment)
		}, map[string]bool{"cold3": false}},
	}
	for _, st := range steps {
		st.do()
		for id, want := range st.want {
			require.Equal(t, want, info(id).TempExcursion, "%s: %s", st.name, id)
		}
		r.healthy()
	}
	r.rebuilt()
}
