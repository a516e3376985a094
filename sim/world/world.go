// Package world is the simulated world of a scenario: demand at each site,
// couriers, recipients and an operator, driving the real controller core of
// every site and a virtual cabinet per cabinet through in-process links, on
// the engine's virtual clock. One World is one replication and a pure
// function of its scenario and seed.
//
// A large world is split into shards (a number fixed by the scenario's
// size, see shardCount), each a block of sites with its own engine, random
// streams and KPI collector. Sites share nothing but parcels a courier redirects to
// a neighbour, and those take at least the redirect setup time of driving:
// so shards can run a window of that length independently (conservative lookahead),
// exchanging the redirected parcels between windows in a fixed order.
// Redirects start only from courier work (a delivery, a redirected parcel
// arriving): while no shard has any pending before some time T, no parcel
// can reach another site before T plus the setup, so the window stretches
// to there (between the city's two van waves, most of a day). The
// result depends on the scenario and seed only, never on how many shards
// ran at once: a world runs its shards one after the other unless the
// caller hands it a parallel executor (Options.Parallel), as the runner
// does. The simulation code itself starts no goroutines.
package world

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/controller"
	"github.com/lockertwin/lockertwin/internal/strarena"
	"github.com/lockertwin/lockertwin/scenarios"
	"github.com/lockertwin/lockertwin/sim"
	"github.com/lockertwin/lockertwin/twin"
)

// Epoch is the wall-clock time of virtual time zero: a Monday, so that the
// weekly profile's first entry is Monday.
var Epoch = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// Handling times of people at a door.
const (
	courierHandling   = 20 * time.Second
	recipientHandling = 10 * time.Second
	doorPatience      = 2 * time.Minute // a person waits this long for a door to open
	operatorDelay     = 4 * time.Hour   // from an alarm needing a visit to the visit
	depositSpacing    = 30 * time.Second
	maxCarries        = 3 // next_wave: after this many waves a parcel is refused
	maxDepositTries   = 2
	neighbourRadiusM  = 2000 // nearest_site looks this far (InPost: a temporary locker within ~2 km)
	maxNeighbours     = 8
)

// Options of one replication.
type Options struct {
	// Seed of this replication (derived from the scenario seed by the runner).
	Seed uint64
	// Policy overrides the scenario's allocator policy when set.
	Policy string
	// Observer, when set, sees every domain event of every site (the
	// recorder and live views attach here). A world with an observer runs
	// its shards one after the other.
	Observer func(site string, e *controller.Event)
	// Parallel, when set, runs f(0) … f(n-1) and returns when all have
	// returned; they may run concurrently (each touches one shard only).
	// Nil runs them in order.
	Parallel func(n int, f func(i int))
	// Recall makes every site's invariant checker keep its last events, so
	// that a violation's report shows the events that led to it. Without
	// it (the runner's way: writing them costs a city's run a few percent)
	// Run replays a run that a violation stopped, with Recall set, and
	// reports the replay's violation. A world with an Observer recalls:
	// an observer must not see a run twice.
	Recall bool

	// inject, when set, is called on every world New builds with these
	// options (the replay's too): tests plant faults with it.
	inject func(*World)
}

// shard is a block of a world's sites with its own engine, streams and
// KPIs: everything a window of simulation touches.
type shard struct {
	idx     int
	world   *World
	own     []*site            // this shard's sites, in site order
	outbox  []redirectMsg      // parcels on their way to another site, for the exchange
	msgFree []*msg             // link messages to reuse
	src     timeHeap           // when this shard's pending courier work is: where redirects can start
	legs    int                // redirect legs this shard sent
	crossed int                // of them, legs handed to another shard
	log     controller.HeadLog // every site's: it only counts, and one stays in cache
	strs    strarena.Arena     // parcel ids

	sc      *scenarios.Scenario
	opts    Options
	eng     *sim.Engine
	clock   *sim.Clock
	streams sim.Streams

	sites   []*site     // all the world's sites: read only their immutable fields across shards
	parcels parcelIndex // live parcels by controller id
	nextID  uint64
	stride  uint64 // parcel numbers: idx + k·stride, unique across shards

	demandRng, sizeRng, recipientRng, courierRng *rand.Rand
	delay                                        delaySampler

	hourly, weekly []float64 // normalised to mean 1
	maxRate        float64   // thinning bound, per hour per unit site rate
	classIdx       map[string]int
	classNames     []string
	ambientMix     []mixEntry
	chilledMix     []mixEntry

	warmup, end sim.Time
	kpi         *Collector
	err         error
}

type mixEntry struct {
	class string
	cum   float64
}

type site struct {
	w         *shard
	idx       int
	id        string
	pos       scenarios.Position
	core      *controller.Core
	checker   *controller.Checker
	cabinets  []*cab
	byName    map[string]*cab
	ratePerH  float64
	neighbors []int
	compKPI   []compartmentKPI // by compartment id
	pending   []*parcel        // waiting for the next wave
	returns   []string         // expired parcels waiting for the next courier round
	visit     bool             // an operator visit is scheduled
}

type cab struct {
	s        *site
	name     string
	vc       *twin.Cabinet
	up, down *twin.SimLink
	expect   []*action // per slot - 1: who is at the door waiting for it
}

type actionKind uint8

const (
	actDeposit actionKind = iota + 1
	actPickup
	actReturn
)

// action is a person at a door: a courier depositing or collecting, or a
// recipient picking up. It is also the handler of what they do next (see
// Fire), so one allocation carries them through.
type action struct {
	kind     actionKind
	p        *parcel
	c        *cab
	slot     int
	opened   bool
	patience sim.EventID // the person giving up, cancelled when the door opens
}

// What an action does when its event fires.
const (
	actGiveUp  uint64 = iota + 1 // patience ran out
	actHandled                   // done at the open door: place or take, and shut it
	actCheck                     // the courier's app reports whether the deposit took
)

