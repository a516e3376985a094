package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// SchemaVersion is the scenario schema this package reads.
const SchemaVersion = 1

// Scenario is a deployment to simulate: where the lockers are, what they
// hold, who sends and collects parcels, and how the controller is set up.
// Keys are the contract in DESIGN.md ("Scenario files (schema v1)"); keys
// may be added, none renamed without a version bump.
type Scenario struct {
	Version      int      `yaml:"version"`
	Name         string   `yaml:"name"`
	Description  string   `yaml:"description"`
	Seed         uint64   `yaml:"seed"`
	Duration     Duration `yaml:"duration"`
	Warmup       Duration `yaml:"warmup"`
	Replications int      `yaml:"replications"`

	CompartmentClasses []CompartmentClass `yaml:"compartment_classes"`
	CabinetModels      []CabinetModel     `yaml:"cabinet_models"`
	Sites              []Site             `yaml:"sites"`
	// SiteGrids lays out many identical sites on a rectangular grid (a city
	// network of 2,000 cabinets); they are expanded into Sites after the
	// listed ones, row by row.
	SiteGrids []SiteGrid `yaml:"site_grids"`

	Demand     Demand     `yaml:"demand"`
	Recipients Recipients `yaml:"recipients"`
	Couriers   Couriers   `yaml:"couriers"`
	Policy     Policy     `yaml:"policy"`
	Faults     Faults     `yaml:"faults"`

	// File is where the scenario was read from.
	File string `yaml:"-"`
	pos  map[string]Pos
}

// Zone names for compartment classes.
const (
	ZoneAmbient = "ambient"
	ZoneChilled = "chilled"
	ZoneFrozen  = "frozen"
)

// CompartmentClass is a compartment size: inner dimensions and temperature zone.
type CompartmentClass struct {
	Name     string `yaml:"name"`
	WidthMm  int    `yaml:"width_mm"`
	HeightMm int    `yaml:"height_mm"`
	DepthMm  int    `yaml:"depth_mm"`
	Zone     string `yaml:"zone"` // ambient (default), chilled, frozen
}

// CabinetModel is a kind of cabinet: how many compartments of each class.
type CabinetModel struct {
	Name         string       `yaml:"name"`
	Compartments Ordered[int] `yaml:"compartments"`
}

// Position is a point on the scenario's plane, in metres.
type Position struct {
	XM float64 `yaml:"x_m"`
	YM float64 `yaml:"y_m"`
}

// CabinetGroup is a number of cabinets of one model at a site.
type CabinetGroup struct {
	Model string `yaml:"model"`
	Count int    `yaml:"count"`
}

// Site is one locker location.
type Site struct {
	ID            string         `yaml:"id"`
	Position      Position       `yaml:"position"`
	Cabinets      []CabinetGroup `yaml:"cabinets"`
	ParcelsPerDay *float64       `yaml:"parcels_per_day"` // nil: demand.parcels_per_day
}

// SiteGrid is Rows×Cols identical sites, spaced evenly, with ids
// "{prefix}-{row}-{col}" (zero-padded, starting at 0).
type SiteGrid struct {
	Prefix        string         `yaml:"prefix"`
	Rows          int            `yaml:"rows"`
	Cols          int            `yaml:"cols"`
	SpacingM      float64        `yaml:"spacing_m"`
	Origin        Position       `yaml:"origin"`
	Cabinets      []CabinetGroup `yaml:"cabinets"`
	ParcelsPerDay *float64       `yaml:"parcels_per_day"`
}

// Season scales demand by Factor between From and To (offsets from the
// start of the run, warm-up included). Seasons that overlap multiply: a
// Black Friday week inside a holiday month gets both factors.
type Season struct {
	From   Duration `yaml:"from"`
	To     Duration `yaml:"to"`
	Factor float64  `yaml:"factor"`
}

// SeasonFactor is what the seasons scale demand by at offset t from the
// start: the product of the factors of the seasons t is in, 1 in none.
func (d *Demand) SeasonFactor(t Duration) float64 {
	f := 1.0
	for _, s := range d.Seasonality {
		if t >= s.From && t < s.To {
			f *= s.Factor
		}
	}
	return f
}

// PeakSeasonFactor is the largest SeasonFactor at any time. The product
// changes only where a season starts or ends, so those are the times to
// look at; it is at least 1, the factor between seasons.
func (d *Demand) PeakSeasonFactor() float64 {
	peak := 1.0
	for _, s := range d.Seasonality {
		peak = max(peak, d.SeasonFactor(s.From), d.SeasonFactor(s.To))
	}
	return peak
}

