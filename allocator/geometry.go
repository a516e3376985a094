package allocator

import (
	"fmt"
	"slices"
)

// Zone is a compartment's temperature zone. A parcel never changes zone:
// upsizing stays within it.
type Zone uint8

const (
	Ambient Zone = iota
	Chilled
	Frozen
	numZones
)

func (z Zone) String() string {
	switch z {
	case Ambient:
		return "ambient"
	case Chilled:
		return "chilled"
	case Frozen:
		return "frozen"
	}
	return fmt.Sprintf("Zone(%d)", uint8(z))
}

// ParseZone reads a zone name as scenarios write it.
func ParseZone(s string) (Zone, error) {
	switch s {
	case "ambient", "":
		return Ambient, nil
	case "chilled":
		return Chilled, nil
	case "frozen":
		return Frozen, nil
	}
	return 0, fmt.Errorf("unknown zone %q (ambient, chilled, frozen)", s)
}

// Dims are a box's outer (parcel) or inner (compartment) dimensions in mm.
type Dims struct {
	LengthMm, WidthMm, HeightMm int
}

// IsZero reports whether no dimension is set.
func (d Dims) IsZero() bool { return d == Dims{} }

func (d Dims) sorted() [3]int {
	s := [3]int{d.LengthMm, d.WidthMm, d.HeightMm}
	if s[0] > s[1] {
		s[0], s[1] = s[1], s[0]
	}
	if s[1] > s[2] {
		s[1], s[2] = s[2], s[1]
	}
	if s[0] > s[1] {
		s[0], s[1] = s[1], s[0]
	}
	return s
}

// FitsIn reports whether a box of dims d fits in a box of dims inner in some
// axis-aligned rotation: sorted side by sorted side.
func (d Dims) FitsIn(inner Dims) bool {
	a, b := d.sorted(), inner.sorted()
	return a[0] <= b[0] && a[1] <= b[1] && a[2] <= b[2]
}

// Class is a compartment size: inner dimensions and zone.
type Class struct {
	Name string
	// Inner dimensions, as the scenario writes them: width × height × depth.
	WidthMm, HeightMm, DepthMm int
	Zone                       Zone
}

// Inner returns the class's inner dimensions.
func (c Class) Inner() Dims {
	return Dims{LengthMm: c.DepthMm, WidthMm: c.WidthMm, HeightMm: c.HeightMm}
}

func (c Class) volume() int { return c.WidthMm * c.HeightMm * c.DepthMm }

// ClassID indexes a class in its Catalog.
type ClassID uint8

// Catalog is the ordered set of compartment classes of a network. Within a
// zone, classes are ordered smallest first; upsizing means taking a later
// class of the same zone.
type Catalog struct {
	classes []Class
	byZone  [numZones][]ClassID
	// upward[c] lists c and every larger class of its zone, in order.
	upward [][]ClassID
}

// MaxClasses is how many classes a catalog may hold.
const MaxClasses = 32

// NewCatalog checks and orders a list of classes. Names must be unique,
// dimensions positive, and each class at least as large (by volume) as the
// previous class of its zone.
func NewCatalog(classes []Class) (*Catalog, error) {
	if len(classes) == 0 {
		return nil, fmt.Errorf("catalog: no compartment classes")
	}
	if len(classes) > MaxClasses {
		return nil, fmt.Errorf("catalog: %d classes, at most %d", len(classes), MaxClasses)
	}
	c := &Catalog{classes: slices.Clone(classes), upward: make([][]ClassID, len(classes))}
	seen := map[string]bool{}
	for i, cl := range classes {
		switch {
		case cl.Name == "":
			return nil, fmt.Errorf("catalog: class %d has no name", i)
		case seen[cl.Name]:
			return nil, fmt.Errorf("catalog: class %q defined twice", cl.Name)
		case cl.WidthMm <= 0 || cl.HeightMm <= 0 || cl.DepthMm <= 0:
			return nil, fmt.Errorf("catalog: class %q needs positive dimensions", cl.Name)
		case cl.Zone >= numZones:
			return nil, fmt.Errorf("catalog: class %q has unknown zone %v", cl.Name, cl.Zone)
		}
		seen[cl.Name] = true
		z := c.byZone[cl.Zone]
		if n := len(z); n > 0 && cl.volume() < classes[z[n-1]].volume() {
			return nil, fmt.Errorf("catalog: class %q is smaller than %q before it in zone %v; list classes smallest first",
				cl.Name, classes[z[n-1]].Name, cl.Zone)
		}
		c.byZone[cl.Zone] = append(z, ClassID(i))
	}
	for _, ids := range c.byZone {
		for j, id := range ids {
			c.upward[id] = ids[j:]
		}
	}
	return c, nil
}

// Len is the number of classes.
func (c *Catalog) Len() int { return len(c.classes) }

// Class returns a class by id.
func (c *Catalog) Class(id ClassID) Class { return c.classes[id] }

// Lookup returns the id of the class with the given name.
func (c *Catalog) Lookup(name string) (ClassID, bool) {
	for i, cl := range c.classes {
		if cl.Name == name {
			return ClassID(i), true
		}
	}
	return 0, false
}

// Zone lists the classes of a zone, smallest first.
func (c *Catalog) Zone(z Zone) []ClassID {
	if z >= numZones {
		return nil
	}
	return c.byZone[z]
}

// Upward lists id and every larger class of its zone, smallest first: the
// classes a parcel needing id may take.
// An unknown id has none.
func (c *Catalog) Upward(id ClassID) []ClassID {
	if int(id) >= len(c.upward) {
		return nil
	}
	return c.upward[id]
}

// Largest returns the largest class of a zone.
func (c *Catalog) Largest(z Zone) (ClassID, bool) {
	ids := c.Zone(z)
	if len(ids) == 0 {
		return 0, false
	}
	return ids[len(ids)-1], true
}

// SmallestFitting returns the smallest class of zone z that a parcel of the
// given outer dimensions fits in, in some rotation.
func (c *Catalog) SmallestFitting(d Dims, z Zone) (ClassID, bool) {
	for _, id := range c.Zone(z) {
		if d.FitsIn(c.classes[id].Inner()) {
			return id, true
		}
	}
	return 0, false
}
