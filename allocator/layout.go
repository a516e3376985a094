package allocator

import "fmt"

// Cabinet geometry used by StackLayout: the usable height of a column,
// above a plinth.
const (
	PlinthMm       = 100
	ColumnHeightMm = 1900
)

// ClassCount is a number of compartments of one class.
type ClassCount struct {
	Class ClassID
	Count int
}

// StackLayout places a cabinet's compartments in columns, largest classes at
// the bottom (heavy parcels low), filling a column up to ColumnHeightMm
// before starting the next. Slots are numbered column by column, bottom up,
// as cabinet firmware commonly numbers doors.
func StackLayout(cat *Catalog, counts []ClassCount) ([]CompartmentSpec, error) {
	order := make([]ClassCount, 0, len(counts))
	for _, cc := range counts {
		if int(cc.Class) >= cat.Len() {
			return nil, fmt.Errorf("layout: unknown class %d", cc.Class)
		}
		if cc.Count < 0 {
			return nil, fmt.Errorf("layout: negative count for class %q", cat.Class(cc.Class).Name)
		}
		order = append(order, cc)
	}
	// Largest first by height, then by catalog order: a stable insertion sort
	// (a handful of classes).
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && cat.Class(order[j].Class).HeightMm > cat.Class(order[j-1].Class).HeightMm; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	var specs []CompartmentSpec
	y := PlinthMm
	for _, cc := range order {
		h := cat.Class(cc.Class).HeightMm
		if h > ColumnHeightMm-PlinthMm {
			return nil, fmt.Errorf("layout: class %q (%d mm) is taller than a column", cat.Class(cc.Class).Name, h)
		}
		for k := 0; k < cc.Count; k++ {
			if y+h > ColumnHeightMm {
				y = PlinthMm
			}
			specs = append(specs, CompartmentSpec{Class: cc.Class, BottomMm: y, TopMm: y + h})
			y += h
		}
	}
	return specs, nil
}
