package service

import (
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/controller"
	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/twin"
)

// SiteLayout is what a site's controller is built from: its compartment
// classes, cabinets and compartments, and its policy. It is stored once per
// site; the event log replays onto exactly this layout.
type SiteLayout struct {
	ID       string          `json:"id"`
	Classes  []ClassLayout   `json:"classes"`
	Cabinets []CabinetLayout `json:"cabinets"`
	Policy   PolicyLayout    `json:"policy"`
}

// ClassLayout is a compartment class.
type ClassLayout struct {
	Name     string `json:"name"`
	WidthMm  int    `json:"width_mm"`
	HeightMm int    `json:"height_mm"`
	DepthMm  int    `json:"depth_mm"`
	Zone     string `json:"zone"`
}

// CabinetLayout is a cabinet and its compartments in slot order.
type CabinetLayout struct {
	Name         string              `json:"name"`
	Compartments []CompartmentLayout `json:"compartments"`
}

// CompartmentLayout is one door.
type CompartmentLayout struct {
	Class    string `json:"class"`
	BottomMm int    `json:"bottom_mm"`
	TopMm    int    `json:"top_mm"`
}

// PolicyLayout is the site's controller policy.
type PolicyLayout struct {
	Allocator           string         `json:"allocator"`
	Reserve             map[string]int `json:"reserve,omitempty"`
	PickupWindow        string         `json:"pickup_window"`
	ChilledPickupWindow string         `json:"chilled_pickup_window"`
	ReminderAfter       string         `json:"reminder_after"`
	ReservationTimeout  string         `json:"reservation_timeout"`
}