// Demand is how many parcels arrive, when, and what they need.
type Demand struct {
	ParcelsPerDay float64          `yaml:"parcels_per_day"`
	HourlyProfile []float64        `yaml:"hourly_profile"`
	WeeklyProfile []float64        `yaml:"weekly_profile"`
	Seasonality   []Season         `yaml:"seasonality"`
	SizeMix       Ordered[float64] `yaml:"size_mix"`
	ChilledShare  float64          `yaml:"chilled_share"`
	// ChilledSizeMix is the size mix of chilled parcels over chilled classes;
	// absent, every chilled parcel needs the smallest chilled class.
	ChilledSizeMix Ordered[float64] `yaml:"chilled_size_mix"`
}

// Distribution names for pickup delays.
const (
	DistExponential = "exponential"
	DistLognormal   = "lognormal"
	DistGamma       = "gamma"
	DistEmpirical   = "empirical"
	DistFixed       = "fixed"
)

// PickupDelay is the time from notification to the recipient's pickup attempt.
type PickupDelay struct {
	Distribution string    `yaml:"distribution"`
	Mean         Duration  `yaml:"mean"`
	Median       Duration  `yaml:"median"`
	P90          Duration  `yaml:"p90"`
	CV           float64   `yaml:"cv"`
	Days         []float64 `yaml:"days"` // empirical: share picked up on day 1, 2, …
	Value        Duration  `yaml:"value"`
}

// Recipients is how people collect their parcels.
type Recipients struct {
	PickupDelay PickupDelay `yaml:"pickup_delay"`
	NoShowShare float64     `yaml:"no_show_share"`
	// ReminderResponse is the share of recipients still waiting who answer
	// a reminder: they come within a few hours of it (exponential, mean
	// 2 h), or at their drawn time if that is sooner.
	ReminderResponse float64 `yaml:"reminder_response"`
}

// Courier delivery modes and full-locker policies.
const (
	DeliveryIndividual = "individual"
	DeliveryWaves      = "waves"

	OnFullRefuse   = "refuse"
	OnFullNextWave = "next_wave"
	// OnFullNearestSite: the courier drives the parcel to the nearest site
	// within 2 km, and on to the next while they are full too (up to 8);
	// each leg takes RedirectSetup plus the distance at RedirectSpeedKmh.
	OnFullNearestSite = "nearest_site"
)

// Couriers is how parcels reach the lockers.
type Couriers struct {
	Delivery string      `yaml:"delivery"`
	Waves    []TimeOfDay `yaml:"waves"`
	OnFull   string      `yaml:"on_full"`
	// Depot is where courier routes start; it sets the distance figures.
	Depot Position `yaml:"depot"`
	// DoorstepStopM is the mean distance between doorstep stops that a
	// locker drop replaces, used for the distance-saved figure.
	DoorstepStopM float64 `yaml:"doorstep_stop_m"`
	// A nearest_site redirect: time to load up and park at each site, and
	// the van's speed between them.
	RedirectSetup    Duration `yaml:"redirect_setup"`
	RedirectSpeedKmh float64  `yaml:"redirect_speed_kmh"`
}

// Policy is how the controller is configured.
type Policy struct {
	Allocator           string   `yaml:"allocator"`
	PickupWindow        Duration `yaml:"pickup_window"`
	ChilledPickupWindow Duration `yaml:"chilled_pickup_window"`
	ReminderAfter       Duration `yaml:"reminder_after"`
	ReservationTimeout  Duration `yaml:"reservation_timeout"`
	// Reserve is, for the reserve-large allocator, how many compartments of
	// each class to keep free for parcels that need that class.
	Reserve Ordered[int] `yaml:"reserve"`
}

// Faults is what goes wrong, all off by default.
type Faults struct {
	DoorJamProbability      float64        `yaml:"door_jam_probability"`
	SensorErrorProbability  float64        `yaml:"sensor_error_probability"`
	DoorLeftOpenProbability float64        `yaml:"door_left_open_probability"`
	CabinetOutage           *CabinetOutage `yaml:"cabinet_outage"`
	Link                    Link           `yaml:"link"`
}

// CabinetOutage is a cabinet going offline, as mean time between failures
// and mean time to repair.
type CabinetOutage struct {
	MTBF Duration `yaml:"mtbf"`
	MTTR Duration `yaml:"mttr"`
}

