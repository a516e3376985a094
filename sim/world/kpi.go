package world

import (
	"math"
	"sort"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/controller"
	"github.com/lockertwin/lockertwin/sim"
)

// Collector streams a replication's KPIs: counts, time-weighted occupancy
// per class and percentile sketches. Nothing grows with the horizon but the
// hourly rows: memory is bounded by the live state.
type Collector struct {
	w         *shard
	measuring bool

	offeredN, accepted, refusedN, redirectedN, deferredN int
	pickedUp, expired, returned                          int
	courierStops                                         int
	counts                                               map[string]int
	alarms                                               map[string]int
	duplicatesDropped                                    int

	dwell, pickupDelay, doorRTT *Sketch

	occ, capacity []int
	area          []float64 // occupied compartment-hours since the warm-up
	lastT         sim.Time

	// warm are the places (a compartment, or a cabinet that named none)
	// whose temperature is out of range: from a temp_out_of_range alarm to
	// its clearing. warmArea is their place-hours since the warm-up.
	warm     map[warmPlace]bool
	warmArea float64
	exposed  int // measured parcels that left having been in an excursion

	hours                         []HourRow
	hourArea                      []float64
	hourArrivals, hourRefusals    int
	hourPickups, hourDeposits     int
	totalArrivals, totalDeposited int
}

// HourRow is one hour of the measured horizon.
type HourRow struct {
	Hour        int       // hours since the warm-up ended
	Occupancy   []float64 // mean occupied compartments per class over the hour
	Arrivals    int
	Deposits    int
	Refusals    int
	Pickups     int
	Utilization float64 // occupied share of all compartments, mean over the hour
}

func newCollector(w *shard) *Collector {
	n := len(w.sc.CompartmentClasses)
	return &Collector{
		w: w, counts: map[string]int{}, alarms: map[string]int{},
		dwell: NewSketch(), pickupDelay: NewSketch(), doorRTT: NewSketch(),
		occ: make([]int, n), capacity: make([]int, n), area: make([]float64, n), hourArea: make([]float64, n),
	}
}

func (k *Collector) addCapacity(s *site) {
	inv := s.core.Inventory()
	for i := 0; i < inv.Len(); i++ {
		c, _ := inv.Compartment(allocator.CompartmentID(i))
		k.capacity[c.Class]++
	}
}

// start schedules the opening of the measured horizon and the hourly rows.
func (k *Collector) start() {
	eng := k.w.eng
	eng.AtFunc(k.w.warmup, func() {
		k.advance()
		k.measuring = true
		for i := range k.area {
			k.area[i], k.hourArea[i] = 0, 0
		}
		k.warmArea = 0
		k.hourArrivals, k.hourRefusals, k.hourPickups, k.hourDeposits = 0, 0, 0, 0
	})
	k.nextHour(k.w.warmup + sim.Hour)
}

// nextHour schedules the closing of the hour that ends at t, if t is within
// the horizon. One at a time: a month of them scheduled at the start sat in
// every shard's event queue, 720 deep.
func (k *Collector) nextHour(t sim.Time) {
	if t <= k.w.end {
		k.w.eng.AtFunc(t, k.closeHour)
	}
}

// advance accumulates occupancy area up to now.
func (k *Collector) advance() {
	now := k.w.eng.Now()
	if dt := (now - k.lastT).Hours(); dt > 0 && k.measuring {
		for c, n := range k.occ {
			k.area[c] += float64(n) * dt
		}
		k.warmArea += float64(len(k.warm)) * dt
	}
	k.lastT = now
}

func (k *Collector) closeHour() {
	k.advance()
	row := HourRow{Hour: len(k.hours), Occupancy: make([]float64, len(k.occ)),
		Arrivals: k.hourArrivals, Refusals: k.hourRefusals, Pickups: k.hourPickups, Deposits: k.hourDeposits}
	total, capTotal := 0.0, 0
	for c := range k.occ {
		row.Occupancy[c] = k.area[c] - k.hourArea[c]
		k.hourArea[c] = k.area[c]
		total += row.Occupancy[c]
		capTotal += k.capacity[c]
	}
	if capTotal > 0 {
		row.Utilization = total / float64(capTotal)
	}
	k.hours = append(k.hours, row)
	k.hourArrivals, k.hourRefusals, k.hourPickups, k.hourDeposits = 0, 0, 0, 0
	k.nextHour(k.w.eng.Now() + sim.Hour)
}

func (k *Collector) offered(p *parcel) {
	k.totalArrivals++
	if p.measured {
		k.offeredN++
		k.hourArrivals++
	}
}

func (k *Collector) refused(p *parcel, _ error) {
	if p.measured {
		k.refusedN++
		k.hourRefusals++
	}
}

func (k *Collector) redirected(p *parcel) {
	if p.measured {
		k.redirectedN++
	}
}

func (k *Collector) deferred(p *parcel) {
	if p.measured {
		k.deferredN++
	}
}

func (k *Collector) count(name string, p *parcel) {
	if p == nil || p.measured {
		k.counts[name]++
	}
}