// Fire runs an action's next step (sim.Handler).
func (a *action) Fire(_ sim.Time, what uint64) {
	c, slot := a.c, a.slot
	w := c.s.w
	switch what {
	case actGiveUp:
		if c.expect[slot-1] == a && !a.opened {
			c.expect[slot-1] = nil
			w.gaveUp(c, a)
		}
	case actHandled:
		if a.kind == actDeposit {
			_ = c.vc.Place(slot)
			_ = c.vc.Close(slot)
			a.p.check = w.eng.After(sim.FromDuration(10*time.Second), a, actCheck)
			return
		}
		_ = c.vc.Remove(slot)
		_ = c.vc.Close(slot)
	case actCheck:
		a.p.check = 0
		w.checkDeposit(a.p, c)
	}
}

type parcel struct {
	w        *shard // the shard it is in
	id       string
	num      uint64 // the number in id: unique in the world
	home     int    // site index of its demand
	at       int    // site index where it got a compartment, -1 before
	spec     controller.ParcelSpec
	arrived  sim.Time
	notified sim.Time
	measured bool
	warmed   bool // in the locker during a temperature excursion (the core's TempExcursion)
	code     string
	noShow   bool
	visit    sim.EventID // the recipient's scheduled visit
	visitAt  sim.Time    // when (while visit is set)
	check    sim.EventID // the courier checking the deposit took
	carries  int
	tries    int
	cabinet  string
	slot     int
	ix       uint32 // its place in its shard's parcel index
}

// World is one replication of a scenario: its sites, split into shards.
type World struct {
	sc     *scenarios.Scenario
	opts   Options
	sites  []*site
	shards []*shard
	of     []int    // site index → shard index
	now    sim.Time // every shard has run up to here
	steps  int      // windows run so far
	end    sim.Time
	watch  func(Observation)
	err    error
}

// Shard sizing: a world of fewer than 2·sitesPerShard sites is one shard;
// larger ones get one shard per sitesPerShard sites, at most maxShards. The
// count depends on the scenario only, so results never depend on the
// machine; the runner runs the shards of one replication on as many cores as
// it has spare. Small shards also run faster on one core, because a shard's
// sites stay in cache while it runs a step: the city ran a day in 75 % of the
// CPU time with 40 shards as with 4 when steps were short, and with the long
// steps between van waves 200 shards of 10 sites take 7 % less CPU than 40
// of 50 (2 or 5 sites per shard: no faster). The city's shards cost 0.2 MB
// of engine each.
const (
	sitesPerShard = 10
	maxShards     = 256
)

func shardCount(sites int) int {
	if sites < 2*sitesPerShard {
		return 1
	}
	return min(maxShards, sites/sitesPerShard)
}

// ShardCount is how many shards a replication of the scenario runs in.
func ShardCount(sc *scenarios.Scenario) int { return shardCount(len(sc.Sites)) }

// New builds a replication: every site's controller core, every cabinet's
// virtual twin and links, and the demand processes.
func New(sc *scenarios.Scenario, opts Options) (*World, error) {
	streams := sim.NewStreams(opts.Seed)
	n := shardCount(len(sc.Sites))
	w := &World{sc: sc, opts: opts, of: make([]int, len(sc.Sites))}
	// What every shard shares, read only.
	base := shard{sc: sc, opts: opts, streams: streams, warmup: sim.FromDuration(sc.Warmup.D()), classIdx: map[string]int{}}
	base.end = base.warmup + sim.FromDuration(sc.Duration.D())
	w.end = base.end
	base.hourly = normalise(sc.Demand.HourlyProfile, 24)
	base.weekly = normalise(sc.Demand.WeeklyProfile, 7)
	// The bound of the arrivals' thinning: the rate must never exceed it.
	base.maxRate = maxOf(base.hourly) * maxOf(base.weekly) * sc.Demand.PeakSeasonFactor()
	base.ambientMix = cumulative(sc.Demand.SizeMix)
	base.chilledMix = cumulative(sc.Demand.ChilledSizeMix)
	if len(base.chilledMix) == 0 && sc.Demand.ChilledShare > 0 {
		for _, cl := range sc.CompartmentClasses {
			if cl.Zone == scenarios.ZoneChilled {
				base.chilledMix = []mixEntry{{class: cl.Name, cum: 1}}
				break
			}
		}
	}
	classes := make([]allocator.Class, len(sc.CompartmentClasses))
	for i, cl := range sc.CompartmentClasses {
		z, err := allocator.ParseZone(cl.Zone)
		if err != nil {
			return nil, err
		}
		classes[i] = allocator.Class{Name: cl.Name, WidthMm: cl.WidthMm, HeightMm: cl.HeightMm, DepthMm: cl.DepthMm, Zone: z}
		base.classIdx[cl.Name] = i
		base.classNames = append(base.classNames, cl.Name)
	}
	cat, err := allocator.NewCatalog(classes)
	if err != nil {
		return nil, err
	}
	for i := range n {
		sh := new(shard)
		*sh = base
		sh.idx, sh.world, sh.stride = i, w, uint64(n)
		sh.nextID = uint64(i)
		sh.eng = sim.NewEngine(1 << 12)
		sh.clock = &sim.Clock{Engine: sh.eng, Epoch: Epoch}
		// An unsharded world draws the streams it always drew.
		name := func(s string) string {
			if n == 1 {
				return s
			}
			return s + "/shard" + strconv.Itoa(i)
		}
		sh.demandRng, sh.sizeRng = streams.Stream(name("demand")), streams.Stream(name("sizes"))
		sh.recipientRng, sh.courierRng = streams.Stream(name("recipients")), streams.Stream(name("couriers"))
		if sh.delay, err = newDelaySampler(sc.Recipients.PickupDelay, streams.Stream(name("pickup-delay"))); err != nil {
			return nil, err
		}
		sh.kpi = newCollector(sh)
		w.shards = append(w.shards, sh)
	}
	for i, sp := range sc.Sites {
		sh := w.shards[i*n/len(sc.Sites)] // contiguous blocks: neighbours mostly share a shard
		s, err := sh.buildSite(i, sp, cat)
		if err != nil {
			return nil, fmt.Errorf("site %s: %w", sp.ID, err)
		}
		w.sites = append(w.sites, s)
		w.of[i] = sh.idx
		sh.own = append(sh.own, s)
	}
	w.findNeighbours()
	for _, sh := range w.shards {
		sh.sites = w.sites
		for _, s := range sh.own {
			sh.kpi.addCapacity(s)
			if s.ratePerH > 0 {
				sh.scheduleArrival(s)
			}
		}
		if sc.Couriers.Delivery == scenarios.DeliveryWaves {
			sh.scheduleWaves()
		}
		sh.kpi.start()
	}
	if opts.inject != nil {
		opts.inject(w)
	}
	return w, nil
}

