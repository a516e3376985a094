package allocator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
)

// Request asks for a compartment for one parcel.
type Request struct {
	// Class is the smallest class the parcel needs; used when Dims is zero.
	Class ClassID
	// Dims are the parcel's outer dimensions. When set, the parcel may take
	// any class of Zone it fits in (in some rotation), smallest first.
	Dims Dims
	Zone Zone
	// Hints narrow or steer the choice.
	Hints Hints
}

// Hints steer an allocation. They are honoured by every policy.
type Hints struct {
	// PreferCabinet asks for Cabinet when it has a free fitting compartment
	// of the class being tried; class fit comes first, so a preferred
	// cabinet never causes an upsize.
	PreferCabinet bool
	Cabinet       CabinetID
	// MaxTopMm, when positive, admits only compartments whose opening's top
	// is at most this high: a recipient who needs a low compartment (1,220
	// mm is the usual accessible reach). A hard constraint.
	MaxTopMm int
}

func (h *Hints) any() bool { return h.PreferCabinet || h.MaxTopMm > 0 }

func (h *Hints) admits(c *Compartment) bool { return h.MaxTopMm <= 0 || c.TopMm <= h.MaxTopMm }

// Reason says why a parcel could not be placed.
type Reason uint8

const (
	ReasonNone Reason = iota
	// ReasonNoFittingClass: no class of the parcel's zone can hold it, or
	// the site has no compartment of one that can, at any occupancy.
	// Capacity will not help; a different cabinet model might.
	ReasonNoFittingClass
	// ReasonAllBusy: fitting classes exist, but every fitting compartment
	// (meeting the hints) is reserved, occupied, out of service or in a
	// cabinet that is offline.
	ReasonAllBusy
	// ReasonReserveHeld: the only free fitting compartments are held back
	// for parcels that need them (reserve-large).
	ReasonReserveHeld
	// ReasonVetoed: a hook vetoed the assignment.
	ReasonVetoed
	// ReasonOutOfReach: compartments that fit exist, but none is within the
	// recipient's reach (Hints.MaxTopMm), at any occupancy. Capacity will
	// not help; lower compartments would.
	ReasonOutOfReach
)

func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonNoFittingClass:
		return "no-fitting-class"
	case ReasonAllBusy:
		return "all-busy"
	case ReasonReserveHeld:
		return "reserve-held"
	case ReasonVetoed:
		return "vetoed"
	case ReasonOutOfReach:
		return "out-of-reach"
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// RefusalError is a policy's answer when it cannot place a parcel.
type RefusalError struct {
	Reason Reason
}

func (e *RefusalError) Error() string {
	switch e.Reason {
	case ReasonNoFittingClass:
		return "no compartment class fits the parcel"
	case ReasonAllBusy:
		return "every fitting compartment is busy"
	case ReasonReserveHeld:
		return "the free fitting compartments are held in reserve for parcels that need them"
	case ReasonVetoed:
		return "the assignment was vetoed"
	case ReasonOutOfReach:
		return "no compartment that fits the parcel is within the recipient's reach"
	}
	return "refused: " + e.Reason.String()
}

// The refusals, as comparable sentinels: returning one allocates nothing.
var (
	ErrNoFittingClass error = &RefusalError{ReasonNoFittingClass}
	ErrAllBusy        error = &RefusalError{ReasonAllBusy}
	ErrReserveHeld    error = &RefusalError{ReasonReserveHeld}
	ErrOutOfReach     error = &RefusalError{ReasonOutOfReach}
)

// ReasonOf returns the refusal reason carried by err, or ReasonNone.
func ReasonOf(err error) Reason {
	var r *RefusalError
	if errors.As(err, &r) {
		return r.Reason
	}
	return ReasonNone
}

// Policy chooses a free compartment for a request. It only chooses: the
// Allocator reserves. A policy must return a compartment that is free, in
// service, of a class the parcel fits and of its zone, and meets the hints —
// or a *RefusalError. Given the same inventory state and request it returns
// the same answer (random-fit: the same stream state too).
type Policy interface {
	Name() string
	Choose(inv *Inventory, req Request) (CompartmentID, error)
}

// Config carries the settings a policy may need.
type Config struct {
	// Rand is the random stream for random-fit (required there).
	Rand *rand.Rand
	// Reserve is, for reserve-large, how many free compartments of each
	// class (by name) to keep for parcels that need that class. Empty means
	// DefaultReserve of the largest class of each zone.
	Reserve map[string]int
}

// DefaultReserve is reserve-large's default hold of each zone's largest class.
const DefaultReserve = 2

// Factory makes a policy for a catalog.
type Factory func(cat *Catalog, cfg Config) (Policy, error)

var registry = map[string]Factory{}

// Register adds a policy under a name; registering a name twice panics.
// Call it from an init function.
func Register(name string, f Factory) {
	if _, dup := registry[name]; dup {
		panic("allocator: policy " + name + " registered twice")
	}
	registry[name] = f
}