// Link is the cabinet link's quality.
type Link struct {
	Latency     Duration `yaml:"latency"`
	Loss        float64  `yaml:"loss"`
	Duplication float64  `yaml:"duplication"`
	Reorder     float64  `yaml:"reorder"`
}

// Defaults applied to keys that are absent.
const (
	DefaultSeed               = 1
	DefaultReplications       = 1
	DefaultAllocator          = "best-fit"
	DefaultPickupWindow       = Duration(72 * time.Hour)
	DefaultReminderAfter      = Duration(24 * time.Hour)
	DefaultReservationTimeout = Duration(4 * time.Hour)
	DefaultDoorstepStopM      = 250
	DefaultRedirectSetup      = Duration(2 * time.Minute)
	DefaultRedirectSpeedKmh   = 25
	// MinRedirectSetup is the shortest redirect leg: the simulator's shards
	// run this long apart, so it bounds how finely they synchronise.
	MinRedirectSetup = Duration(10 * time.Second)
)

// Pos returns where a key path (e.g. "demand.size_mix.S", "sites[2].id")
// stands in the file, or the closest enclosing key that is present.
func (s *Scenario) Pos(path string) Pos {
	for {
		if p, ok := s.pos[path]; ok {
			return p
		}
		if path == "" {
			return Pos{1, 1}
		}
		path = parentPath(path)
	}
}

func parentPath(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		switch path[i] {
		case '.':
			return path[:i]
		case '[':
			return path[:i]
		}
	}
	return ""
}

// Has reports whether the key path was written in the file.
func (s *Scenario) Has(path string) bool {
	_, ok := s.pos[path]
	return ok
}

// Problem makes a Problem located at a key path of this scenario, for
// checks made outside this package (an unknown allocator policy, say).
func (s *Scenario) Problem(path string, sev Severity, format string, args ...any) Problem {
	return Problem{File: s.File, Pos: s.Pos(path), Path: path, Severity: sev, Message: fmt.Sprintf(format, args...)}
}

// Load reads, decodes and validates a scenario file. The returned Problems
// hold every warning; err is non-nil, a Problems of errors, when the
// scenario cannot be run. A file that cannot be read is one problem of the
// file as a whole ("FILE: cannot read the scenario: REASON"): no line of it
// is at fault, and the path is already the problem's file.
func Load(path string) (*Scenario, Problems, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		reason := err.Error()
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			reason = pe.Err.Error()
		}
		return nil, nil, Problems{{File: path, Severity: Error, Message: "cannot read the scenario: " + reason}}
	}
	return Parse(path, data)
}