func normalise(profile []float64, n int) []float64 {
	out := make([]float64, n)
	if len(profile) != n {
		for i := range out {
			out[i] = 1
		}
		return out
	}
	sum := 0.0
	for _, v := range profile {
		sum += v
	}
	for i, v := range profile {
		out[i] = v * float64(n) / sum
	}
	return out
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = math.Max(m, x)
	}
	return m
}

func cumulative(mix scenarios.Ordered[float64]) []mixEntry {
	var out []mixEntry
	sum := 0.0
	for _, e := range mix {
		sum += e.Value
		out = append(out, mixEntry{class: e.Key, cum: sum})
	}
	return out
}

func (w *shard) buildSite(idx int, sp scenarios.Site, cat *allocator.Catalog) (*site, error) {
	s := &site{w: w, idx: idx, id: sp.ID, pos: sp.Position, byName: map[string]*cab{},
		ratePerH: w.sc.SiteParcelsPerDay(sp) / 24}
	var specs []allocator.CabinetSpec
	var chilled [][]twin.CompartmentSpec
	n := 0
	for _, g := range sp.Cabinets {
		model, _ := w.sc.Model(g.Model)
		var counts []allocator.ClassCount
		for _, e := range model.Compartments {
			counts = append(counts, allocator.ClassCount{Class: allocator.ClassID(w.classIdx[e.Key]), Count: e.Value})
		}
		for k := 0; k < g.Count; k++ {
			comps, err := allocator.StackLayout(cat, counts)
			if err != nil {
				return nil, err
			}
			n++
			specs = append(specs, allocator.CabinetSpec{Name: "c" + strconv.Itoa(n), Compartments: comps})
			tw := make([]twin.CompartmentSpec, len(comps))
			for i, c := range comps {
				tw[i].Chilled = cat.Class(c.Class).Zone == allocator.Chilled
			}
			chilled = append(chilled, tw)
		}
	}
	inv, err := allocator.NewInventory(cat, specs)
	if err != nil {
		return nil, err
	}
	policyName := w.sc.Policy.Allocator
	if w.opts.Policy != "" {
		policyName = w.opts.Policy
	}
	reserve := map[string]int{}
	for _, e := range w.sc.Policy.Reserve {
		reserve[e.Key] = e.Value
	}
	pol, err := allocator.New(policyName, cat, allocator.Config{Rand: w.streams.Stream("allocator/" + sp.ID), Reserve: reserve})
	if err != nil {
		return nil, err
	}
	key := sha256.Sum256(binary.LittleEndian.AppendUint64([]byte("codes/"+sp.ID), w.opts.Seed))
	core, err := controller.New(controller.Config{
		Site: sp.ID, Inventory: inv, Policy: pol, Settings: settings(w.sc), Clock: w.clock,
		Rand: w.streams.Stream("codes/" + sp.ID), CodeKey: key[:], Log: &w.log, Out: s,
		Unsealed: true, // the replication keeps no log to audit
	})
	if err != nil {
		return nil, err
	}
	s.core = core
	s.compKPI = make([]compartmentKPI, inv.Len())
	s.checker = controller.NewChecker(controller.CodeLimits{})
	s.checker.Rehash = false // unsealed: sequence numbers are still checked
	s.checker.Recall = w.opts.recalls()
	s.checker.OnViolation = func(v *controller.Violation) {
		w.fail(fmt.Errorf("site %s: %w", sp.ID, v))
	}
	core.AddHook(s.checker)
	core.AddHook(siteHook{s})
	f := w.sc.Faults
	faults := twin.Faults{
		DoorJamProbability: f.DoorJamProbability, SensorErrorProbability: f.SensorErrorProbability,
		DoorLeftOpenProbability: f.DoorLeftOpenProbability,
	}
	if f.CabinetOutage != nil {
		faults.OutageMTBF, faults.OutageMTTR = f.CabinetOutage.MTBF.D(), f.CabinetOutage.MTTR.D()
	}
	q := twin.LinkQuality{Latency: f.Link.Latency.D(), Jitter: f.Link.Latency.D() / 2,
		Loss: f.Link.Loss, Duplication: f.Link.Duplication, Reorder: f.Link.Reorder}
	for i, spec := range specs {
		c := &cab{s: s, name: spec.Name, expect: make([]*action, len(spec.Compartments))}
		prefix := "link/" + sp.ID + "/" + spec.Name
		c.up = twin.NewSimLink(q, w.clock, w.streams.Stream(prefix+"/up"))
		c.down = twin.NewSimLink(q, w.clock, w.streams.Stream(prefix+"/down"))
		vc, err := twin.NewCabinet(twin.CabinetConfig{Site: sp.ID, Name: spec.Name, Compartments: chilled[i], Faults: faults},
			w.clock, c, c, w.streams.Stream)
		if err != nil {
			return nil, err
		}
		c.vc = vc
		s.cabinets = append(s.cabinets, c)
		s.byName[spec.Name] = c
	}
	return s, nil
}

func settings(sc *scenarios.Scenario) controller.Settings {
	win := func(d scenarios.Duration) time.Duration {
		if d == scenarios.Never {
			return -1
		}
		return d.D()
	}
	set := controller.Settings{
		PickupWindow: win(sc.Policy.PickupWindow), ChilledPickupWindow: win(sc.Policy.ChilledPickupWindow),
		ReminderAfter: win(sc.Policy.ReminderAfter), ReservationTimeout: sc.Policy.ReservationTimeout.D(),
	}
	if set.ChilledPickupWindow == 0 {
		set.ChilledPickupWindow = set.PickupWindow
	}
	return set
}

