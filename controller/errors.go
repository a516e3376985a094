package controller

import (
	"errors"
	"fmt"
	"time"

	"github.com/lockertwin/lockertwin/allocator"
)

// Errors for callers' mistakes and refusals. Each is returned (possibly
// wrapped with detail) without changing any state; the service maps them to
// 4xx responses with a stable code (ErrorCode).
var (
	ErrUnknownParcel      = errors.New("unknown parcel")
	ErrUnknownCabinet     = errors.New("unknown cabinet")
	ErrUnknownCompartment = errors.New("unknown compartment")
	ErrDuplicateParcel    = errors.New("a different parcel with this id exists")
	ErrBadRequest         = errors.New("bad request")
	ErrWrongState         = errors.New("parcel is not in a state that allows this")
	ErrWrongCode          = errors.New("wrong code")
	ErrCodeExpired        = errors.New("the code has expired")
	ErrBadQR              = errors.New("invalid or expired QR code")
	ErrLockedOut          = errors.New("keypad locked after too many wrong codes")
	ErrDuplicateEvent     = errors.New("duplicate or out-of-order cabinet event")
	ErrNoCapacity         = errors.New("no compartment available")
	ErrCompartmentBusy    = errors.New("compartment has a door operation in progress")
	ErrLogFailed          = errors.New("event log append failed")
	// ErrSequenceBehind is an ErrDuplicateEvent with a new id but a
	// sequence number at or below one already handled: not a copy of an
	// event, but a cabinet that lost its sequence (restarted without the
	// non-volatile memory PROTOCOL.md asks for) or an event so late that
	// its id has left the window. Its events are dropped until its numbers
	// pass the last handled.
	ErrSequenceBehind = fmt.Errorf("%w: sequence number already passed", ErrDuplicateEvent)
)

// ErrorCode returns a stable machine-readable code for an error of this
// package ("unknown_parcel", "no_capacity", …), or "internal".
func ErrorCode(err error) string {
	for _, c := range []struct {
		err  error
		code string
	}{
		{ErrUnknownParcel, "unknown_parcel"}, {ErrUnknownCabinet, "unknown_cabinet"},
		{ErrUnknownCompartment, "unknown_compartment"}, {ErrDuplicateParcel, "duplicate_parcel"},
		{ErrBadRequest, "bad_request"}, {ErrWrongState, "wrong_state"}, {ErrWrongCode, "wrong_code"},
		{ErrCodeExpired, "code_expired"}, {ErrBadQR, "bad_qr"}, {ErrLockedOut, "locked_out"},
		{ErrDuplicateEvent, "duplicate_event"}, {ErrNoCapacity, "no_capacity"},
		{ErrCompartmentBusy, "compartment_busy"}, {ErrLogFailed, "store_unavailable"},
	} {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "internal"
}

// RefusedError is ErrNoCapacity with the allocator's reason.
type RefusedError struct {
	Parcel string
	Reason allocator.Reason
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("parcel %s refused: %v (%v)", e.Parcel, ErrNoCapacity, e.Reason)
}

func (e *RefusedError) Unwrap() error { return ErrNoCapacity }

// LockoutError is ErrLockedOut with the time the keypad, or one parcel's
// code, unlocks.
type LockoutError struct {
	Cabinet string
	Parcel  string // set when one parcel's code is locked, not the keypad
	Until   time.Time
}

func (e *LockoutError) Error() string {
	if e.Parcel != "" {
		return fmt.Sprintf("cabinet %s: the code of parcel %s is %v until %s (too many wrong guesses at it)", e.Cabinet, e.Parcel, ErrLockedOut, e.Until.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("cabinet %s: %v until %s", e.Cabinet, ErrLockedOut, e.Until.UTC().Format(time.RFC3339))
}

func (e *LockoutError) Unwrap() error { return ErrLockedOut }

// StateError is ErrWrongState with the parcel's state.
type StateError struct {
	Parcel string
	State  State
	Op     string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("%s parcel %s: it is %v", e.Op, e.Parcel, e.State)
}

func (e *StateError) Unwrap() error { return ErrWrongState }