// stop counts a courier stop at a site.
func (k *Collector) stop(s *site) {
	k.w.observeStop(s)
	if k.measuring {
		k.courierStops++
	}
}

// deposited is called when the recipient is notified of an arrival.
func (k *Collector) deposited(p *parcel) {
	if p.measured {
		k.accepted++
	}
}

// onEvent reads a site's domain events.
func (k *Collector) onEvent(s *site, e *controller.Event) {
	now := k.w.eng.Now()
	switch e.Kind {
	case controller.Deposited:
		k.advance()
		comp, _ := s.core.Inventory().Compartment(allocator.CompartmentID(e.Compartment))
		k.occ[comp.Class]++
		s.compKPI[e.Compartment].held = e.Parcel
		if len(k.warm) > 0 { // only then can it be deposited into the warm
			k.markExposed(s, e.Parcel)
		}
		k.totalDeposited++
		if k.measuring {
			k.hourDeposits++
		}
	case controller.PickedUp, controller.Returned, controller.ExceptionResolved:
		if e.Compartment < 0 || s.compKPI[e.Compartment].held != e.Parcel ||
			(e.Kind == controller.ExceptionResolved && e.Text != string(controller.ResolveRemoved)) {
			break
		}
		k.advance()
		comp, _ := s.core.Inventory().Compartment(allocator.CompartmentID(e.Compartment))
		k.occ[comp.Class]--
		s.compKPI[e.Compartment].held = ""
		p := k.w.parcels.get(e.Parcel)
		if e.Kind == controller.PickedUp && p != nil {
			k.w.parcels.remove(p)
		}
		if !k.measuring || p == nil {
			break
		}
		k.dwell.Add((now - p.notified).Hours())
		if p.warmed {
			k.exposed++
		}
		switch e.Kind {
		case controller.PickedUp:
			k.pickedUp++
			k.hourPickups++
			k.pickupDelay.Add((now - p.notified).Hours())
		case controller.Returned:
			k.returned++
		}
	case controller.Expired:
		if k.measuring {
			k.expired++
		}
	case controller.AlarmRaised:
		if k.measuring {
			k.alarms[e.Text]++
		}
		if e.Text == controller.ConditionOutOfRange {
			k.advance()
			if k.warm == nil {
				k.warm = map[warmPlace]bool{}
			}
			k.warm[warmPlace{s, e.Cabinet, e.Compartment}] = true
			first, end := s.core.Inventory().Span(allocator.CabinetID(e.Cabinet), allocator.CompartmentID(e.Compartment))
			for id := first; id < end; id++ {
				if held := s.compKPI[id].held; held != "" {
					k.markExposed(s, held)
				}
			}
		}
	case controller.AlarmCleared:
		k.advance()
		delete(k.warm, warmPlace{s, e.Cabinet, e.Compartment})
	case controller.DoorCommanded:
		s.compKPI[e.Compartment].cmd, s.compKPI[e.Compartment].issued = e.Command, now
	case controller.DoorOpened:
		if e.Command != "" && e.Compartment >= 0 && s.compKPI[e.Compartment].cmd == e.Command {
			if k.measuring {
				k.doorRTT.Add(float64(now-s.compKPI[e.Compartment].issued) / float64(sim.Millisecond))
			}
			s.compKPI[e.Compartment].cmd = ""
		}
	case controller.CommandFailed:
		if e.Compartment >= 0 && s.compKPI[e.Compartment].cmd == e.Command {
			s.compKPI[e.Compartment].cmd = ""
		}
	}
}

// markExposed copies the core's word on whether a parcel in the locker
// has been in a temperature excursion (the core decides which parcels an
// excursion reaches).
func (k *Collector) markExposed(s *site, id string) {
	if p := k.w.parcels.get(id); p != nil && s.core.TempExcursion(id) {
		p.warmed = true
	}
}

// warmPlace is a place whose temperature can go out of range.
type warmPlace struct {
	s         *site
	cab, comp int32
}

// compartmentKPI is what the KPIs follow per compartment of a site: the
// parcel deposited in it (counted in the occupancy), and the door command
// in flight (for the round trip). A compartment has at most one of each.
type compartmentKPI struct {
	held   string // parcel id, "" when none
	cmd    string // command id, "" when none
	issued sim.Time
}

// KPI is one named figure of a replication.
type KPI struct {
	Name  string
	Value float64
}

// Result is what one replication measured.
type Result struct {
	Seed    uint64
	KPIs    []KPI
	Classes []string
	Hours   []HourRow
	Dwell   *Sketch
	Events  uint64
	Parcels int // parcels that arrived, warm-up included
}

// Get returns a KPI by name.
func (r *Result) Get(name string) (float64, bool) {
	for _, k := range r.KPIs {
		if k.Name == name {
			return k.Value, true
		}
	}
	return math.NaN(), false
}