func (w *World) findNeighbours() {
	if w.sc.Couriers.OnFull != scenarios.OnFullNearestSite {
		return
	}
	// A grid of cells the size of the search radius keeps this linear.
	cell := func(p scenarios.Position) [2]int {
		return [2]int{int(math.Floor(p.XM / neighbourRadiusM)), int(math.Floor(p.YM / neighbourRadiusM))}
	}
	grid := map[[2]int][]int{}
	for i, s := range w.sites {
		k := cell(s.pos)
		grid[k] = append(grid[k], i)
	}
	for i, s := range w.sites {
		k := cell(s.pos)
		type cand struct {
			idx int
			d   float64
		}
		var cands []cand
		for dx := -1; dx <= 1; dx++ {
			for dy := -1; dy <= 1; dy++ {
				for _, j := range grid[[2]int{k[0] + dx, k[1] + dy}] {
					if j == i {
						continue
					}
					if d := dist(s.pos, w.sites[j].pos); d <= neighbourRadiusM {
						cands = append(cands, cand{j, d})
					}
				}
			}
		}
		sort.Slice(cands, func(a, b int) bool {
			if cands[a].d != cands[b].d {
				return cands[a].d < cands[b].d
			}
			return cands[a].idx < cands[b].idx
		})
		for n := 0; n < len(cands) && n < maxNeighbours; n++ {
			s.neighbors = append(s.neighbors, cands[n].idx)
		}
	}
}

func dist(a, b scenarios.Position) float64 { return math.Hypot(a.XM-b.XM, a.YM-b.YM) }

// fail stops the shard with an error naming the seed and simulated time.
func (w *shard) fail(err error) {
	if w.err == nil {
		w.err = fmt.Errorf("seed %d at simulated %v: %w", w.opts.Seed, w.eng.Now(), err)
		w.eng.Stop()
	}
}

// Run simulates the warm-up and the measured horizon and returns the
// replication's results.
func (w *World) Run() (*Result, error) {
	if _, err := w.RunUntil(time.Duration(w.end)); err != nil {
		return nil, w.recall(err)
	}
	for _, s := range w.sites {
		if err := controller.CheckCore(s.core); err != nil {
			return nil, fmt.Errorf("seed %d: site %s at the end: %w", w.opts.Seed, s.id, err)
		}
	}
	return w.result(), nil
}

// recalls reports whether the checkers keep their last events from the
// start: asked to, or watched by an Observer (which must not see a run twice).
func (o Options) recalls() bool { return o.Recall || o.Observer != nil }

// recall replays a run that a violation stopped, its checkers recalling
// their last events, and returns the replay's error: the same violation,
// with the events that led to it. A replay that does not stop on the same
// violation of the same event says that the run is not deterministic.
func (w *World) recall(err error) error {
	var v *controller.Violation
	if !errors.As(err, &v) || w.opts.recalls() {
		return err
	}
	opts := w.opts
	opts.Recall = true
	replay, nerr := New(w.sc, opts)
	if nerr != nil {
		return err
	}
	var again *controller.Violation
	if _, rerr := replay.RunUntil(time.Duration(replay.end)); errors.As(rerr, &again) &&
		again.Invariant == v.Invariant && again.Event.Seq == v.Event.Seq && again.Event.At == v.Event.At {
		return rerr
	}
	return fmt.Errorf("%w\n(a replay to recall the events before it did not stop there: the run is not deterministic)", err)
}

// RunUntil simulates up to virtual time t (from the start of the run) and
// reports whether the run has more to do. A view steps the world with it.
//
// The shards advance in steps. A parcel is redirected only by courier work
// (sourceAt), and it reaches its next site at least the redirect setup time
// later; so while the earliest pending courier work of any shard is at E, no
// redirected parcel arrives anywhere before E plus the setup, and the shards
// run to there independently. Between steps the redirected parcels are
// handed to their sites' shards, shard by shard in order. Where couriers
// work around the clock (individual deliveries) the steps are the setup
// time; with waves they span the quiet hours. A scenario without redirects
// has one step.
func (w *World) RunUntil(t time.Duration) (bool, error) {
	until := min(sim.FromDuration(t), w.end)
	par := w.opts.Parallel
	if par == nil || len(w.shards) == 1 || w.watch != nil || w.opts.Observer != nil {
		par = func(n int, f func(int)) {
			for i := range n {
				f(i)
			}
		}
	}
	redirects := w.sc.Couriers.OnFull == scenarios.OnFullNearestSite
	setup := sim.FromDuration(w.sc.Couriers.RedirectSetup.D())
	for w.err == nil && w.now < until {
		to := until
		if redirects {
			for _, sh := range w.shards {
				if len(sh.src) > 0 {
					to = min(to, max(sh.src[0], w.now)+setup)
				}
			}
		}
		w.steps++
		par(len(w.shards), func(i int) { w.shards[i].eng.Run(to) })
		for _, sh := range w.shards {
			if sh.err != nil {
				w.err = sh.err
				return false, w.err
			}
		}
		w.exchange()
		if w.err != nil {
			return false, w.err
		}
		w.now = to
	}
	return w.now < w.end, w.err
}

// sourceAt schedules courier work at t: an event that may redirect a
// parcel (a wave, a delivery, a redirected parcel arriving, an arrival when
// couriers come at once). Only these can start a redirect, and only at their
// own time or later, which is what lets RunUntil stretch its steps.
// The handler must begin with fireSource.
func (w *shard) sourceAt(t sim.Time, h sim.Handler, arg uint64) {
	w.src.push(t)
	w.eng.At(t, h, arg)
}

