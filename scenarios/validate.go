package scenarios

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"
)

var namePattern = regexp.MustCompile(`^[a-z0-9-]+$`)

// classNamePattern is what a compartment class may be called. Its name
// becomes part of KPI names (utilization_M-cold) and of timeseries.csv's
// header (occupied_M-cold), where a comma, quote or space would break the
// column or the name.
var classNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$`)

// MaxSiteIDLen is the longest site id: the cabinet protocol's limit on
// ids (twin.MaxIDLen, which a test holds equal), since a site's id names
// its cabinets' topics.
const MaxSiteIDLen = 64

// MaxClasses is how many compartment classes a scenario may define: what
// the allocator's catalog holds (allocator.MaxClasses, which a test holds
// equal).
const MaxClasses = 32

// MaxCabinetCompartments is the most compartments a cabinet can have: the
// cabinet protocol numbers them 1 to 512 (twin.MaxCompartments, which a
// test holds equal; this package imports no other of lockertwin's).
const MaxCabinetCompartments = 512

// The most a scenario may ask for. Each is far beyond a real deployment
// (the city network is 2,000 cabinets of 100 doors, 60 parcels a day each,
// simulated for a month), and each keeps a run's arithmetic inside its
// types: a mistyped number is refused here, not found as a run that
// overflows, never ends or runs out of memory.
const (
	MaxHorizon       = Duration(3650 * day) // warm-up plus duration: ten years
	MaxCompartmentMm = 10_000               // a side of a compartment class: 10 m
	MaxGridSites     = 100_000              // sites of one site grid
	MaxCabinets      = 100_000              // cabinets over all sites
	MaxParcelsPerDay = 1_000_000            // at one site
	MaxSeasonFactor  = 1_000                // demand at the peak of the seasons, over the normal
	MinOutageMTBF    = Duration(time.Hour)  // mean time between a cabinet's outages
)

// shareTolerance is how far a list of shares may be from summing to 1.
const shareTolerance = 1e-6

// checker collects semantic problems at key paths of a scenario.
type checker struct {
	s *Scenario
	d *decoder
}

// errorf reports a problem at path, unless the value there already failed to
// decode: one mistake gets one message.
func (c checker) errorf(path, format string, args ...any) {
	if c.d.failed[path] {
		return
	}
	c.d.problems = append(c.d.problems, c.s.Problem(path, Error, format, args...))
}

func (c checker) warnf(path, format string, args ...any) {
	c.d.problems = append(c.d.problems, c.s.Problem(path, Warning, format, args...))
}

// validate checks everything the decoder cannot: ranges, references between
// sections, and combinations that make no sense. It reports every problem.
func (s *Scenario) validate(d *decoder) {
	c := checker{s: s, d: d}
	if !s.Has("version") {
		c.errorf("", "version is required (this is schema %d)", SchemaVersion)
	} else if s.Version != SchemaVersion {
		c.errorf("version", "version %d is not supported; this build reads schema %d", s.Version, SchemaVersion)
	}
	switch {
	case s.Name == "":
		c.errorf("", "name is required")
	case !namePattern.MatchString(s.Name):
		c.errorf("name", "name %q must match [a-z0-9-]+", s.Name)
	}
	c.positiveDuration("duration", s.Duration, true)
	if s.Warmup == Never {
		c.errorf("warmup", "warmup cannot be none")
	} else if err := CheckHorizon(s.Warmup, s.Duration); err != nil {
		c.errorf("duration", "%v", err)
	}
	if s.Replications < 1 || s.Replications > 10_000 {
		c.errorf("replications", "replications must be between 1 and 10000, got %d", s.Replications)
	}
	classes := c.classes()
	models := c.models(classes)
	c.sites(models)
	c.demand(classes, models)
	c.recipients()
	c.couriers()
	c.policy(classes)
	c.faults()
}

func (c checker) positiveDuration(path string, d Duration, required bool) {
	switch {
	case !c.s.Has(path):
		if required {
			c.errorf(parentPath(path), "%s is required", path)
		}
	case d == Never:
		c.errorf(path, "%s cannot be none", path)
	case d <= 0:
		c.errorf(path, "%s must be positive", path)
	}
}

func (c checker) share(path string, v float64) {
	if math.IsNaN(v) || v < 0 || v > 1 {
		c.errorf(path, "%s must be between 0 and 1, got %g", path, v)
	}
}

// classes checks compartment classes and returns them by name.
func (c checker) classes() map[string]CompartmentClass {
	s := c.s
	byName := map[string]CompartmentClass{}
	if len(s.CompartmentClasses) == 0 {
		c.errorf("", "compartment_classes: at least one class is required")
	} else if n := len(s.CompartmentClasses); n > MaxClasses {
		c.errorf("compartment_classes", "%d compartment classes, at most %d", n, MaxClasses)
	}
	lastVolume := map[string]int{}
	for i, cl := range s.CompartmentClasses {
		p := indexPath("compartment_classes", i)
		if cl.Name == "" {
			c.errorf(p, "compartment class needs a name")
		} else if !classNamePattern.MatchString(cl.Name) {
			c.errorf(p+".name", "compartment class name %q must be 1-32 characters of [A-Za-z0-9._-], starting with a letter or digit (it becomes part of KPI names and CSV columns)", cl.Name)
		} else if _, dup := byName[cl.Name]; dup {
			c.errorf(p+".name", "compartment class %q is defined twice", cl.Name)
		}
		sized := true
		for _, dim := range []struct {
			key string
			v   int
		}{{"width_mm", cl.WidthMm}, {"height_mm", cl.HeightMm}, {"depth_mm", cl.DepthMm}} {
			if dim.v <= 0 || dim.v > MaxCompartmentMm {
				c.errorf(p+"."+dim.key, "%s of class %q must be a number of millimetres from 1 to %d, got %d", dim.key, cl.Name, MaxCompartmentMm, dim.v)
				sized = false
			}
		}
		switch cl.Zone {
		case ZoneAmbient, ZoneChilled, ZoneFrozen:
		default:
			c.errorf(p+".zone", "zone %q is not one of ambient, chilled, frozen", cl.Zone)
		}
		if sized { // its volume is within an int, and a class with a wrong size is not compared
			vol := cl.WidthMm * cl.HeightMm * cl.DepthMm
			if prev, ok := lastVolume[cl.Zone]; ok && vol < prev {
				c.errorf(p, "class %q is smaller than the class before it in zone %s; list classes smallest first", cl.Name, cl.Zone)
			}
			lastVolume[cl.Zone] = vol
		}
		if _, dup := byName[cl.Name]; cl.Name != "" && !dup {
			byName[cl.Name] = cl
		}
	}
	return byName
}

func classNames(s *Scenario) []string {
	names := make([]string, len(s.CompartmentClasses))
	for i, cl := range s.CompartmentClasses {
		names[i] = cl.Name
	}
	return names
}

func (c checker) models(classes map[string]CompartmentClass) map[string]CabinetModel {
	s := c.s
	byName := map[string]CabinetModel{}
	if len(s.CabinetModels) == 0 {
		c.errorf("", "cabinet_models: at least one cabinet model is required")
	}
	for i, m := range s.CabinetModels {
		p := indexPath("cabinet_models", i)
		if m.Name == "" {
			c.errorf(p, "cabinet model needs a name")
		} else if _, dup := byName[m.Name]; dup {
			c.errorf(p+".name", "cabinet model %q is defined twice", m.Name)
		}
		total := 0
		for _, e := range m.Compartments {
			kp := p + ".compartments." + e.Key
			if _, ok := classes[e.Key]; !ok {
				c.errorf(kp+"#key", "cabinet model %q: unknown compartment class %q%s", m.Name, e.Key, Suggest(e.Key, classNames(s)))
			}
			if e.Value < 0 {
				c.errorf(kp, "cabinet model %q: compartment count for %q cannot be negative", m.Name, e.Key)
			}
			total += e.Value
		}
		if total <= 0 {
			c.errorf(p, "cabinet model %q has no compartments", m.Name)
		} else if total > MaxCabinetCompartments {
			c.errorf(p+".compartments", "cabinet model %q has %d compartments, at most %d (what the cabinet protocol numbers)", m.Name, total, MaxCabinetCompartments)
		}
		if _, dup := byName[m.Name]; m.Name != "" && !dup {
			byName[m.Name] = m
		}
	}
	return byName
}

func (c checker) cabinetGroups(p string, groups []CabinetGroup, models map[string]CabinetModel) {
	if len(groups) == 0 {
		c.errorf(p, "%s: at least one cabinet is required", p)
	}
	for j, g := range groups {
		gp := indexPath(p+".cabinets", j)
		if _, ok := models[g.Model]; !ok {
			names := make([]string, len(c.s.CabinetModels))
			for i, m := range c.s.CabinetModels {
				names[i] = m.Name
			}
			c.errorf(gp+".model", "unknown cabinet model %q%s", g.Model, Suggest(g.Model, names))
		}
		if g.Count < 1 || g.Count > MaxCabinets {
			c.errorf(gp+".count", "cabinet count must be from 1 to %d, got %d", MaxCabinets, g.Count)
		}
	}
}

func (c checker) sites(models map[string]CabinetModel) {
	s := c.s
	if len(s.Sites) == 0 && len(s.SiteGrids) == 0 {
		c.errorf("", "sites: at least one site (or site_grids entry) is required")
	}
	ids := map[string]string{}
	for i, site := range s.Sites {
		p := indexPath("sites", i)
		switch {
		case site.ID == "":
			c.errorf(p, "site needs an id")
		case !namePattern.MatchString(site.ID):
			c.errorf(p+".id", "site id %q must match [a-z0-9-]+", site.ID)
		case len(site.ID) > MaxSiteIDLen:
			c.errorf(p+".id", "site id %q is %d characters, at most %d (the cabinet protocol's)", site.ID, len(site.ID), MaxSiteIDLen)
		}
		if first, dup := ids[site.ID]; dup && site.ID != "" {
			c.errorf(p+".id", "site id %q is used twice (first at %s)", site.ID, first)
		}
		ids[site.ID] = p
		c.cabinetGroups(p, site.Cabinets, models)
		c.parcelsPerDay(p+".parcels_per_day", site.ParcelsPerDay)
	}
	for i, g := range s.SiteGrids {
		p := indexPath("site_grids", i)
		if !namePattern.MatchString(g.Prefix) {
			c.errorf(p+".prefix", "site grid prefix %q must match [a-z0-9-]+", g.Prefix)
		}
		if _, ok := g.size(); !ok {
			if g.Rows < 1 || g.Cols < 1 {
				c.errorf(p, "site grid needs rows ≥ 1 and cols ≥ 1")
			} else {
				c.errorf(p, "site grid of %d × %d sites is larger than %d", g.Rows, g.Cols, MaxGridSites)
			}
		} else if last := g.siteID(g.Rows-1, g.Cols-1); len(last) > MaxSiteIDLen {
			c.errorf(p+".prefix", "site grid %q names sites like %q, %d characters, at most %d (the cabinet protocol's)", g.Prefix, last, len(last), MaxSiteIDLen)
		}
		if g.SpacingM <= 0 {
			c.errorf(p+".spacing_m", "spacing_m must be positive")
		}
		c.cabinetGroups(p, g.Cabinets, models)
		c.parcelsPerDay(p+".parcels_per_day", g.ParcelsPerDay)
	}
	if n := c.cabinets(); n > MaxCabinets {
		where := "sites"
		if len(s.SiteGrids) > 0 {
			where = "site_grids"
		}
		c.errorf(where, "the scenario has %d cabinets or more; at most %d", n, MaxCabinets)
		return
	}
	// A grid's sites are named "{prefix}-{row}-{col}": none may take an id
	// a listed site or another grid has. Every site has a cabinet, so a
	// valid scenario has at most MaxCabinets ids to look at; one with more
	// sites has cabinet groups in error already, and is not looked at.
	total := len(s.Sites)
	for _, g := range s.SiteGrids {
		n, _ := g.size()
		total += n
	}
	if total > MaxCabinets {
		return
	}
	for i, g := range s.SiteGrids {
		if _, ok := g.size(); !ok {
			continue
		}
		p := indexPath("site_grids", i)
		if first, dup := g.eachSiteID(func(id string) (string, bool) {
			first, dup := ids[id]
			ids[id] = p
			return first, dup
		}); dup != "" {
			c.errorf(p+".prefix", "site grid %q names a site %q, as %s does: site ids must be unique", g.Prefix, dup, first)
		}
	}
}

// parcelsPerDay checks a site's (or the default) demand, if set.
func (c checker) parcelsPerDay(path string, v *float64) {
	switch {
	case v == nil:
	case *v < 0:
		c.errorf(path, "parcels_per_day cannot be negative")
	case *v > MaxParcelsPerDay:
		c.errorf(path, "parcels_per_day of %g at one site is more than %d", *v, MaxParcelsPerDay)
	}
}

// cabinets counts the cabinets of every site and grid, stopping once past
// MaxCabinets so that the sum cannot overflow; counts out of range are
// reported by cabinetGroups and not counted.
func (c checker) cabinets() int {
	n := 0
	add := func(sites int, groups []CabinetGroup) {
		for _, g := range groups {
			if g.Count >= 1 && g.Count <= MaxCabinets && n <= MaxCabinets {
				n += min(sites, MaxCabinets+1) * g.Count
			}
		}
	}
	for _, site := range c.s.Sites {
		add(1, site.Cabinets)
	}
	for _, g := range c.s.SiteGrids {
		if sites, ok := g.size(); ok {
			add(sites, g.Cabinets)
		}
	}
	return n
}

// size is the grid's number of sites, if it has 1 to MaxGridSites of them:
// Rows×Cols is computed only then, for it could overflow.
func (g SiteGrid) size() (int, bool) {
	if g.Rows < 1 || g.Cols < 1 || g.Rows > MaxGridSites/g.Cols {
		return 0, false
	}
	return g.Rows * g.Cols, true
}

func (c checker) profile(path string, values []float64, want int) {
	if values == nil {
		return
	}
	if len(values) != want {
		c.errorf(path, "%s needs %d entries, has %d", path, want, len(values))
		return
	}
	sum := 0.0
	for i, v := range values {
		if v < 0 || math.IsNaN(v) {
			c.errorf(indexPath(path, i), "%s entries cannot be negative", path)
		}
		sum += v
	}
	if sum <= 0 {
		c.errorf(path, "%s must have a positive total", path)
	}
}

func (c checker) demand(classes map[string]CompartmentClass, models map[string]CabinetModel) {
	s := c.s
	dem := s.Demand
	c.parcelsPerDay("demand.parcels_per_day", &dem.ParcelsPerDay)
	if !s.Has("demand.parcels_per_day") {
		missing := len(s.SiteGrids) > 0 && anyGridWithoutRate(s.SiteGrids)
		for _, site := range s.Sites {
			missing = missing || site.ParcelsPerDay == nil
		}
		if missing {
			c.errorf("demand", "demand.parcels_per_day is required unless every site sets parcels_per_day")
		}
	}
	if noDemand(s) {
		c.warnf("demand.parcels_per_day", "parcels_per_day is 0 at every site: no parcel will arrive, and every KPI will be 0")
	}
	c.profile("demand.hourly_profile", dem.HourlyProfile, 24)
	c.profile("demand.weekly_profile", dem.WeeklyProfile, 7)
	for i, season := range dem.Seasonality {
		p := indexPath("demand.seasonality", i)
		if season.To <= season.From || season.From < 0 {
			c.errorf(p, "season must have 0 ≤ from < to")
		}
		if season.Factor < 0 {
			c.errorf(p+".factor", "season factor cannot be negative")
		}
	}
	if peak := dem.PeakSeasonFactor(); peak > MaxSeasonFactor {
		c.errorf("demand.seasonality", "seasons scale demand by up to %g (seasons that overlap multiply); at most %d", peak, MaxSeasonFactor)
	}
	c.mix("demand.size_mix", dem.SizeMix, classes, ZoneAmbient, true)
	c.share("demand.chilled_share", dem.ChilledShare)
	if dem.ChilledShare > 0 {
		if !zoneAvailable(classes, models, ZoneChilled) {
			c.errorf("demand.chilled_share", "chilled_share is %g but no cabinet model has a chilled compartment class", dem.ChilledShare)
		}
		c.mix("demand.chilled_size_mix", dem.ChilledSizeMix, classes, ZoneChilled, false)
	} else if len(dem.ChilledSizeMix) > 0 {
		c.warnf("demand.chilled_size_mix", "chilled_size_mix is ignored while chilled_share is 0")
	}
	// Every needed class should be storable somewhere, or all such parcels
	// are refused: a planner wants to hear that before the run.
	for _, e := range dem.SizeMix {
		if e.Value > 0 && classes[e.Key].Name != "" && !fitsSomeModel(s, classes, models, e.Key) {
			c.warnf("demand.size_mix."+e.Key, "no cabinet model has class %q or a larger one of its zone: all such parcels will be refused", e.Key)
		}
	}
}

// noDemand reports whether no site of the scenario has parcels to receive
// (a negative rate is an error of its own, not no demand).
func noDemand(s *Scenario) bool {
	for _, site := range s.Sites {
		if s.SiteParcelsPerDay(site) != 0 {
			return false
		}
	}
	for _, g := range s.SiteGrids {
		if s.parcelsPerDay(g.ParcelsPerDay) != 0 {
			return false
		}
	}
	return len(s.Sites)+len(s.SiteGrids) > 0
}

func anyGridWithoutRate(grids []SiteGrid) bool {
	for _, g := range grids {
		if g.ParcelsPerDay == nil {
			return true
		}
	}
	return false
}

func (c checker) mix(path string, mix Ordered[float64], classes map[string]CompartmentClass, zone string, required bool) {
	if len(mix) == 0 {
		if required {
			c.errorf(parentPath(path), "%s is required: the share of parcels needing each class", path)
		}
		return
	}
	sum := 0.0
	for _, e := range mix {
		kp := path + "." + e.Key
		cl, ok := classes[e.Key]
		switch {
		case !ok:
			c.errorf(kp+"#key", "%s: unknown compartment class %q%s", path, e.Key, Suggest(e.Key, classNames(c.s)))
		case cl.Zone != zone:
			c.errorf(kp+"#key", "%s: class %q is %s; this mix is for %s classes", path, e.Key, cl.Zone, zone)
		}
		if e.Value < 0 || math.IsNaN(e.Value) {
			c.errorf(kp, "%s: share of %q cannot be negative", path, e.Key)
		}
		sum += e.Value
	}
	if math.Abs(sum-1) > shareTolerance {
		c.errorf(path, "%s sums to %s; shares must sum to 1", path, strconv.FormatFloat(sum, 'g', 6, 64))
	}
}

func zoneAvailable(classes map[string]CompartmentClass, models map[string]CabinetModel, zone string) bool {
	for _, m := range models {
		for _, e := range m.Compartments {
			if classes[e.Key].Zone == zone && e.Value > 0 {
				return true
			}
		}
	}
	return false
}

// fitsSomeModel reports whether some model has the class or a later class
// of the same zone.
func fitsSomeModel(s *Scenario, classes map[string]CompartmentClass, models map[string]CabinetModel, need string) bool {
	zone := classes[need].Zone
	idx := map[string]int{}
	for i, cl := range s.CompartmentClasses {
		idx[cl.Name] = i
	}
	for _, m := range models {
		for _, e := range m.Compartments {
			cl, ok := classes[e.Key]
			if ok && cl.Zone == zone && idx[e.Key] >= idx[need] && e.Value > 0 {
				return true
			}
		}
	}
	return false
}

func (c checker) recipients() {
	r := c.s.Recipients
	p := "recipients.pickup_delay"
	pd := r.PickupDelay
	uses := map[string][]string{
		DistExponential: {"mean"},
		DistLognormal:   {"median", "p90"},
		DistGamma:       {"mean", "cv"},
		DistEmpirical:   {"days"},
		DistFixed:       {"value"},
	}
	params, ok := uses[pd.Distribution]
	switch {
	case !c.s.Has(p + ".distribution"):
		c.errorf(p, "%s.distribution is required (exponential, lognormal, gamma, empirical or fixed)", p)
	case !ok:
		c.errorf(p+".distribution", "unknown distribution %q%s", pd.Distribution,
			Suggest(pd.Distribution, []string{DistExponential, DistLognormal, DistGamma, DistEmpirical, DistFixed}))
	default:
		for _, key := range []string{"mean", "median", "p90", "cv", "days", "value"} {
			used := false
			for _, u := range params {
				used = used || u == key
			}
			if c.s.Has(p+"."+key) && !used {
				c.errorf(p+"."+key, "%s does not apply to the %s distribution (it takes %v)", key, pd.Distribution, params)
			}
			if used && !c.s.Has(p+"."+key) {
				c.errorf(p, "the %s distribution needs %s", pd.Distribution, key)
			}
		}
		switch pd.Distribution {
		case DistExponential:
			c.positiveDuration(p+".mean", pd.Mean, false)
		case DistLognormal:
			c.positiveDuration(p+".median", pd.Median, false)
			c.positiveDuration(p+".p90", pd.P90, false)
			if c.s.Has(p+".p90") && c.s.Has(p+".median") && pd.P90 <= pd.Median {
				c.errorf(p+".p90", "p90 (%v) must be larger than the median (%v)", pd.P90, pd.Median)
			}
		case DistGamma:
			c.positiveDuration(p+".mean", pd.Mean, false)
			if c.s.Has(p+".cv") && pd.CV <= 0 {
				c.errorf(p+".cv", "cv must be positive")
			}
		case DistEmpirical:
			sum := 0.0
			for i, v := range pd.Days {
				if v < 0 {
					c.errorf(indexPath(p+".days", i), "day shares cannot be negative")
				}
				sum += v
			}
			if c.s.Has(p+".days") && math.Abs(sum-1) > shareTolerance {
				c.errorf(p+".days", "day shares sum to %s; they must sum to 1", strconv.FormatFloat(sum, 'g', 6, 64))
			}
		case DistFixed:
			if pd.Value < 0 || pd.Value == Never {
				c.errorf(p+".value", "value must be a duration of zero or more")
			}
		}
	}
	c.share("recipients.no_show_share", r.NoShowShare)
	c.share("recipients.reminder_response", r.ReminderResponse)
}

func (c checker) couriers() {
	cr := c.s.Couriers
	switch cr.Delivery {
	case DeliveryIndividual:
		if len(cr.Waves) > 0 {
			c.warnf("couriers.waves", "waves are ignored with individual delivery")
		}
	case DeliveryWaves:
		if len(cr.Waves) == 0 {
			c.errorf("couriers", "delivery: waves needs at least one wave time")
		}
		for i := 1; i < len(cr.Waves); i++ {
			if cr.Waves[i] <= cr.Waves[i-1] {
				c.errorf(indexPath("couriers.waves", i), "wave times must be in increasing order")
			}
		}
	default:
		c.errorf("couriers.delivery", "delivery %q is not one of individual, waves", cr.Delivery)
	}
	switch cr.OnFull {
	case OnFullRefuse, OnFullNearestSite:
	case OnFullNextWave:
		if cr.Delivery != DeliveryWaves {
			c.errorf("couriers.on_full", "on_full: next_wave needs delivery: waves")
		}
	default:
		c.errorf("couriers.on_full", "on_full %q is not one of refuse, next_wave, nearest_site", cr.OnFull)
	}
	if cr.OnFull == OnFullNearestSite && len(c.s.Sites)+len(c.s.SiteGrids) < 2 {
		gridSites := 0
		for _, g := range c.s.SiteGrids {
			if g.Rows >= 1 && g.Cols >= 1 {
				gridSites += min(g.Rows, 2) * min(g.Cols, 2) // enough to tell one site from more, without overflow
			}
		}
		if len(c.s.Sites)+gridSites < 2 {
			c.warnf("couriers.on_full", "on_full: nearest_site with a single site behaves like refuse")
		}
	}
	if cr.DoorstepStopM < 0 {
		c.errorf("couriers.doorstep_stop_m", "doorstep_stop_m cannot be negative")
	}
	if cr.RedirectSetup < MinRedirectSetup {
		c.errorf("couriers.redirect_setup", "redirect_setup must be at least %v: loading up and parking take time", MinRedirectSetup)
	}
	if cr.RedirectSpeedKmh <= 0 || cr.RedirectSpeedKmh > 130 {
		c.errorf("couriers.redirect_speed_kmh", "redirect_speed_kmh must be above 0 and at most 130")
	}
}

func (c checker) policy(classes map[string]CompartmentClass) {
	pol := c.s.Policy
	if !namePattern.MatchString(pol.Allocator) {
		c.errorf("policy.allocator", "allocator %q must match [a-z0-9-]+", pol.Allocator)
	}
	for _, key := range []string{"pickup_window", "chilled_pickup_window", "reminder_after"} {
		path := "policy." + key
		var d Duration
		switch key {
		case "pickup_window":
			d = pol.PickupWindow
		case "chilled_pickup_window":
			d = pol.ChilledPickupWindow
		default:
			d = pol.ReminderAfter
		}
		if d != Never && d <= 0 && c.s.Has(path) {
			c.errorf(path, "%s must be positive or none", key)
		}
	}
	if pol.PickupWindow > 0 && pol.ReminderAfter > 0 && pol.ReminderAfter >= pol.PickupWindow {
		c.warnf("policy.reminder_after", "reminder_after (%v) is not before pickup_window (%v): no reminder will be sent", pol.ReminderAfter, pol.PickupWindow)
	}
	c.positiveDuration("policy.reservation_timeout", pol.ReservationTimeout, false)
	for _, e := range pol.Reserve {
		if _, ok := classes[e.Key]; !ok {
			c.errorf("policy.reserve."+e.Key+"#key", "policy.reserve: unknown compartment class %q%s", e.Key, Suggest(e.Key, classNames(c.s)))
		}
		if e.Value < 0 {
			c.errorf("policy.reserve."+e.Key, "reserve count cannot be negative")
		}
	}
	if len(pol.Reserve) > 0 && pol.Allocator != "reserve-large" {
		c.warnf("policy.reserve", "policy.reserve is used only by the reserve-large allocator (this scenario uses %q)", pol.Allocator)
	}
}

func (c checker) faults() {
	f := c.s.Faults
	c.share("faults.door_jam_probability", f.DoorJamProbability)
	c.share("faults.sensor_error_probability", f.SensorErrorProbability)
	c.share("faults.door_left_open_probability", f.DoorLeftOpenProbability)
	if f.CabinetOutage != nil {
		c.positiveDuration("faults.cabinet_outage.mtbf", f.CabinetOutage.MTBF, true)
		if m := f.CabinetOutage.MTBF; m > 0 && m < MinOutageMTBF {
			c.errorf("faults.cabinet_outage.mtbf", "mtbf %v is shorter than %v: a cabinet that fails that often is down, not faulty, and its outages would swamp the run", m, MinOutageMTBF)
		}
		c.positiveDuration("faults.cabinet_outage.mttr", f.CabinetOutage.MTTR, true)
	}
	if f.Link.Latency < 0 {
		c.errorf("faults.link.latency", "latency cannot be negative or none")
	}
	if f.Link.Latency > Duration(time.Minute) {
		c.warnf("faults.link.latency", "latency %v is longer than a door command's expiry; every command will expire", f.Link.Latency)
	}
	c.share("faults.link.loss", f.Link.Loss)
	c.share("faults.link.duplication", f.Link.Duplication)
	c.share("faults.link.reorder", f.Link.Reorder)
}

// String summarises a scenario in one line.
func (s *Scenario) String() string {
	return fmt.Sprintf("%s: %d sites, %d cabinets, %v (+%v warm-up), %d replication(s), seed %d",
		s.Name, len(s.Sites), s.CabinetCount(), s.Duration, s.Warmup, s.Replications, s.Seed)
}

// CheckHorizon checks a run's simulated span, warm-up plus duration, as a
// scenario's validation does and as a -duration that overrides it must.
func CheckHorizon(warmup, duration Duration) error {
	if warmup >= 0 && duration > 0 && warmup+duration > MaxHorizon {
		return fmt.Errorf("warm-up %v plus duration %v is more than a run may simulate, %v (ten years)", warmup, duration, MaxHorizon)
	}
	return nil
}