// result merges the shards' collectors (in shard order) into the
// replication's result.
func (w *World) result() *Result {
	for _, sh := range w.shards {
		sh.kpi.advance()
	}
	m := newCollector(w.shards[0])
	m.hours = nil
	for i, sh := range w.shards {
		k := sh.kpi
		m.offeredN += k.offeredN
		m.accepted += k.accepted
		m.refusedN += k.refusedN
		m.redirectedN += k.redirectedN
		m.deferredN += k.deferredN
		m.pickedUp += k.pickedUp
		m.expired += k.expired
		m.returned += k.returned
		m.courierStops += k.courierStops
		m.duplicatesDropped += k.duplicatesDropped
		m.totalArrivals += k.totalArrivals
		m.totalDeposited += k.totalDeposited
		for name, n := range k.counts {
			m.counts[name] += n
		}
		for name, n := range k.alarms {
			m.alarms[name] += n
		}
		m.warmArea += k.warmArea
		m.exposed += k.exposed
		m.dwell.Merge(k.dwell)
		m.pickupDelay.Merge(k.pickupDelay)
		m.doorRTT.Merge(k.doorRTT)
		for c := range m.area {
			m.area[c] += k.area[c]
			m.capacity[c] += k.capacity[c]
		}
		for h, row := range k.hours {
			if i == 0 {
				m.hours = append(m.hours, HourRow{Hour: row.Hour, Occupancy: make([]float64, len(row.Occupancy))})
			}
			mr := &m.hours[h]
			for c, v := range row.Occupancy {
				mr.Occupancy[c] += v
			}
			mr.Arrivals += row.Arrivals
			mr.Deposits += row.Deposits
			mr.Refusals += row.Refusals
			mr.Pickups += row.Pickups
		}
	}
	capTotal := 0
	for _, c := range m.capacity {
		capTotal += c
	}
	for h := range m.hours {
		total := 0.0
		for _, v := range m.hours[h].Occupancy {
			total += v
		}
		if capTotal > 0 {
			m.hours[h].Utilization = total / float64(capTotal)
		}
	}
	r := m.summary()
	r.Events = w.Events()
	return r
}

// summary turns a (merged) collector into the KPIs of a result.
func (k *Collector) summary() *Result {
	w := k.w
	horizon := (w.end - w.warmup).Hours()
	nanZero := func(v float64) float64 {
		if math.IsNaN(v) {
			return 0
		}
		return v
	}
	totalArea, totalCap := 0.0, 0
	for c := range k.area {
		totalArea += k.area[c]
		totalCap += k.capacity[c]
	}
	r := &Result{Seed: w.opts.Seed, Classes: w.classNames, Hours: k.hours, Dwell: k.dwell,
		Events: w.eng.Fired(), Parcels: k.totalArrivals}
	add := func(name string, v float64) { r.KPIs = append(r.KPIs, KPI{name, v}) }
	add("offered", float64(k.offeredN))
	add("accepted", float64(k.accepted))
	add("refused", float64(k.refusedN))
	overflow := 0.0
	if k.offeredN > 0 {
		overflow = float64(k.refusedN) / float64(k.offeredN)
	}
	add("overflow_rate", overflow)
	add("redirected", float64(k.redirectedN))
	add("deferred", float64(k.deferredN))
	add("occupancy_mean", totalArea/horizon)
	add("utilization", totalArea/horizon/math.Max(1, float64(totalCap)))
	for c, name := range w.classNames {
		u := 0.0
		if k.capacity[c] > 0 {
			u = k.area[c] / horizon / float64(k.capacity[c])
		}
		add("utilization_"+name, u)
	}
	add("picked_up", float64(k.pickedUp))
	add("expired", float64(k.expired))
	add("returned", float64(k.returned))
	add("dwell_hours_mean", nanZero(k.dwell.Mean()))
	add("dwell_hours_p50", nanZero(k.dwell.Quantile(0.5)))
	add("dwell_hours_p90", nanZero(k.dwell.Quantile(0.9)))
	add("pickup_delay_hours_p50", nanZero(k.pickupDelay.Quantile(0.5)))
	add("pickup_delay_hours_p90", nanZero(k.pickupDelay.Quantile(0.9)))
	add("door_rtt_ms_p50", nanZero(k.doorRTT.Quantile(0.5)))
	add("door_rtt_ms_p99", nanZero(k.doorRTT.Quantile(0.99)))
	add("courier_stops", float64(k.courierStops))
	saved := float64(k.accepted-k.courierStops) * w.sc.Couriers.DoorstepStopM / 1000
	add("distance_saved_km", math.Max(0, saved))
	if hasChilled(w.sc) {
		add(kpiTempExcursionHours, k.warmArea)
		add(kpiTempExposed, float64(k.exposed))
	}
	for _, name := range sortedKeys(k.counts) {
		add(name, float64(k.counts[name]))
	}
	alarmsTotal := 0
	for _, name := range sortedKeys(k.alarms) {
		alarmsTotal += k.alarms[name]
		add(alarmPrefix+name, float64(k.alarms[name]))
	}
	add("alarms_total", float64(alarmsTotal))
	return r
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