// arrivalAt schedules a redirected parcel's arrival, courier work too. It
// goes ahead of everything else due at its time, in parcel order: where it
// lands among simultaneous events does not depend on the step it was
// exchanged after, so a run is the same however it is stepped.
func (w *shard) arrivalAt(m redirectMsg) {
	w.src.push(m.at)
	w.eng.AtFirstFunc(m.at, m.p.num, func() {
		if w.fireSource() {
			w.redirected(m)
		}
	})
}

// fireSource is where courier work begins: it takes its time off the
// shard's courier-work heap and reports whether it can go ahead.
func (w *shard) fireSource() bool {
	if w.src.pop() != w.eng.Now() {
		w.fail(errors.New("world: courier work fired out of order")) // cannot happen: events fire in time order
		return false
	}
	return true
}

// timeHeap is a binary min-heap of times.
type timeHeap []sim.Time

func (h *timeHeap) push(t sim.Time) {
	*h = append(*h, t)
	x := *h
	for i := len(x) - 1; i > 0; {
		up := (i - 1) / 2
		if x[up] <= x[i] {
			break
		}
		x[up], x[i] = x[i], x[up]
		i = up
	}
}

func (h *timeHeap) pop() sim.Time {
	x := *h
	top, n := x[0], len(x)-1
	x[0] = x[n]
	x = x[:n]
	for i := 0; ; {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && x[c+1] < x[c] {
			c++
		}
		if x[i] <= x[c] {
			break
		}
		x[i], x[c] = x[c], x[i]
		i = c
	}
	*h = x
	return top
}

// exchange hands redirected parcels to the shards of their next sites.
func (w *World) exchange() {
	for _, sh := range w.shards {
		for _, m := range sh.outbox {
			to := w.shards[w.of[m.to]]
			sh.legs++
			if to != sh {
				sh.crossed++
			}
			if m.at < to.eng.Now() { // cannot happen: RunUntil's steps end before any arrival
				w.err = fmt.Errorf("seed %d: parcel %s redirected to arrive at %v, but its shard is at %v", w.opts.Seed, m.p.id, m.at, to.eng.Now())
				return
			}
			to.arrivalAt(m)
		}
		clear(sh.outbox)
		sh.outbox = sh.outbox[:0]
	}
}

// Events is the number of engine events fired so far, over all shards.
func (w *World) Events() uint64 {
	var n uint64
	for _, sh := range w.shards {
		n += sh.eng.Fired()
	}
	return n
}

// ---- demand ---------------------------------------------------------------

// rate is a site's arrival intensity at time t, per hour.
func (w *shard) rate(s *site, t sim.Time) float64 {
	ts := Epoch.Add(time.Duration(t))
	r := s.ratePerH * w.hourly[ts.Hour()] * w.weekly[(int(ts.Weekday())+6)%7]
	if len(w.sc.Demand.Seasonality) > 0 {
		r *= w.sc.Demand.SeasonFactor(scenarios.Duration(t))
	}
	return r
}

// scheduleArrival draws the site's next arrival of a non-homogeneous
// Poisson process by thinning (Lewis & Shedler).
func (w *shard) scheduleArrival(s *site) {
	bound := s.ratePerH * w.maxRate
	t := w.eng.Now()
	for {
		t += sim.FromSeconds(w.demandRng.ExpFloat64() / bound * 3600)
		if t > w.end {
			return
		}
		if w.demandRng.Float64()*bound <= w.rate(s, t) {
			break
		}
	}
	if w.sc.Couriers.Delivery == scenarios.DeliveryIndividual {
		w.sourceAt(t, w, shArrival|uint64(s.idx)<<8) // a courier comes at once
	} else {
		w.eng.At(t, w, shArrival|uint64(s.idx)<<8)
	}
}

// What a shard's own event does: the low byte of its arg; the site's index
// is above it.
const (
	shArrival uint64 = iota + 1 // a parcel arrives at a site's depot
	shWave                      // a courier wave (courier work)
)

// Fire runs a shard's own event (sim.Handler).
func (w *shard) Fire(_ sim.Time, arg uint64) {
	switch arg & 0xff {
	case shArrival:
		if w.sc.Couriers.Delivery == scenarios.DeliveryIndividual && !w.fireSource() {
			return
		}
		w.arrive(w.sites[arg>>8])
	case shWave:
		if w.fireSource() {
			w.wave()
		}
	}
}

// newID numbers a parcel of a home site; the numbers are unique across
// shards (shard i draws i, i+n, i+2n, … after its first).
func (w *shard) newID(p *parcel, home *site) {
	w.nextID += w.stride
	p.num = w.nextID
	w.parcels.add(p, home.id, &w.strs)
}

func (w *shard) arrive(s *site) {
	p := &parcel{w: w, home: s.idx, at: -1, arrived: w.eng.Now(), measured: w.eng.Now() >= w.warmup}
	w.newID(p, s)
	p.spec = controller.ParcelSpec{Class: w.drawClass()}
	w.kpi.offered(p)
	if w.sc.Couriers.Delivery == scenarios.DeliveryWaves {
		s.pending = append(s.pending, p)
	} else {
		w.deliver(p, s, 0)
	}
	w.scheduleArrival(s)
}

func (w *shard) drawClass() string {
	mix := w.ambientMix
	if w.sc.Demand.ChilledShare > 0 && w.sizeRng.Float64() < w.sc.Demand.ChilledShare {
		mix = w.chilledMix
	}
	u := w.sizeRng.Float64() * mix[len(mix)-1].cum
	for _, e := range mix {
		if u < e.cum {
			return e.class
		}
	}
	return mix[len(mix)-1].class
}

// ---- couriers ---------------------------------------------------------------

// scheduleWaves runs every wave of every day until the end.
func (w *shard) scheduleWaves() {
	for day := sim.Time(0); day < w.end; day += sim.Day {
		for _, wave := range w.sc.Couriers.Waves {
			at := day + sim.FromDuration(wave.D())
			if at <= w.end {
				w.sourceAt(at, w, shWave)
			}
		}
	}
}