// Names lists the registered policies, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Known returns nil for a registered policy name, or the error that names
// the registered ones: what every tool says of a misspelt policy.
func Known(name string) error {
	if _, ok := registry[name]; !ok {
		return fmt.Errorf("unknown allocator policy %q (registered: %s)", name, strings.Join(Names(), ", "))
	}
	return nil
}

// New makes the named policy.
func New(name string, cat *Catalog, cfg Config) (Policy, error) {
	if err := Known(name); err != nil {
		return nil, err
	}
	return registry[name](cat, cfg)
}

// candidates returns the classes a request may take, smallest first, and
// whether each must also be checked against the parcel's dimensions.
func candidates(cat *Catalog, req *Request) ([]ClassID, bool, error) {
	if req.Dims.IsZero() {
		if int(req.Class) >= cat.Len() {
			return nil, false, ErrNoFittingClass
		}
		return cat.Upward(req.Class), false, nil
	}
	start, ok := cat.SmallestFitting(req.Dims, req.Zone)
	if !ok {
		return nil, false, ErrNoFittingClass
	}
	return cat.Upward(start), true, nil
}

// chooser is a policy's choice within one class; the upward search, hints
// and reasons are shared.
type chooser interface {
	// pick returns a free compartment of class c (meeting h if any), or -1.
	pick(inv *Inventory, c ClassID, h Hints) CompartmentID
	// mayTake says whether a request may take class c; upsized is true when
	// c is larger than the smallest fitting class.
	mayTake(inv *Inventory, c ClassID, upsized bool) bool
}

func choose(p chooser, inv *Inventory, req *Request) (CompartmentID, error) {
	classes, checkDims, err := candidates(inv.cat, req)
	if err != nil {
		return NoCompartment, err
	}
	held := false
	for i, c := range classes {
		if checkDims && !req.Dims.FitsIn(inv.cat.classes[c].Inner()) {
			continue
		}
		if inv.free[c].count == 0 {
			continue
		}
		if !p.mayTake(inv, c, i > 0) {
			// Held only if the reserve really stands in the way: a free
			// compartment the hints would admit exists.
			held = held || noHeight(&req.Hints) || firstAdmissible(inv, c, &req.Hints) >= 0
			continue
		}
		if req.Hints.PreferCabinet {
			if id := preferred(inv, c, &req.Hints); id >= 0 {
				return id, nil
			}
		}
		if id := p.pick(inv, c, req.Hints); id >= 0 {
			return id, nil
		}
	}
	if held {
		return NoCompartment, ErrReserveHeld
	}
	return NoCompartment, busyOrNever(inv, classes, checkDims, req)
}

// busyOrNever is the reason nothing free was admissible: ErrAllBusy when
// some compartment, free or not, would take the request (capacity will
// help), else what stands in the way at any occupancy: no compartment of a
// fitting class at the site, or none within the recipient's reach.
func busyOrNever(inv *Inventory, classes []ClassID, checkDims bool, req *Request) error {
	exists := false
	for _, c := range classes {
		if checkDims && !req.Dims.FitsIn(inv.cat.classes[c].Inner()) {
			continue
		}
		if inv.lowestTop[c] == noTop {
			continue // the site has none of this class
		}
		exists = true
		if noHeight(&req.Hints) || inv.lowestTop[c] <= req.Hints.MaxTopMm {
			return ErrAllBusy
		}
	}
	if !exists {
		return ErrNoFittingClass
	}
	return ErrOutOfReach
}

// preferred returns the lowest admissible free compartment of class c in
// the preferred cabinet, or -1.
func preferred(inv *Inventory, c ClassID, h *Hints) CompartmentID {
	if h.Cabinet < 0 || int(h.Cabinet) >= len(inv.cabinets) {
		return NoCompartment
	}
	cb := inv.cabinets[h.Cabinet]
	for id := inv.nextFree(c, cb.first); id >= 0 && id < cb.end; id = inv.nextFree(c, id+1) {
		if h.admits(&inv.comps[id]) {
			return id
		}
	}
	return NoCompartment
}

// firstAdmissible returns the lowest-id free compartment of class c that
// meets the hints, or -1. A scan of the class's free set: hinted requests
// are rare, and the bitset walk is still only a few words per 64 doors.
func firstAdmissible(inv *Inventory, c ClassID, h *Hints) CompartmentID {
	for id := inv.firstFree(c); id >= 0; id = inv.nextFree(c, id+1) {
		if h.admits(&inv.comps[id]) {
			return id
		}
	}
	return NoCompartment
}

func noHeight(h *Hints) bool { return h.MaxTopMm <= 0 }

// --- first-fit ------------------------------------------------------------

// firstFit takes the smallest fitting class with a free compartment and in
// it the lowest compartment id: simple, predictable, and it wears the first
// cabinet hardest.
type firstFit struct{}

func (firstFit) Name() string { return "first-fit" }

func (p firstFit) Choose(inv *Inventory, req Request) (CompartmentID, error) {
	return choose(p, inv, &req)
}

func (firstFit) mayTake(*Inventory, ClassID, bool) bool { return true }

