package allocator

import (
	"errors"
	"fmt"
	"math"
)

// CompartmentID indexes a compartment in its site's Inventory. Compartments
// of one cabinet have consecutive ids.
type CompartmentID int32

// NoCompartment is the CompartmentID of no compartment.
const NoCompartment CompartmentID = -1

// CabinetID indexes a cabinet in its site's Inventory.
type CabinetID int32

// Status is a compartment's allocation state.
type Status uint8

const (
	Free Status = iota
	Reserved
	Occupied
	// OutOfService: a jammed door or a broken sensor took the compartment
	// out; it may still hold a parcel (Holding tells).
	OutOfService
)

func (s Status) String() string {
	switch s {
	case Free:
		return "free"
	case Reserved:
		return "reserved"
	case Occupied:
		return "occupied"
	case OutOfService:
		return "out-of-service"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Compartment is one door of a cabinet.
type Compartment struct {
	ID      CompartmentID
	Cabinet CabinetID
	// Slot is the compartment's number within its cabinet, from 1: what the
	// cabinet's firmware and the wire protocol call it.
	Slot  int
	Class ClassID
	// BottomMm and TopMm are the opening's height above the floor.
	BottomMm, TopMm int
}

// CompartmentSpec describes a compartment to build.
type CompartmentSpec struct {
	Class           ClassID
	BottomMm, TopMm int
}

// CabinetSpec describes a cabinet to build: its name and its compartments in
// slot order.
type CabinetSpec struct {
	Name         string
	Compartments []CompartmentSpec
}

// Cabinet is a cabinet of an inventory.
type Cabinet struct {
	ID         CabinetID
	Name       string
	first, end CompartmentID
}

// Compartments returns the cabinet's compartment id range [first, end).
func (c Cabinet) Compartments() (first, end CompartmentID) { return c.first, c.end }

// Inventory is a site's compartments and their states, indexed for
// allocation: free in-service compartments are kept per class in a
// hierarchical bitset, and per class the cabinets are bucketed by how many
// free compartments of that class they have, so that first-fit and best-fit
// choices cost the same for 60 compartments as for 2,000.
//
// An Inventory is not safe for concurrent use; the controller serialises a
// site's inputs on one goroutine.
type Inventory struct {
	cat      *Catalog
	comps    []Compartment
	status   []Status
	holding  []Status // for out-of-service compartments: Free, Reserved or Occupied beneath
	cabinets []Cabinet

	free     []bitset  // per class: free, in-service compartment ids in online cabinets
	cabFree  [][]int32 // [cabinet][class] free in-service count (0 while offline)
	offline  []bool    // per cabinet: unreachable, so nothing in it is handed out
	buckets  [][]bitset
	maxFree  []int32 // per class: the highest cabFree over cabinets
	counts   [4]int
	perClass [][4]int // [class][status] counts
	// lowestTop is, per class, the lowest top of its compartments (noTop
	// when the site has none): whether a reach can ever be met.
	lowestTop []int
}

// noTop is the lowest top of a class the site has no compartment of.
const noTop = math.MaxInt

// Errors of inventory operations. They wrap into *StateError.
var (
	ErrUnknownCompartment = errors.New("unknown compartment")
	ErrWrongState         = errors.New("compartment is not in the state this operation needs")
)

// StateError says which operation failed on which compartment, and why.
type StateError struct {
	Op          string
	Compartment CompartmentID
	Status      Status
	Err         error
}

func (e *StateError) Error() string {
	if errors.Is(e.Err, ErrUnknownCompartment) {
		return fmt.Sprintf("%s compartment %d: %v", e.Op, e.Compartment, e.Err)
	}
	return fmt.Sprintf("%s compartment %d: it is %v", e.Op, e.Compartment, e.Status)
}

func (e *StateError) Unwrap() error { return e.Err }

// NewInventory builds a site's inventory; every compartment starts free and
// in service.
func NewInventory(cat *Catalog, cabinets []CabinetSpec) (*Inventory, error) {
	if len(cabinets) == 0 {
		return nil, fmt.Errorf("inventory: no cabinets")
	}
	inv := &Inventory{cat: cat}
	for ci, spec := range cabinets {
		cab := Cabinet{ID: CabinetID(ci), Name: spec.Name, first: CompartmentID(len(inv.comps))}
		if len(spec.Compartments) == 0 {
			return nil, fmt.Errorf("inventory: cabinet %q has no compartments", spec.Name)
		}
		for slot, cs := range spec.Compartments {
			if int(cs.Class) >= cat.Len() {
				return nil, fmt.Errorf("inventory: cabinet %q slot %d: unknown class %d", spec.Name, slot+1, cs.Class)
			}
			inv.comps = append(inv.comps, Compartment{
				ID: CompartmentID(len(inv.comps)), Cabinet: cab.ID, Slot: slot + 1,
				Class: cs.Class, BottomMm: cs.BottomMm, TopMm: cs.TopMm,
			})
		}
		cab.end = CompartmentID(len(inv.comps))
		inv.cabinets = append(inv.cabinets, cab)
	}
	n, nc, ncab := len(inv.comps), cat.Len(), len(cabinets)
	if n > maxBitsetLen {
		return nil, fmt.Errorf("inventory: %d compartments, at most %d per site", n, maxBitsetLen)
	}
	inv.status = make([]Status, n)
	inv.holding = make([]Status, n)
	inv.free = make([]bitset, nc)
	inv.perClass = make([][4]int, nc)
	for c := range inv.free {
		inv.free[c] = newBitset(n)
	}
	inv.cabFree = make([][]int32, ncab)
	inv.offline = make([]bool, ncab)
	perCab := make([][]int32, nc) // max per-cabinet count by class, to size buckets
	for c := range perCab {
		perCab[c] = make([]int32, ncab)
	}
	for i := range inv.cabFree {
		inv.cabFree[i] = make([]int32, nc)
	}
	for _, comp := range inv.comps {
		perCab[comp.Class][comp.Cabinet]++
	}
	inv.buckets = make([][]bitset, nc)
	inv.maxFree = make([]int32, nc)
	for c := range inv.buckets {
		top := int32(0)
		for _, k := range perCab[c] {
			top = max(top, k)
		}
		inv.buckets[c] = make([]bitset, top+1)
		for k := range inv.buckets[c] {
			if k > 0 {
				inv.buckets[c][k] = newBitset(ncab)
			}
		}
	}
	inv.lowestTop = make([]int, nc)
	for c := range inv.lowestTop {
		inv.lowestTop[c] = noTop
	}
	for _, comp := range inv.comps {
		inv.perClass[comp.Class][Free]++
		inv.addFree(comp.ID)
		inv.lowestTop[comp.Class] = min(inv.lowestTop[comp.Class], comp.TopMm)
	}
	inv.counts[Free] = n
	return inv, nil
}

// Catalog returns the inventory's class catalog.
func (inv *Inventory) Catalog() *Catalog { return inv.cat }

// Len is the number of compartments.
func (inv *Inventory) Len() int { return len(inv.comps) }

// Compartment returns a compartment by id; ok is false for an unknown id.
func (inv *Inventory) Compartment(id CompartmentID) (Compartment, bool) {
	if id < 0 || int(id) >= len(inv.comps) {
		return Compartment{}, false
	}
	return inv.comps[id], true
}

// Cabinets lists the cabinets in id order.
func (inv *Inventory) Cabinets() []Cabinet { return inv.cabinets }

// Span returns the compartment ids [first, end) a place names: comp
// alone, or, when comp is NoCompartment, every compartment of cab (an
// alarm about a cabinet as a whole, say).
func (inv *Inventory) Span(cab CabinetID, comp CompartmentID) (first, end CompartmentID) {
	if comp == NoCompartment {
		return inv.cabinets[cab].Compartments()
	}
	return comp, comp + 1
}

// CompartmentAt returns the compartment in a cabinet's slot (from 1).
func (inv *Inventory) CompartmentAt(cab CabinetID, slot int) (CompartmentID, bool) {
	if cab < 0 || int(cab) >= len(inv.cabinets) {
		return NoCompartment, false
	}
	c := inv.cabinets[cab]
	id := c.first + CompartmentID(slot-1)
	if slot < 1 || id >= c.end {
		return NoCompartment, false
	}
	return id, true
}

// Status returns a compartment's status (OutOfService for an unknown id is
// never returned: check the id with Compartment first).
func (inv *Inventory) Status(id CompartmentID) Status { return inv.status[id] }

// Holding returns what an out-of-service compartment held when it was taken
// out (Free, Reserved or Occupied); for others it equals Status.
func (inv *Inventory) Holding(id CompartmentID) Status {
	if inv.status[id] == OutOfService {
		return inv.holding[id]
	}
	return inv.status[id]
}

// Count returns how many compartments have a status.
func (inv *Inventory) Count(s Status) int { return inv.counts[s] }

// ClassCount returns how many compartments of a class have a status.
func (inv *Inventory) ClassCount(c ClassID, s Status) int { return inv.perClass[c][s] }

// FreeCount returns the free, in-service compartments of a class in online
// cabinets: those a policy may hand out.
func (inv *Inventory) FreeCount(c ClassID) int { return inv.free[c].count }

// FreeInCabinet returns a cabinet's free, in-service compartments of a class;
// 0 while the cabinet is offline.
func (inv *Inventory) FreeInCabinet(cab CabinetID, c ClassID) int { return int(inv.cabFree[cab][c]) }

func (inv *Inventory) check(op string, id CompartmentID) *StateError {
	if id < 0 || int(id) >= len(inv.comps) {
		return &StateError{Op: op, Compartment: id, Err: ErrUnknownCompartment}
	}
	return nil
}

func (inv *Inventory) move(op string, id CompartmentID, from, to Status) error {
	if err := inv.check(op, id); err != nil {
		return err
	}
	if inv.status[id] == OutOfService && inv.holding[id] == from && to != Reserved {
		// A reservation may lapse, a deposit complete or a parcel leave
		// while the door is out of service: that changes what it holds,
		// and it stays out.
		inv.holding[id] = to
		return nil
	}
	if inv.status[id] != from {
		return &StateError{Op: op, Compartment: id, Status: inv.status[id], Err: ErrWrongState}
	}
	inv.setStatus(id, to)
	return nil
}

func (inv *Inventory) setStatus(id CompartmentID, to Status) {
	from := inv.status[id]
	indexed := !inv.offline[inv.comps[id].Cabinet]
	if from == Free && indexed {
		inv.removeFree(id)
	}
	inv.status[id] = to
	if to == Free && indexed {
		inv.addFree(id)
	}
	c := inv.comps[id].Class
	inv.counts[from]--
	inv.counts[to]++
	inv.perClass[c][from]--
	inv.perClass[c][to]++
}

// Reserve marks a free compartment reserved for a parcel on its way.
func (inv *Inventory) Reserve(id CompartmentID) error { return inv.move("reserve", id, Free, Reserved) }

// Release frees a reserved compartment (the reservation timed out or was
// cancelled). Release, Occupy and Vacate also apply to what an
// out-of-service compartment holds (see Holding); Reserve never does.
func (inv *Inventory) Release(id CompartmentID) error {
	return inv.move("release", id, Reserved, Free)
}

// Occupy marks a reserved compartment occupied (the parcel was deposited).
func (inv *Inventory) Occupy(id CompartmentID) error {
	return inv.move("occupy", id, Reserved, Occupied)
}

// Vacate frees an occupied compartment (the parcel was picked up or returned).
func (inv *Inventory) Vacate(id CompartmentID) error { return inv.move("vacate", id, Occupied, Free) }

// TakeOutOfService removes a compartment from allocation whatever it holds.
func (inv *Inventory) TakeOutOfService(id CompartmentID) error {
	if err := inv.check("take out of service", id); err != nil {
		return err
	}
	if inv.status[id] == OutOfService {
		return &StateError{Op: "take out of service", Compartment: id, Status: OutOfService, Err: ErrWrongState}
	}
	inv.holding[id] = inv.status[id]
	inv.setStatus(id, OutOfService)
	return nil
}

// ReturnToService puts a repaired compartment back with what it held.
func (inv *Inventory) ReturnToService(id CompartmentID) error {
	if err := inv.check("return to service", id); err != nil {
		return err
	}
	if inv.status[id] != OutOfService {
		return &StateError{Op: "return to service", Compartment: id, Status: inv.status[id], Err: ErrWrongState}
	}
	inv.setStatus(id, inv.holding[id])
	return nil
}

// ClearOutOfService records that an out-of-service compartment is now empty
// (its parcel was recovered by hand), so that it returns to service free.
func (inv *Inventory) ClearOutOfService(id CompartmentID) error {
	if err := inv.check("clear", id); err != nil {
		return err
	}
	if inv.status[id] != OutOfService {
		return &StateError{Op: "clear", Compartment: id, Status: inv.status[id], Err: ErrWrongState}
	}
	inv.holding[id] = Free
	return nil
}

// SetCabinetOnline records whether a cabinet can be reached. While it is
// offline its free compartments stay free (they count as such) but no policy
// sees them: a courier sent there could not open a door. Reservations and
// parcels already in it are untouched.
func (inv *Inventory) SetCabinetOnline(cab CabinetID, online bool) error {
	if cab < 0 || int(cab) >= len(inv.cabinets) {
		return fmt.Errorf("inventory: unknown cabinet %d", cab)
	}
	if inv.offline[cab] == !online {
		return nil
	}
	cb := inv.cabinets[cab]
	for id := cb.first; id < cb.end; id++ {
		if inv.status[id] != Free {
			continue
		}
		if online {
			inv.addFree(id)
		} else {
			inv.removeFree(id)
		}
	}
	inv.offline[cab] = !online
	return nil
}

// CabinetOnline reports whether a cabinet's compartments may be handed out.
func (inv *Inventory) CabinetOnline(cab CabinetID) bool { return !inv.offline[cab] }

func (inv *Inventory) addFree(id CompartmentID) {
	comp := &inv.comps[id]
	c := comp.Class
	inv.free[c].set(int(id))
	k := inv.cabFree[comp.Cabinet][c]
	b := inv.buckets[c]
	if k > 0 {
		b[k].clear(int(comp.Cabinet))
	}
	k++
	inv.cabFree[comp.Cabinet][c] = k
	b[k].set(int(comp.Cabinet))
	if k > inv.maxFree[c] {
		inv.maxFree[c] = k
	}
}

func (inv *Inventory) removeFree(id CompartmentID) {
	comp := &inv.comps[id]
	c := comp.Class
	inv.free[c].clear(int(id))
	k := inv.cabFree[comp.Cabinet][c]
	b := inv.buckets[c]
	b[k].clear(int(comp.Cabinet))
	if k == inv.maxFree[c] && b[k].count == 0 {
		// Counts move by one, so this cabinet now tops the next bucket down.
		inv.maxFree[c] = k - 1
	}
	k--
	inv.cabFree[comp.Cabinet][c] = k
	if k > 0 {
		b[k].set(int(comp.Cabinet))
	}
}

// mostFreeCabinet returns the cabinet with the most free compartments of a
// class (the lowest id among ties), or -1 when none is free.
func (inv *Inventory) mostFreeCabinet(c ClassID) CabinetID {
	k := inv.maxFree[c]
	if k == 0 {
		return -1
	}
	return CabinetID(inv.buckets[c][k].first())
}

// firstFreeIn returns the lowest free compartment of a class in a cabinet.
func (inv *Inventory) firstFreeIn(cab CabinetID, c ClassID) CompartmentID {
	cb := inv.cabinets[cab]
	return CompartmentID(inv.free[c].nextIn(int(cb.first), int(cb.end)))
}

// firstFree returns the lowest free compartment of a class, or -1.
func (inv *Inventory) firstFree(c ClassID) CompartmentID { return CompartmentID(inv.free[c].first()) }

// nthFree returns the k-th free compartment of a class in id order, or -1.
func (inv *Inventory) nthFree(c ClassID, k int) CompartmentID {
	return CompartmentID(inv.free[c].nth(k))
}

// nextFree returns the lowest free compartment of a class with id ≥ from.
func (inv *Inventory) nextFree(c ClassID, from CompartmentID) CompartmentID {
	return CompartmentID(inv.free[c].next(int(from)))
}