// wave is a courier round: each site with waiting parcels (or returns to
// collect) is one stop.
func (w *shard) wave() {
	for _, s := range w.own {
		if len(s.pending) == 0 && len(s.returns) == 0 {
			continue
		}
		w.kpi.stop(s)
		batch, returns := s.pending, s.returns
		s.pending, s.returns = nil, nil
		for i, p := range batch {
			w.deliver(p, s, time.Duration(i)*depositSpacing)
		}
		for i, id := range returns {
			w.collectReturn(s, id, time.Duration(len(batch)+i)*depositSpacing)
		}
	}
}

// deliver brings a parcel to a site: announce (reserve), then deposit after
// a delay; when the site is full, the scenario's on_full policy decides.
func (w *shard) deliver(p *parcel, s *site, after time.Duration) {
	if w.sc.Couriers.Delivery == scenarios.DeliveryIndividual {
		w.kpi.stop(s)
	}
	w.sourceAt(w.eng.Now()+sim.FromDuration(after), p, pDeliver|uint64(s.idx)<<8)
}

// delivered: the courier is at the site with the parcel.
func (w *shard) delivered(p *parcel, s *site) {
	if _, err := s.core.Announce(p.id, p.spec, p.id); err != nil {
		if !errors.Is(err, controller.ErrNoCapacity) {
			w.fail(fmt.Errorf("announce %s: %w", p.id, err))
			return
		}
		w.full(p, s, err)
		return
	}
	p.at = s.idx
	if s.idx != p.home {
		w.kpi.redirected(p)
	}
	w.startDeposit(p, s)
}

// full applies on_full to a refused parcel.
func (w *shard) full(p *parcel, s *site, err error) {
	switch w.sc.Couriers.OnFull {
	case scenarios.OnFullNextWave:
		p.carries++
		if p.carries < maxCarries {
			w.kpi.deferred(p)
			// Offered again at the next wave under its id, as a courier
			// does with a tracking number (State.Reofferable).
			w.sites[p.home].pending = append(w.sites[p.home].pending, p)
			return
		}
	case scenarios.OnFullNearestSite:
		if s.idx == p.home && len(s.neighbors) > 0 {
			w.forward(p, s, 0)
			return
		}
	}
	w.kpi.refused(p, err)
	w.parcels.remove(p)
}

// Redirects: a courier whose site is full drives the parcel to the nearest
// neighbour, and on to the next while they are full too (at most
// maxNeighbours, within neighbourRadiusM of home). Each leg takes the
// scenario's couriers.redirect_setup to load up and park plus the distance
// at couriers.redirect_speed_kmh.

// redirectMsg is a parcel on its way to home's k-th neighbour.
type redirectMsg struct {
	at sim.Time
	to int // site index
	k  int // which neighbour of the parcel's home
	p  *parcel
}

// forward sends a parcel from site from to its home's k-th neighbour. It
// leaves this shard now and reaches the neighbour's at the exchange: every
// redirect goes that way, so it behaves the same whether or not the two
// sites share a shard.
func (w *shard) forward(p *parcel, from *site, k int) {
	to := w.sites[p.home].neighbors[k]
	cr := &w.sc.Couriers
	speed := cr.RedirectSpeedKmh / 3.6 // m/s
	drive := cr.RedirectSetup.D() + time.Duration(dist(from.pos, w.sites[to].pos)/speed*float64(time.Second))
	w.parcels.remove(p)
	w.outbox = append(w.outbox, redirectMsg{at: w.eng.Now() + sim.FromDuration(drive), to: to, k: k, p: p})
}

// redirected: a forwarded parcel reaches its next site.
func (w *shard) redirected(m redirectMsg) {
	p, s := m.p, w.sites[m.to]
	p.w = w // tryAt gives it an id of this shard
	if w.tryAt(p, s) {
		return
	}
	if m.k+1 < len(w.sites[p.home].neighbors) {
		w.forward(p, s, m.k+1)
		return
	}
	w.kpi.refused(p, controller.ErrNoCapacity)
	w.parcels.remove(p)
}

// tryAt announces a parcel at another site; on success the courier drives
// there and deposits it.
func (w *shard) tryAt(p *parcel, s *site) bool {
	w.renew(p)
	if _, err := s.core.Announce(p.id, p.spec, p.id); err != nil {
		return false
	}
	p.at = s.idx
	w.kpi.redirected(p)
	w.kpi.stop(s)
	w.startDeposit(p, s)
	return true
}

// renew gives a parcel an id of this shard: a parcel redirected from
// another shard's site is indexed here (ids name their shard).
func (w *shard) renew(p *parcel) {
	w.parcels.remove(p)
	w.newID(p, w.sites[p.home])
}

func (w *shard) startDeposit(p *parcel, s *site) {
	p.tries++
	d, err := s.core.StartDeposit(p.id)
	if err != nil {
		if errors.Is(err, controller.ErrNoCapacity) {
			w.kpi.refused(p, err)
			w.parcels.remove(p)
			return
		}
		w.fail(fmt.Errorf("deposit %s: %w", p.id, err))
		return
	}
	p.cabinet, p.slot = d.Cabinet, d.Compartment
	w.await(s.cabinet(d.Cabinet), d.Compartment, &action{kind: actDeposit, p: p})
}

// await puts a person at a door until it opens (or their patience ends).
func (w *shard) await(c *cab, slot int, a *action) {
	a.c, a.slot = c, slot
	c.expect[slot-1] = a
	a.patience = w.eng.After(sim.FromDuration(doorPatience), a, actGiveUp)
}

// gaveUp: the door did not open for a person.
func (w *shard) gaveUp(c *cab, a *action) {
	switch a.kind {
	case actDeposit:
		w.kpi.count(kpiDepositDoorFailures, a.p)
		// The operator sorts the controller's side out; the courier takes
		// the parcel back and it is lost to this locker.
	case actPickup:
		w.kpi.count(kpiPickupDoorFailures, a.p)
		w.revisit(a.p, 2*time.Hour)
	case actReturn:
		w.kpi.count(kpiReturnDoorFailures, a.p)
	}
}

