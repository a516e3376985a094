package twin

import (
	"fmt"
	"time"
)

// Expectation is what the controller believes of one compartment.
type Expectation struct {
	Occupied bool
	// DoorOpen is true while a door operation is under way.
	DoorOpen bool
	// OutOfService: the controller has taken the door out (a jam); its
	// reported door state is not compared.
	OutOfService bool
}

// Difference is one way a cabinet's reported state disagrees with what the
// controller expects.
type Difference struct {
	Compartment int
	Field       string // "occupied", "door", "compartments"
	Expected    string
	Reported    string
}

func (d Difference) String() string {
	if d.Compartment == 0 {
		return fmt.Sprintf("%s: expected %s, reported %s", d.Field, d.Expected, d.Reported)
	}
	return fmt.Sprintf("compartment %d %s: expected %s, reported %s", d.Compartment, d.Field, d.Expected, d.Reported)
}

// Shadow is the controller's copy of one cabinet: the desired state (what
// the controller expects) beside the last reported state, with versions. On
// a reconnect the cabinet republishes its state; Reconcile lists every
// difference instead of guessing which side is right — the controller turns
// them into alarms for a person to resolve. (A door expected open and
// reported locked is no difference: the closing may still be on its way, or
// lost, which the controller settles from the report itself.)
type Shadow struct {
	Cabinet  string
	Reported State
	// Seen is when the last report arrived.
	Seen time.Time
	has  bool
}

// ErrStaleState is returned for a report older than the one already held.
var ErrStaleState = fmt.Errorf("%w: stale reported state", ErrInvalid)

// Reconcile takes a reported state and compares it with the expectations
// (one per compartment, in slot order). A report whose version is not newer
// than the last one held is refused (ErrStaleState) and changes nothing.
func (s *Shadow) Reconcile(st State, expected []Expectation, at time.Time) ([]Difference, error) {
	if err := st.Validate(); err != nil {
		return nil, err
	}
	if st.Cabinet != s.Cabinet {
		return nil, &ProtocolError{What: "state", Msg: fmt.Sprintf("report for cabinet %q reached the shadow of %q", st.Cabinet, s.Cabinet)}
	}
	if s.has && (st.Version < s.Reported.Version || (st.Version == s.Reported.Version && st.Seq <= s.Reported.Seq)) {
		return nil, ErrStaleState
	}
	s.Reported, s.Seen, s.has = st, at, true
	var diffs []Difference
	if len(st.Compartments) != len(expected) {
		diffs = append(diffs, Difference{Field: "compartments",
			Expected: fmt.Sprint(len(expected)), Reported: fmt.Sprint(len(st.Compartments))})
	}
	for i := 0; i < len(expected) && i < len(st.Compartments); i++ {
		want, got := expected[i], st.Compartments[i]
		if got.Occupied != want.Occupied && !want.DoorOpen {
			diffs = append(diffs, Difference{Compartment: i + 1, Field: "occupied",
				Expected: fmt.Sprint(want.Occupied), Reported: fmt.Sprint(got.Occupied)})
		}
		if want.OutOfService {
			continue
		}
		wantDoor := DoorLocked
		if want.DoorOpen {
			wantDoor = DoorOpen
		}
		if got.Door != wantDoor && !(want.DoorOpen && got.Door == DoorLocked) {
			diffs = append(diffs, Difference{Compartment: i + 1, Field: "door",
				Expected: string(wantDoor), Reported: string(got.Door)})
		}
	}
	return diffs, nil
}
