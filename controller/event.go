package controller

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/lockertwin/lockertwin/internal/digest"
)

// Kind is the type of a domain event.
type Kind uint8

// Domain events. The comment says which fields each one uses beyond Seq, At
// and Kind. Num and Num2 are times as Unix nanoseconds unless said otherwise.
const (
	KindInvalid Kind = iota
	// Announced: Parcel, Spec (what it needs), Text = recipient.
	Announced
	// Reserved: Parcel, Cabinet, Compartment, Num = reservation deadline.
	Reserved
	// Refused: Parcel, Text = the allocator's reason.
	Refused
	// ReservationLapsed: Parcel; its compartment is released. Text: empty at
	// the reservation's timeout, out_of_service when the deposit found the
	// compartment out of service (another is reserved next).
	ReservationLapsed
	// DoorCommanded: Parcel, Cabinet, Compartment, Command, Num = expiry,
	// Text = purpose (deposit, pickup, return).
	DoorCommanded
	// CommandRetried: Command, Num = attempt number (2, 3, …).
	CommandRetried
	// CommandAcked: Command, Cabinet, CabinetSeq.
	CommandAcked
	// CommandFailed: Command, Text = why (timeout, or the nack reason).
	CommandFailed
	// DoorOpened: Cabinet, Compartment, Command (if commanded), CabinetSeq.
	DoorOpened
	// DoorClosed: Cabinet, Compartment, Num = 1 if the sensor read occupied, CabinetSeq.
	DoorClosed
	// OccupancyChanged: Cabinet, Compartment, Num = 1 if occupied, CabinetSeq
	// (a reading while the door was closed).
	OccupancyChanged
	// Deposited: Parcel, Compartment.
	Deposited
	// DepositAborted: Parcel (the door closed on an empty compartment).
	DepositAborted
	// CodeIssued: Parcel, Digest = HMAC binding the code to cabinet and
	// parcel (the code names the parcel's compartment), Num = pickup
	// deadline (0: none), Num2 = reminder time (0: none).
	CodeIssued
	// Notified: Parcel, Text = notification kind.
	Notified
	// PickupAuthorized: Parcel, Text = "code" or "qr".
	PickupAuthorized
	// CodeRejected: Cabinet, Num = rejections in the short window, Num2 =
	// in the long window; Parcel and Compartment if the code named a
	// compartment whose parcel has a live code (counted against it).
	CodeRejected
	// LockedOut: Cabinet, Num = keypad locked until; or, with Parcel (and
	// Compartment), that parcel's code locked until Num.
	LockedOut
	// PickedUp: Parcel, Compartment.
	PickedUp
	// PickupAborted: Parcel (the door closed with the parcel still inside).
	PickupAborted
	// Expired: Parcel (not collected in its window; awaiting return).
	Expired
	// Returned: Parcel, Compartment (a courier took it back).
	Returned
	// ExceptionRaised: Parcel, Text = reason.
	ExceptionRaised
	// ExceptionResolved: Parcel, Text = outcome (resume, removed).
	ExceptionResolved
	// AlarmRaised: Text = alarm kind, Cabinet, Compartment, Command (as known).
	AlarmRaised
	// OutOfService: Cabinet, Compartment, Text = reason.
	OutOfService
	// BackInService: Cabinet, Compartment.
	BackInService
	// CabinetStatus: Cabinet, Text = online or offline.
	CabinetStatus
	// Cancelled: Parcel (withdrawn before deposit; its reservation is released).
	Cancelled
	// AlarmCleared: Text = the kind of the alarm that ended (temp_out_of_range:
	// the cabinet reported the temperature back in range), Cabinet,
	// Compartment. Kinds are stored by number: a new kind goes last.
	AlarmCleared
	numKinds
)

var kindNames = [...]string{
	KindInvalid: "invalid", Announced: "announced", Reserved: "reserved", Refused: "refused",
	ReservationLapsed: "reservation_lapsed", DoorCommanded: "door_commanded",
	CommandRetried: "command_retried", CommandAcked: "command_acked", CommandFailed: "command_failed",
	DoorOpened: "door_opened", DoorClosed: "door_closed", OccupancyChanged: "occupancy_changed",
	Deposited: "deposited", DepositAborted: "deposit_aborted", CodeIssued: "code_issued",
	Notified: "notified", PickupAuthorized: "pickup_authorized", CodeRejected: "code_rejected",
	LockedOut: "locked_out", PickedUp: "picked_up", PickupAborted: "pickup_aborted",
	Expired: "expired", Returned: "returned", ExceptionRaised: "exception_raised",
	ExceptionResolved: "exception_resolved", AlarmRaised: "alarm", OutOfService: "out_of_service",
	BackInService: "back_in_service", CabinetStatus: "cabinet_status", Cancelled: "cancelled",
	AlarmCleared: "alarm_cleared",
}