// DoorOpened is the virtual cabinet telling the world a door opened.
func (c *cab) DoorOpened(_ string, slot int, command string) {
	a := c.expect[slot-1]
	if a == nil || command == "" {
		return // nobody there (an uncommanded opening): the cabinet shuts it
	}
	a.opened = true
	c.expect[slot-1] = nil
	w := c.s.w
	w.eng.Cancel(a.patience)
	handling := recipientHandling
	if a.kind == actDeposit {
		handling = courierHandling
	}
	w.eng.After(sim.FromDuration(handling), a, actHandled)
}

// DoorJammed is the virtual cabinet telling the world a door jammed.
func (c *cab) DoorJammed(string, int) { c.s.w.needVisit(c.s) }

// checkDeposit: a courier whose deposit did not register (the sensor read
// empty) opens the door again; after maxDepositTries they take the parcel
// back and cancel it.
func (w *shard) checkDeposit(p *parcel, c *cab) {
	if st, _ := c.s.core.ParcelState(p.id); st != controller.StateReserved {
		return
	}
	if p.tries < maxDepositTries {
		w.startDeposit(p, c.s)
		return
	}
	if err := c.s.core.Cancel(p.id); err != nil {
		w.fail(fmt.Errorf("cancel %s: %w", p.id, err))
		return
	}
	w.kpi.count(kpiDepositsCancelled, p)
	w.parcels.remove(p)
}

// ---- recipients -----------------------------------------------------------

// onNotify handles a notification to a recipient.
func (s *site) onNotify(n controller.Notification) {
	w := s.w
	p := w.parcels.get(n.Parcel)
	if p == nil {
		return
	}
	switch n.Kind {
	case controller.NotifyArrival:
		w.eng.Cancel(p.check) // the deposit took: the courier's app says so
		p.check = 0
		p.code, p.cabinet, p.slot, p.notified = n.Code, n.Cabinet, n.Compartment, w.eng.Now()
		w.kpi.deposited(p)
		if w.recipientRng.Float64() < w.sc.Recipients.NoShowShare {
			p.noShow = true
			return
		}
		w.revisit(p, w.delay.draw())
	case controller.NotifyCodeReissued:
		p.code = n.Code
		if !p.noShow {
			w.revisit(p, time.Duration(w.recipientRng.ExpFloat64()*float64(2*time.Hour)))
		}
	case controller.NotifyReminder:
		if p.noShow || w.recipientRng.Float64() >= w.sc.Recipients.ReminderResponse {
			return
		}
		soon := time.Duration(w.recipientRng.ExpFloat64() * float64(2*time.Hour))
		if p.visit != 0 && p.visitAt <= w.eng.Now()+sim.FromDuration(soon) {
			return // coming sooner anyway: a reminder hurries, never delays
		}
		w.revisit(p, soon)
	case controller.NotifyExpiry:
		w.eng.Cancel(p.visit)
		p.visit = 0
		if w.sc.Couriers.Delivery == scenarios.DeliveryWaves {
			s.returns = append(s.returns, p.id)
		} else {
			// A courier collects returns on the next morning round.
			next := (w.eng.Now()/sim.Day+1)*sim.Day + 10*sim.Hour
			w.eng.AtFunc(next, func() {
				w.kpi.stop(s)
				w.collectReturn(s, p.id, 0)
			})
		}
	case controller.NotifyReturned:
		w.parcels.remove(p)
	}
}

// revisit schedules (or brings forward) the recipient's visit.
func (w *shard) revisit(p *parcel, after time.Duration) {
	at := w.eng.Now() + sim.FromDuration(after)
	w.eng.Cancel(p.visit)
	p.visit, p.visitAt = w.eng.At(at, p, pVisit), at
}

// What a parcel's event does: the low byte of its arg; a delivery carries
// its site's index above it.
const (
	pVisit   uint64 = iota + 1 // the recipient comes to pick it up
	pDeliver                   // the courier brings it to a site (courier work)
)

// Fire runs a parcel's event (sim.Handler).
func (p *parcel) Fire(_ sim.Time, arg uint64) {
	w := p.w
	switch arg & 0xff {
	case pVisit:
		p.visit = 0
		w.pickup(p)
	case pDeliver:
		if w.fireSource() {
			w.delivered(p, w.sites[arg>>8])
		}
	}
}

// pickup: the recipient at the cabinet types their code.
func (w *shard) pickup(p *parcel) {
	s := w.sites[p.at]
	if st, _ := s.core.ParcelState(p.id); st != controller.StateAwaitingPickup {
		return // expired, or in an exception the operator will sort out
	}
	c := s.cabinet(p.cabinet)
	if !c.vc.Online() {
		// The keypad says the locker is offline: they come back later.
		w.kpi.count(kpiPickupsLockerOffline, p)
		w.revisit(p, 2*time.Hour)
		return
	}
	w.await(c, p.slot, &action{kind: actPickup, p: p})
	c.vc.TypeCode(p.code)
}

// ---- returns and the operator ----------------------------------------------

func (w *shard) collectReturn(s *site, id string, after time.Duration) {
	w.eng.AfterFunc(sim.FromDuration(after), func() {
		p := w.parcels.get(id)
		if p == nil {
			return
		}
		d, err := s.core.CollectReturn(id)
		if err != nil {
			return // already collected, or in an exception
		}
		w.await(s.cabinet(d.Cabinet), d.Compartment, &action{kind: actReturn, p: p})
	})
}

// needVisit schedules an operator visit to a site.
func (w *shard) needVisit(s *site) {
	if s.visit {
		return
	}
	s.visit = true
	w.eng.AfterFunc(sim.FromDuration(operatorDelay), func() { w.operatorVisit(s) })
}