func (firstFit) pick(inv *Inventory, c ClassID, h Hints) CompartmentID {
	if noHeight(&h) {
		return inv.firstFree(c)
	}
	return firstAdmissible(inv, c, &h)
}

// --- best-fit -------------------------------------------------------------

// bestFit takes the smallest fitting class with a free compartment and, among
// cabinets, the one with the most free compartments of that class (lowest id
// among ties), then its lowest free compartment: it spreads wear and keeps
// courier queues short at multi-cabinet sites.
type bestFit struct{}

func (bestFit) Name() string { return "best-fit" }

func (p bestFit) Choose(inv *Inventory, req Request) (CompartmentID, error) {
	return choose(p, inv, &req)
}

func (bestFit) mayTake(*Inventory, ClassID, bool) bool { return true }

func (bestFit) pick(inv *Inventory, c ClassID, h Hints) CompartmentID {
	return pickBest(inv, c, &h)
}

func pickBest(inv *Inventory, c ClassID, h *Hints) CompartmentID {
	if noHeight(h) {
		cab := inv.mostFreeCabinet(c)
		if cab < 0 {
			return NoCompartment
		}
		return inv.firstFreeIn(cab, c)
	}
	best, bestFree := NoCompartment, int32(-1)
	for id := inv.firstFree(c); id >= 0; id = inv.nextFree(c, id+1) {
		comp := &inv.comps[id]
		if !h.admits(comp) {
			continue
		}
		if f := inv.cabFree[comp.Cabinet][c]; f > bestFree {
			best, bestFree = id, f
		}
	}
	return best
}

// --- reserve-large --------------------------------------------------------

// reserveLarge is best-fit that keeps a number of free compartments of some
// classes (by default the largest of each zone) for parcels that need them:
// a parcel that needs the class may always take it; a smaller parcel may
// upsize into it only while more than the reserve is free.
type reserveLarge struct {
	keep []int // per class
}

func newReserveLarge(cat *Catalog, cfg Config) (Policy, error) {
	p := &reserveLarge{keep: make([]int, cat.Len())}
	if len(cfg.Reserve) == 0 {
		for z := Zone(0); z < numZones; z++ {
			if c, ok := cat.Largest(z); ok {
				p.keep[c] = DefaultReserve
			}
		}
		return p, nil
	}
	names := make([]string, 0, len(cfg.Reserve))
	for n := range cfg.Reserve {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		c, ok := cat.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("reserve-large: unknown class %q in reserve", name)
		}
		if cfg.Reserve[name] < 0 {
			return nil, fmt.Errorf("reserve-large: negative reserve for class %q", name)
		}
		p.keep[c] = cfg.Reserve[name]
	}
	return p, nil
}

func (*reserveLarge) Name() string { return "reserve-large" }

func (p *reserveLarge) Choose(inv *Inventory, req Request) (CompartmentID, error) {
	return choose(p, inv, &req)
}

func (p *reserveLarge) mayTake(inv *Inventory, c ClassID, upsized bool) bool {
	return !upsized || inv.free[c].count > p.keep[c]
}

func (*reserveLarge) pick(inv *Inventory, c ClassID, h Hints) CompartmentID {
	return pickBest(inv, c, &h)
}

// --- random-fit -----------------------------------------------------------

// randomFit takes the smallest fitting class with a free compartment and a
// compartment of it uniformly at random: the baseline a real policy must
// beat. Its draws come from the stream it is given, so a seed reproduces it.
type randomFit struct {
	rng *rand.Rand
}

func (*randomFit) Name() string { return "random-fit" }

func (p *randomFit) Choose(inv *Inventory, req Request) (CompartmentID, error) {
	return choose(p, inv, &req)
}

func (*randomFit) mayTake(*Inventory, ClassID, bool) bool { return true }

func (p *randomFit) pick(inv *Inventory, c ClassID, h Hints) CompartmentID {
	if noHeight(&h) {
		return inv.nthFree(c, p.rng.IntN(inv.free[c].count))
	}
	n := 0
	for id := inv.firstFree(c); id >= 0; id = inv.nextFree(c, id+1) {
		if h.admits(&inv.comps[id]) {
			n++
		}
	}
	if n == 0 {
		return NoCompartment
	}
	k := p.rng.IntN(n)
	for id := inv.firstFree(c); id >= 0; id = inv.nextFree(c, id+1) {
		if h.admits(&inv.comps[id]) {
			if k == 0 {
				return id
			}
			k--
		}
	}
	return NoCompartment
}

func init() {
	Register("first-fit", func(*Catalog, Config) (Policy, error) { return firstFit{}, nil })
	Register("best-fit", func(*Catalog, Config) (Policy, error) { return bestFit{}, nil })
	Register("reserve-large", newReserveLarge)
	Register("random-fit", func(_ *Catalog, cfg Config) (Policy, error) {
		if cfg.Rand == nil {
			return nil, fmt.Errorf("random-fit needs a random stream (Config.Rand)")
		}
		return &randomFit{rng: cfg.Rand}, nil
	})
}