// ParseKind is the Kind named s (as String gives it); false if none.
func ParseKind(s string) (Kind, bool) {
	for k := Kind(1); k < numKinds; k++ {
		if kindNames[k] == s {
			return k, true
		}
	}
	return KindInvalid, false
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ParcelSpec is what an announced parcel needs.
type ParcelSpec struct {
	// Class names the smallest compartment class the parcel needs; empty
	// when the parcel is described by Dims.
	Class string
	// Dims are outer dimensions in mm (any order); zero when Class is set.
	LengthMm, WidthMm, HeightMm int
	// Zone: ambient, chilled or frozen (with Dims; Class implies its zone).
	Zone string
	// MaxTopMm: the recipient needs a compartment whose top is at most this
	// high (accessible reach); 0 for no constraint.
	MaxTopMm int
	// PreferCabinet names a cabinet to prefer; empty for none.
	PreferCabinet string
}

// Event is one domain event: a state change of the controller. The log of
// events is the audit trail and the durable state: replaying it rebuilds the
// core exactly.
type Event struct {
	Seq  uint64
	At   int64 // Unix nanoseconds
	Kind Kind

	Parcel      string
	Cabinet     int32 // index within the site, -1 if none
	Compartment int32 // allocator compartment id, -1 if none
	Command     string
	CabinetSeq  uint64
	Num, Num2   int64
	Text        string
	Digest      [32]byte
	Spec        *ParcelSpec

	Prev, Hash [32]byte
}

func (e *Event) String() string {
	s := fmt.Sprintf("#%d %s", e.Seq, e.Kind)
	if e.Parcel != "" {
		s += " parcel=" + e.Parcel
	}
	if e.Cabinet >= 0 {
		s += fmt.Sprintf(" cabinet=%d", e.Cabinet)
	}
	if e.Compartment >= 0 {
		s += fmt.Sprintf(" compartment=%d", e.Compartment)
	}
	if e.Command != "" {
		s += " command=" + e.Command
	}
	if e.Text != "" {
		s += " text=" + e.Text
	}
	return s
}

// AppendCanonical appends the event's canonical bytes: every field but the
// hashes, in a fixed order, length-prefixed. The chain hashes these bytes.
func (e *Event) AppendCanonical(b []byte) []byte {
	b = binary.AppendUvarint(b, e.Seq)
	b = binary.AppendVarint(b, e.At)
	b = append(b, byte(e.Kind))
	b = appendString(b, e.Parcel)
	b = binary.AppendVarint(b, int64(e.Cabinet))
	b = binary.AppendVarint(b, int64(e.Compartment))
	b = appendString(b, e.Command)
	b = binary.AppendUvarint(b, e.CabinetSeq)
	b = binary.AppendVarint(b, e.Num)
	b = binary.AppendVarint(b, e.Num2)
	b = appendString(b, e.Text)
	// One byte says which optional fields follow. Most events carry no
	// digest or spec, and leaving out 32 zero bytes keeps an
	// event (with the previous hash) within two SHA-256 blocks, not three.
	var flags byte
	if e.Digest != ([32]byte{}) {
		flags |= flagDigest
	}
	if e.Spec != nil {
		flags |= flagSpec
	}
	b = append(b, flags)
	if flags&flagDigest != 0 {
		b = append(b, e.Digest[:]...)
	}
	if e.Spec == nil {
		return b
	}
	s := e.Spec
	b = appendString(b, s.Class)
	b = binary.AppendVarint(b, int64(s.LengthMm))
	b = binary.AppendVarint(b, int64(s.WidthMm))
	b = binary.AppendVarint(b, int64(s.HeightMm))
	b = appendString(b, s.Zone)
	b = binary.AppendVarint(b, int64(s.MaxTopMm))
	return appendString(b, s.PreferCabinet)
}

// The canonical form's optional fields.
const (
	flagSpec   = 1 << 0
	flagDigest = 1 << 1
	// 1 << 2 was a code's lookup tag, which codes naming their
	// compartment no longer need; a log that has one does not decode.
	flagsKnown = flagSpec | flagDigest
)

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Chain computes hashes: Hash = SHA-256(Prev ‖ canonical bytes). It reuses
// its buffers, so hashing allocates nothing.
type Chain struct {
	buf  []byte
	head [32]byte
	seq  uint64
}

// NewChain starts a chain at the genesis (zero hash, sequence 0).
func NewChain() *Chain { return &Chain{buf: make([]byte, 0, 256)} }

// Head returns the last hash and sequence number.
func (c *Chain) Head() ([32]byte, uint64) { return c.head, c.seq }

// Link sets e's Seq, Prev and Hash as the next event of the chain.
func (c *Chain) Link(e *Event) {
	c.seq++
	e.Seq = c.seq
	e.Prev = c.head
	e.Hash = c.hashOf(e)
	c.head = e.Hash
}

func (c *Chain) hashOf(e *Event) [32]byte {
	c.buf = append(c.buf[:0], e.Prev[:]...)
	c.buf = e.AppendCanonical(c.buf)
	return digest.Sum256(c.buf)
}

// ErrChainBroken is what Verify reports for any altered, removed or
// reordered entry.
var ErrChainBroken = errors.New("event log chain broken")

// ChainError locates a break.
type ChainError struct {
	Index int // position in the slice verified
	Seq   uint64
	Msg   string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("event log chain broken at entry %d (seq %d): %s", e.Index, e.Seq, e.Msg)
}

func (e *ChainError) Unwrap() error { return ErrChainBroken }

// Verify checks a log from its first entry: sequence numbers run 1, 2, 3…,
// each entry links to the previous hash, and each hash matches its content.
func Verify(events []Event) error {
	c := NewChain()
	return c.Verify(events)
}

// Verify checks that events continue this chain, and advances it.
func (c *Chain) Verify(events []Event) error {
	for i := range events {
		if err := c.verifyOne(&events[i], i); err != nil {
			return err
		}
	}
	return nil
}

func (c *Chain) verifyOne(e *Event, i int) error {
	switch {
	case e.Seq != c.seq+1:
		return &ChainError{Index: i, Seq: e.Seq, Msg: fmt.Sprintf("sequence %d follows %d", e.Seq, c.seq)}
	case e.Prev != c.head:
		return &ChainError{Index: i, Seq: e.Seq, Msg: "does not link to the previous entry"}
	case c.hashOf(e) != e.Hash:
		return &ChainError{Index: i, Seq: e.Seq, Msg: "content does not match its hash"}
	}
	c.seq, c.head = e.Seq, e.Hash
	return nil
}