// operatorVisit: a technician repairs jammed doors, resolves exceptions by
// looking in the compartment, and puts repaired doors back in service.
func (w *shard) operatorVisit(s *site) {
	s.visit = false
	for _, c := range s.cabinets {
		for slot := 1; slot <= len(c.expect); slot++ {
			if st, _, _ := c.vc.DoorState(slot); st == twin.DoorJammed {
				_ = c.vc.Repair(slot)
			}
		}
	}
	for _, info := range s.core.Exceptions() {
		p := w.parcels.get(info.ID)
		c := s.cabinet(info.Cabinet)
		var occupied bool
		if c != nil {
			_, occupied, _ = c.vc.DoorState(info.Compartment)
		}
		inLocker := info.Previous.InLocker()
		res := controller.ResolveRemoved
		if inLocker && occupied {
			res = controller.ResolveResume
		}
		if res == controller.ResolveRemoved && occupied && c != nil {
			// Staff take the parcel out: the compartment is empty afterwards.
			c.vc.ForceEmpty(info.Compartment)
		}
		if err := s.core.ResolveException(info.ID, res); err != nil {
			w.fail(fmt.Errorf("operator resolving %s: %w", info.ID, err))
			return
		}
		if p != nil && res == controller.ResolveRemoved {
			w.kpi.count(kpiRemovedByStaff, p)
			w.parcels.remove(p)
		}
	}
	inv := s.core.Inventory()
	for _, c := range s.cabinets {
		for slot := 1; slot <= len(c.expect); slot++ {
			id, _ := inv.CompartmentAt(allocator.CabinetID(cabIndex(s, c)), slot)
			if inv.Status(id) != allocator.OutOfService {
				continue
			}
			if st, _, _ := c.vc.DoorState(slot); st == twin.DoorLocked {
				if err := s.core.ReturnToService(c.name, slot); err != nil {
					w.fail(fmt.Errorf("operator returning %s/%d: %w", c.name, slot, err))
					return
				}
			}
		}
	}
}

// cabinet finds a site's cabinet by name (nil if it has none of that name):
// a scan of the few a site has, the map past eight.
func (s *site) cabinet(name string) *cab {
	if len(s.cabinets) <= 8 {
		for _, c := range s.cabinets {
			if c.name == name {
				return c
			}
		}
		return nil
	}
	return s.byName[name]
}

func cabIndex(s *site, c *cab) int {
	for i, x := range s.cabinets {
		if x == c {
			return i
		}
	}
	return -1
}

// ---- wiring: controller outputs, cabinet uplink ----------------------------

// Send delivers a controller command to a cabinet over the down link.
func (s *site) Send(cabName string, cmd twin.Command) {
	c := s.cabinet(cabName)
	m := s.w.newMsg(c)
	m.cmd = cmd
	m.sent(c.down.Deliver(m.fire))
}

// Notify hands a notification to the world's recipients.
func (s *site) Notify(n controller.Notification) { s.onNotify(n) }

// PublishEvent carries a cabinet event up to its site's controller.
func (c *cab) PublishEvent(name string, ev twin.Event) {
	m := c.s.w.newMsg(c)
	m.up, m.name, m.ev = true, name, ev
	m.sent(c.up.Deliver(m.fire))
}

// msg is a command or event on its way over a link. Messages are pooled per
// shard and each makes its fire func once, so carrying one allocates
// nothing: a city month carries some 40 million, and a closure per message
// was a quarter of all allocations.
type msg struct {
	c    *cab
	up   bool // an event (name, ev); else a command (cmd)
	name string
	ev   twin.Event
	cmd  twin.Command
	refs int8 // arrivals still to come
	fire func()
}

func (w *shard) newMsg(c *cab) *msg {
	var m *msg
	if n := len(w.msgFree); n > 0 {
		m = w.msgFree[n-1]
		w.msgFree = w.msgFree[:n-1]
	} else {
		m = new(msg)
		m.fire = m.arrive
	}
	m.c, m.up = c, false
	return m
}

// sent records how many copies the link will deliver (0 to 2).
func (m *msg) sent(copies int) {
	m.refs = int8(copies)
	if copies == 0 {
		m.free()
	}
}

// free puts the message back in the pool. Its fields are not cleared: the
// next use sets the ones it reads (300 bytes to zero per message was half
// a percent of a run), and what the stale ones keep alive is a few strings.
func (m *msg) free() {
	w := m.c.s.w
	w.msgFree = append(w.msgFree, m)
}

// arrive is one copy of the message arriving.
func (m *msg) arrive() {
	// Handled from the message itself, and freed after: nothing of its 300
	// bytes is copied on the way.
	m.refs--
	if m.up {
		m.handleEvent()
	} else {
		m.c.vc.HandleCommand(m.cmd)
	}
	if m.refs == 0 {
		m.free()
	}
}

func (m *msg) handleEvent() {
	c := m.c
	if err := c.s.core.HandleEvent(m.name, m.ev); err != nil {
		if errors.Is(err, controller.ErrDuplicateEvent) {
			c.s.w.kpi.duplicatesDropped++
			return
		}
		c.s.w.fail(fmt.Errorf("cabinet %s event %s: %w", m.name, m.ev.Type, err))
	}
}

// PublishState carries a reported state up (the controller reconciles it).
func (c *cab) PublishState(name string, st twin.State) {
	c.up.Deliver(func() {
		if err := c.s.core.HandleState(name, st); err != nil && !errors.Is(err, twin.ErrStaleState) {
			c.s.w.fail(fmt.Errorf("cabinet %s state: %w", name, err))
		}
	})
}

// PublishStatus carries online/offline (the will) up.
func (c *cab) PublishStatus(name string, status string) {
	c.up.Deliver(func() {
		if err := c.s.core.CabinetOnline(name, status == twin.StatusOnline); err != nil {
			c.s.w.fail(err)
		}
	})
}

// siteHook feeds the site's domain events to the KPIs, the operator and the
// replication's observer.
type siteHook struct{ s *site }

func (h siteHook) OnLogged(_ *controller.Core, e *controller.Event) {
	s := h.s
	s.w.kpi.onEvent(s, e)
	s.w.observe(s, e)
	switch e.Kind {
	case controller.ExceptionRaised, controller.OutOfService:
		s.w.needVisit(s)
	}
	if s.w.opts.Observer != nil {
		s.w.opts.Observer(s.id, e)
	}
}