// Parse decodes and validates a scenario from bytes; file names it in messages.
func Parse(file string, data []byte) (*Scenario, Problems, error) {
	s := &Scenario{File: file, pos: map[string]Pos{}}
	d := &decoder{file: file, pos: s.pos, failed: map[string]bool{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, Problems{{File: file, Pos: Pos{1, 1}, Message: "empty scenario"}}
		}
		return nil, nil, Problems{syntaxProblem(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorf(&extra, "", "a scenario file holds one YAML document; found another")
	} else if !errors.Is(err, io.EOF) {
		return nil, nil, Problems{syntaxProblem(file, err)}
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	d.decode(doc, reflect.ValueOf(s).Elem(), "")
	s.applyDefaults()
	s.validate(d)
	d.problems.Sort()
	if errs := d.problems.Errors(); len(errs) > 0 {
		return s, d.problems.Warnings(), errs
	}
	s.expandGrids()
	return s, d.problems, nil
}

// syntaxProblem turns yaml.v3's "yaml: line N: msg" into a located Problem.
func syntaxProblem(file string, err error) Problem {
	msg := err.Error()
	line := 1
	var rest string
	if n, _ := fmt.Sscanf(msg, "yaml: line %d:", &line); n == 1 {
		if i := len("yaml: line ") + len(strconv.Itoa(line)) + 1; i <= len(msg) {
			rest = msg[i:]
		}
	} else {
		rest = msg
	}
	return Problem{File: file, Pos: Pos{line, 1}, Message: "invalid YAML:" + rest}
}

func (s *Scenario) applyDefaults() {
	if !s.Has("seed") {
		s.Seed = DefaultSeed
	}
	if !s.Has("replications") {
		s.Replications = DefaultReplications
	}
	for i := range s.CompartmentClasses {
		if s.CompartmentClasses[i].Zone == "" {
			s.CompartmentClasses[i].Zone = ZoneAmbient
		}
	}
	if s.Couriers.Delivery == "" {
		s.Couriers.Delivery = DeliveryIndividual
	}
	if s.Couriers.OnFull == "" {
		s.Couriers.OnFull = OnFullRefuse
	}
	if !s.Has("couriers.doorstep_stop_m") {
		s.Couriers.DoorstepStopM = DefaultDoorstepStopM
	}
	if !s.Has("couriers.redirect_setup") {
		s.Couriers.RedirectSetup = DefaultRedirectSetup
	}
	if !s.Has("couriers.redirect_speed_kmh") {
		s.Couriers.RedirectSpeedKmh = DefaultRedirectSpeedKmh
	}
	if s.Policy.Allocator == "" {
		s.Policy.Allocator = DefaultAllocator
	}
	if !s.Has("policy.pickup_window") {
		s.Policy.PickupWindow = DefaultPickupWindow
	}
	if !s.Has("policy.chilled_pickup_window") {
		s.Policy.ChilledPickupWindow = s.Policy.PickupWindow
	}
	if !s.Has("policy.reminder_after") {
		s.Policy.ReminderAfter = DefaultReminderAfter
	}
	if !s.Has("policy.reservation_timeout") {
		s.Policy.ReservationTimeout = DefaultReservationTimeout
	}
}

// siteID is the id of the grid's site at row r, column c: the prefix, then
// the row and the column zero-padded to the width of the largest.
func (g SiteGrid) siteID(r, c int) string {
	digitsR, digitsC := len(strconv.Itoa(g.Rows-1)), len(strconv.Itoa(g.Cols-1))
	return fmt.Sprintf("%s-%0*d-%0*d", g.Prefix, digitsR, r, digitsC, c)
}

// eachSiteID calls seen with the id of every site of the grid, row by row,
// until it reports one already seen (and where); it returns that, or "".
func (g SiteGrid) eachSiteID(seen func(id string) (string, bool)) (where, id string) {
	for r := 0; r < g.Rows; r++ {
		for c := 0; c < g.Cols; c++ {
			id := g.siteID(r, c)
			if first, dup := seen(id); dup {
				return first, id
			}
		}
	}
	return "", ""
}

// expandGrids appends the sites of every grid to Sites.
func (s *Scenario) expandGrids() {
	for gi, g := range s.SiteGrids {
		for r := 0; r < g.Rows; r++ {
			for c := 0; c < g.Cols; c++ {
				id := g.siteID(r, c)
				site := Site{
					ID:            id,
					Position:      Position{XM: g.Origin.XM + float64(c)*g.SpacingM, YM: g.Origin.YM + float64(r)*g.SpacingM},
					Cabinets:      g.Cabinets,
					ParcelsPerDay: g.ParcelsPerDay,
				}
				s.pos["sites["+strconv.Itoa(len(s.Sites))+"]"] = s.Pos(indexPath("site_grids", gi))
				s.Sites = append(s.Sites, site)
			}
		}
	}
	s.SiteGrids = nil
}

// Class returns the compartment class with the given name.
func (s *Scenario) Class(name string) (CompartmentClass, bool) {
	for _, c := range s.CompartmentClasses {
		if c.Name == name {
			return c, true
		}
	}
	return CompartmentClass{}, false
}

// Model returns the cabinet model with the given name.
func (s *Scenario) Model(name string) (CabinetModel, bool) {
	for _, m := range s.CabinetModels {
		if m.Name == name {
			return m, true
		}
	}
	return CabinetModel{}, false
}

// SiteParcelsPerDay is a site's mean parcels per day over a normal week.
func (s *Scenario) SiteParcelsPerDay(site Site) float64 { return s.parcelsPerDay(site.ParcelsPerDay) }

// parcelsPerDay is a site's (or a grid's) own rate if it sets one, else
// demand.parcels_per_day.
func (s *Scenario) parcelsPerDay(own *float64) float64 {
	if own != nil {
		return *own
	}
	return s.Demand.ParcelsPerDay
}

// CabinetCount is the number of cabinets over all sites.
func (s *Scenario) CabinetCount() int {
	n := 0
	for _, site := range s.Sites {
		for _, g := range site.Cabinets {
			n += g.Count
		}
	}
	return n
}
