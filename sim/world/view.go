package world

import (
	"time"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/controller"
)

// Observation is what a view sees of the world: a domain event named by
// site, cabinet and slot (never codes or recipients), or a courier stop.
type Observation struct {
	At          time.Time
	Site        string
	Cabinet     string
	Compartment int // slot in the cabinet, 0 if none
	Kind        string
	Parcel      string
	Detail      string
}

// CourierStop is the Kind of an observation of a courier stopping at a site.
const CourierStop = "courier_stop"

// Layout describes the world for a view: sites, their cabinets and
// compartments, the depot.
type Layout struct {
	Depot   [2]float64
	Sites   []SiteLayout
	Classes []string
}

// SiteLayout is one site for a view.
type SiteLayout struct {
	ID       string
	X, Y     float64 // metres
	Cabinets []CabinetLayout
}

// CabinetLayout is one cabinet for a view.
type CabinetLayout struct {
	Name         string
	Compartments []CompartmentLayout
}

// CompartmentLayout is one door for a view.
type CompartmentLayout struct {
	Class   string
	Chilled bool
}

// Layout returns the world's layout.
func (w *World) Layout() Layout {
	l := Layout{Depot: [2]float64{w.sc.Couriers.Depot.XM, w.sc.Couriers.Depot.YM}, Classes: w.shards[0].classNames}
	for _, s := range w.sites {
		sl := SiteLayout{ID: s.id, X: s.pos.XM, Y: s.pos.YM}
		inv := s.core.Inventory()
		for _, cb := range inv.Cabinets() {
			cl := CabinetLayout{Name: cb.Name}
			first, end := cb.Compartments()
			for id := first; id < end; id++ {
				c, _ := inv.Compartment(id)
				class := inv.Catalog().Class(c.Class)
				cl.Compartments = append(cl.Compartments, CompartmentLayout{Class: class.Name, Chilled: class.Zone == allocator.Chilled})
			}
			sl.Cabinets = append(sl.Cabinets, cl)
		}
		l.Sites = append(l.Sites, sl)
	}
	return l
}

// Watch sends the world's observations to f, in order, as they happen.
func (w *World) Watch(f func(Observation)) { w.watch = f }

func (w *shard) observe(s *site, e *controller.Event) {
	watch := w.world.watch
	if watch == nil {
		return
	}
	o := Observation{At: Epoch.Add(time.Duration(w.eng.Now())), Site: s.id, Kind: e.Kind.String(), Parcel: e.Parcel}
	inv := s.core.Inventory()
	if e.Cabinet >= 0 && int(e.Cabinet) < len(inv.Cabinets()) {
		o.Cabinet = inv.Cabinets()[e.Cabinet].Name
	}
	if c, ok := inv.Compartment(allocator.CompartmentID(e.Compartment)); ok && e.Compartment >= 0 {
		o.Compartment = c.Slot
	}
	switch e.Kind {
	case controller.AlarmRaised, controller.AlarmCleared, controller.Refused, controller.ExceptionResolved, controller.CabinetStatus:
		o.Detail = e.Text
	}
	watch(o)
}

func (w *shard) observeStop(s *site) {
	if watch := w.world.watch; watch != nil {
		watch(Observation{At: Epoch.Add(time.Duration(w.eng.Now())), Site: s.id, Kind: CourierStop})
	}
}

// Now is the world's virtual time as a wall-clock time.
func (w *World) Now() time.Time { return Epoch.Add(time.Duration(w.now)) }