// LayoutsFromScenario turns a scenario's sites into layouts, with the same
// cabinet names and compartment layout the simulator uses (c1, c2, …).
func LayoutsFromScenario(sc *scenarios.Scenario) ([]SiteLayout, error) {
	var classes []ClassLayout
	var cat []allocator.Class
	index := map[string]int{}
	for i, c := range sc.CompartmentClasses {
		classes = append(classes, ClassLayout{Name: c.Name, WidthMm: c.WidthMm, HeightMm: c.HeightMm, DepthMm: c.DepthMm, Zone: c.Zone})
		z, err := allocator.ParseZone(c.Zone)
		if err != nil {
			return nil, err
		}
		cat = append(cat, allocator.Class{Name: c.Name, WidthMm: c.WidthMm, HeightMm: c.HeightMm, DepthMm: c.DepthMm, Zone: z})
		index[c.Name] = i
	}
	catalog, err := allocator.NewCatalog(cat)
	if err != nil {
		return nil, err
	}
	dur := func(d scenarios.Duration) string { return d.String() }
	policy := PolicyLayout{
		Allocator: sc.Policy.Allocator, PickupWindow: dur(sc.Policy.PickupWindow),
		ChilledPickupWindow: dur(sc.Policy.ChilledPickupWindow), ReminderAfter: dur(sc.Policy.ReminderAfter),
		ReservationTimeout: dur(sc.Policy.ReservationTimeout),
	}
	if len(sc.Policy.Reserve) > 0 {
		policy.Reserve = map[string]int{}
		for _, e := range sc.Policy.Reserve {
			policy.Reserve[e.Key] = e.Value
		}
	}
	var out []SiteLayout
	for _, site := range sc.Sites {
		l := SiteLayout{ID: site.ID, Classes: classes, Policy: policy}
		n := 0
		for _, g := range site.Cabinets {
			model, _ := sc.Model(g.Model)
			var counts []allocator.ClassCount
			for _, e := range model.Compartments {
				counts = append(counts, allocator.ClassCount{Class: allocator.ClassID(index[e.Key]), Count: e.Value})
			}
			for k := 0; k < g.Count; k++ {
				specs, err := allocator.StackLayout(catalog, counts)
				if err != nil {
					return nil, err
				}
				n++
				cab := CabinetLayout{Name: "c" + strconv.Itoa(n)}
				for _, s := range specs {
					cab.Compartments = append(cab.Compartments, CompartmentLayout{Class: catalog.Class(s.Class).Name, BottomMm: s.BottomMm, TopMm: s.TopMm})
				}
				l.Cabinets = append(l.Cabinets, cab)
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// check makes every check starting the site makes (its layout builds, and
// a core accepts its cabinets), on a core with nothing behind it: a layout
// that would not start is refused before it is stored, where it would stop
// every later start of lockerd.
func (l *SiteLayout) check() error {
	inv, pol, set, err := l.build()
	if err != nil {
		return err
	}
	_, err = controller.New(controller.Config{Site: l.ID, Inventory: inv, Policy: pol, Settings: set,
		Clock: twin.NewManualClock(time.Unix(0, 0)), Rand: controller.CryptoRand{}, CodeKey: make([]byte, 32),
		Log: &controller.HeadLog{}, Out: discardOutputs{}})
	return err
}

// discardOutputs drops what a core checked by check would send.
type discardOutputs struct{}

func (discardOutputs) Send(string, twin.Command)      {}
func (discardOutputs) Notify(controller.Notification) {}

// build makes the inventory, policy and settings of a layout.
func (l *SiteLayout) build() (*allocator.Inventory, allocator.Policy, controller.Settings, error) {
	var set controller.Settings
	if !twin.ValidID(l.ID) {
		return nil, nil, set, fmt.Errorf("site id %q must be 1-64 characters of [a-z0-9-]", l.ID)
	}
	var cat []allocator.Class
	for _, c := range l.Classes {
		z, err := allocator.ParseZone(c.Zone)
		if err != nil {
			return nil, nil, set, err
		}
		cat = append(cat, allocator.Class{Name: c.Name, WidthMm: c.WidthMm, HeightMm: c.HeightMm, DepthMm: c.DepthMm, Zone: z})
	}
	catalog, err := allocator.NewCatalog(cat)
	if err != nil {
		return nil, nil, set, err
	}
	var specs []allocator.CabinetSpec
	for _, cab := range l.Cabinets {
		spec := allocator.CabinetSpec{Name: cab.Name}
		for _, c := range cab.Compartments {
			id, ok := catalog.Lookup(c.Class)
			if !ok {
				return nil, nil, set, fmt.Errorf("cabinet %s: unknown class %q", cab.Name, c.Class)
			}
			spec.Compartments = append(spec.Compartments, allocator.CompartmentSpec{Class: id, BottomMm: c.BottomMm, TopMm: c.TopMm})
		}
		specs = append(specs, spec)
	}
	inv, err := allocator.NewInventory(catalog, specs)
	if err != nil {
		return nil, nil, set, err
	}
	name := l.Policy.Allocator
	if name == "" {
		name = scenarios.DefaultAllocator
	}
	// random-fit draws from a stream: in the service it is seeded from
	// crypto/rand (replay does not re-run the policy: events name the door).
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, nil, set, err
	}
	pol, err := allocator.New(name, catalog, allocator.Config{Reserve: l.Policy.Reserve, Rand: rand.New(rand.NewChaCha8(seed))})
	if err != nil {
		return nil, nil, set, err
	}
	parse := func(s string, def time.Duration) (time.Duration, error) {
		if s == "" {
			return def, nil
		}
		d, err := scenarios.ParseDuration(s)
		if err != nil {
			return 0, err
		}
		if d == scenarios.Never {
			return -1, nil
		}
		return d.D(), nil
	}
	if set.PickupWindow, err = parse(l.Policy.PickupWindow, 72*time.Hour); err != nil {
		return nil, nil, set, err
	}
	if set.ChilledPickupWindow, err = parse(l.Policy.ChilledPickupWindow, 0); err != nil {
		return nil, nil, set, err
	}
	if set.ReminderAfter, err = parse(l.Policy.ReminderAfter, 24*time.Hour); err != nil {
		return nil, nil, set, err
	}
	if set.ReservationTimeout, err = parse(l.Policy.ReservationTimeout, 4*time.Hour); err != nil {
		return nil, nil, set, err
	}
	return inv, pol, set, nil
}

func (l *SiteLayout) encode() ([]byte, error) { return json.Marshal(l) }
