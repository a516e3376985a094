package scenarios

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestShippedScenariosValidate(t *testing.T) {
	names := Shipped()
	require.ElementsMatch(t, []string{
		"bopis-store.yaml", "city-network.yaml", "grocery-chilled.yaml",
		"residential-tower.yaml", "university-campus.yaml",
	}, names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			s, warnings, err := LoadShipped(name)
			require.NoError(t, err)
			require.Empty(t, warnings, "shipped scenarios should be warning-free")
			require.Equal(t, strings.TrimSuffix(name, ".yaml"), s.Name, "name matches the file")
			require.NotEmpty(t, s.Description)
			require.Positive(t, s.CabinetCount())
			// The file on disk is the embedded one.
			fromDisk, _, err := Load(name)
			require.NoError(t, err)
			require.Equal(t, s.Sites, fromDisk.Sites)
		})
	}
}

func TestUnknownShippedScenarioListsTheShippedOnes(t *testing.T) {
	_, _, err := LoadShipped("nope.yaml")
	require.EqualError(t, err, `no shipped scenario "nope.yaml" (shipped: `+strings.Join(Shipped(), ", ")+")")
	require.Contains(t, err.Error(), "city-network.yaml")
}

func TestShippedScenarioFigures(t *testing.T) {
	tower, _, err := LoadShipped("residential-tower.yaml")
	require.NoError(t, err)
	require.Equal(t, 120, totalCompartments(tower))
	require.InDelta(t, 55, tower.Demand.ParcelsPerDay, 0)
	require.Equal(t, Duration(28*24*time.Hour), tower.Duration)
	require.Equal(t, uint64(42), tower.Seed)
	require.Equal(t, "best-fit", tower.Policy.Allocator)

	city, _, err := LoadShipped("city-network.yaml")
	require.NoError(t, err)
	require.Len(t, city.Sites, 2000)
	require.Equal(t, 2000, city.CabinetCount())
	require.Equal(t, "city-00-00", city.Sites[0].ID)
	require.Equal(t, "city-39-49", city.Sites[1999].ID)
	require.Equal(t, Position{XM: 49 * 400, YM: 39 * 400}, city.Sites[1999].Position)
	days := (city.Duration + city.Warmup).Hours() / 24
	require.InDelta(t, 3.6e6, city.Demand.ParcelsPerDay*days*2000, 0.1e6, "about 3.6 M parcels")

	grocery, _, err := LoadShipped("grocery-chilled.yaml")
	require.NoError(t, err)
	require.Equal(t, Duration(24*time.Hour), grocery.Policy.ChilledPickupWindow)
	require.Equal(t, Duration(48*time.Hour), grocery.Policy.PickupWindow)
}

func totalCompartments(s *Scenario) int {
	n := 0
	for _, site := range s.Sites {
		for _, g := range site.Cabinets {
			m, _ := s.Model(g.Model)
			for _, e := range m.Compartments {
				n += e.Value * g.Count
			}
		}
	}
	return n
}

// TestThreeMistakesAllReported is the acceptance case: an unknown key, a
// misspelt class and a size mix summing to 0.9 are all named, with lines.
func TestThreeMistakesAllReported(t *testing.T) {
	_, _, err := Load("testdata/three-mistakes.yaml")
	require.Error(t, err)
	var ps Problems
	require.ErrorAs(t, err, &ps)
	msg := err.Error()
	require.Contains(t, msg, `testdata/three-mistakes.yaml:4:1: unknown key "colour" in the scenario (known: version, name,`)
	require.Contains(t, msg, `testdata/three-mistakes.yaml:10:27: cabinet model "bank": unknown compartment class "Mm" (did you mean "M"?)`)
	require.Contains(t, msg, `testdata/three-mistakes.yaml:16:13: demand.size_mix sums to 0.9; shares must sum to 1`)
	require.Len(t, ps, 3)
}

func TestProblemsGolden(t *testing.T) {
	for _, name := range []string{"three-mistakes", "many-mistakes"} {
		t.Run(name, func(t *testing.T) {
			_, warnings, err := Load(filepath.Join("testdata", name+".yaml"))
			require.Error(t, err)
			got := err.Error() + "\n"
			if len(warnings) > 0 {
				got += warnings.Error() + "\n"
			}
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./scenarios -update to create %s", golden)
			require.Equal(t, string(want), got)
		})
	}
}

const minimal = `version: 1
name: tiny
duration: 1d
compartment_classes: [{name: S, width_mm: 1, height_mm: 1, depth_mm: 1}]
cabinet_models: [{name: m, compartments: {S: 1}}]
sites: [{id: a, cabinets: [{model: m, count: 1}]}]
demand: {parcels_per_day: 1, size_mix: {S: 1}}
recipients: {pickup_delay: {distribution: fixed, value: 1h}}
`

func TestDefaults(t *testing.T) {
	s, warnings, err := Parse("tiny.yaml", []byte(minimal))
	require.NoError(t, err)
	require.Empty(t, warnings)
	require.Equal(t, uint64(DefaultSeed), s.Seed)
	require.Equal(t, DefaultReplications, s.Replications)
	require.Equal(t, Duration(0), s.Warmup)
	require.Equal(t, ZoneAmbient, s.CompartmentClasses[0].Zone)
	require.Equal(t, DeliveryIndividual, s.Couriers.Delivery)
	require.Equal(t, OnFullRefuse, s.Couriers.OnFull)
	require.Equal(t, DefaultAllocator, s.Policy.Allocator)
	require.Equal(t, DefaultPickupWindow, s.Policy.PickupWindow)
	require.Equal(t, DefaultPickupWindow, s.Policy.ChilledPickupWindow)
	require.Equal(t, DefaultReminderAfter, s.Policy.ReminderAfter)
	require.Equal(t, DefaultReservationTimeout, s.Policy.ReservationTimeout)
	require.Nil(t, s.Faults.CabinetOutage)
}

func TestProblemCases(t *testing.T) {
	tests := []struct {
		name  string
		patch string // appended to minimal; later keys are duplicates unless new
		want  []string
	}{
		{"duplicate top-level key", "seed: 3\nseed: 4\n", []string{`10:1: duplicate key "seed" (first at line 9)`}},
		{"pickup window none is allowed", "policy: {pickup_window: none}\n", nil},
		{"empirical must sum to 1", "", nil},
		{"wave order", "couriers: {delivery: waves, waves: [\"10:00\", \"09:00\"]}\n", []string{"wave times must be in increasing order"}},
		{"next wave needs waves", "couriers: {on_full: next_wave}\n", []string{"on_full: next_wave needs delivery: waves"}},
		{"redirect setup too short", "couriers: {redirect_setup: 5s}\n", []string{"redirect_setup must be at least 10s"}},
		{"redirect speed", "couriers: {redirect_speed_kmh: 0}\n", []string{"redirect_speed_kmh must be above 0 and at most 130"}},
		{"redirect keys", "couriers: {redirect_setup: 90s, redirect_speed_kmh: 30}\n", nil},
		{"unknown policy key suggests", "policy: {pickup_windw: 3d}\n", []string{`unknown key "pickup_windw" in policy (did you mean "pickup_window"?)`}},
		{"reserve only for reserve-large", "policy: {reserve: {S: 1}}\n", []string{"warning: policy.reserve is used only by the reserve-large allocator"}},
		{"bad duration unit", "warmup: 3days\n", []string{`warmup: duration "3days": unknown unit "days"`}},
		{"list where a mapping belongs", "faults: [1, 2]\n", []string{"faults: expected a mapping, got a list"}},
		{"negative site rate", "site_grids: [{prefix: g, rows: 1, cols: 2, spacing_m: 10, cabinets: [{model: m, count: 1}], parcels_per_day: -1}]\n", []string{"parcels_per_day cannot be negative"}},
		{"season order", "demand: {parcels_per_day: 1, size_mix: {S: 1}, seasonality: [{from: 3d, to: 1d, factor: 2}]}\n", []string{"season must have 0 ≤ from < to"}},
		{"too many compartments", "cabinet_models: [{name: m, compartments: {S: 513}}]\n", []string{`cabinet model "m" has 513 compartments, at most 512`}},
		{"the most compartments", "cabinet_models: [{name: m, compartments: {S: 512}}]\n", nil},
		// Sizes past what a run can hold, each refused with its own message
		// rather than overflowing (a grid of 2³² × 2³² sites is 0 sites in
		// an int, and was expanded until memory ran out).
		{"grid product overflows", "site_grids: [{prefix: g, rows: 4294967296, cols: 4294967296, spacing_m: 10, cabinets: [{model: m, count: 1}]}]\n",
			[]string{"site grid of 4294967296 × 4294967296 sites is larger than 100000"}},
		{"largest grid", "site_grids: [{prefix: g, rows: 1, cols: 99999, spacing_m: 10, cabinets: [{model: m, count: 1}]}]\n", nil},
		{"grid too large", "site_grids: [{prefix: g, rows: 2, cols: 50001, spacing_m: 10, cabinets: [{model: m, count: 1}]}]\n",
			[]string{"site grid of 2 × 50001 sites is larger than 100000"}},
		{"too many cabinets in a group", "sites: [{id: a, cabinets: [{model: m, count: 1000000000}]}]\n",
			[]string{"cabinet count must be from 1 to 100000, got 1000000000"}},
		{"too many cabinets in all", "site_grids: [{prefix: g, rows: 100, cols: 100, spacing_m: 10, cabinets: [{model: m, count: 11}]}]\n",
			[]string{"9:13: the scenario has 110001 cabinets or more; at most 100000"}},
		{"compartment too large", "compartment_classes: [{name: S, width_mm: 3000000000, height_mm: 3000000000, depth_mm: 3000000000}]\n",
			[]string{"width_mm of class \"S\" must be a number of millimetres from 1 to 10000, got 3000000000"}},
		{"parcels per day", "demand: {parcels_per_day: 1e7, size_mix: {S: 1}}\n",
			[]string{"parcels_per_day of 1e+07 at one site is more than 1000000"}},
		{"site parcels per day", "sites: [{id: a, cabinets: [{model: m, count: 1}], parcels_per_day: 2e6}]\n",
			[]string{"8:68: parcels_per_day of 2e+06 at one site is more than 1000000"}},
		{"overlapping seasons multiply", "demand: {parcels_per_day: 1, size_mix: {S: 1}, seasonality: [{from: 0d, to: 2d, factor: 40}, {from: 1d, to: 3d, factor: 30}]}\n",
			[]string{"seasons scale demand by up to 1200 (seasons that overlap multiply); at most 1000"}},
		{"seasons apart", "demand: {parcels_per_day: 1, size_mix: {S: 1}, seasonality: [{from: 0d, to: 1d, factor: 1000}, {from: 1d, to: 3d, factor: 1000}]}\n", nil},
		{"horizon", "duration: 3600d\nwarmup: 51d\n", []string{"8:11: warm-up 51d plus duration 3600d is more than a run may simulate, 3650d (ten years)"}},
		{"longest horizon", "duration: 3600d\nwarmup: 50d\n", nil},
		// A grid names its sites "{prefix}-{row}-{col}": a listed site or
		// another grid with the same prefix could take the same id, and two
		// sites with one id ran as if they were different.
		{"grid site named like a listed one", "sites: [{id: a-0-0, cabinets: [{model: m, count: 1}]}]\nsite_grids: [{prefix: a, rows: 1, cols: 1, spacing_m: 10, cabinets: [{model: m, count: 1}]}]\n",
			[]string{`site grid "a" names a site "a-0-0", as sites[0] does: site ids must be unique`}},
		{"two grids with one prefix", "site_grids: [{prefix: g, rows: 2, cols: 2, spacing_m: 10, cabinets: [{model: m, count: 1}]}, {prefix: g, rows: 2, cols: 3, spacing_m: 10, cabinets: [{model: m, count: 1}]}]\n",
			[]string{`site grid "g" names a site "g-0-0", as site_grids[0] does`}},
		// Grids whose cabinets are in error are not scanned for ids: 30 of
		// 100,000 sites each once made validation name 3 million sites.
		{"grids without cabinets", "site_grids: [" + strings.Repeat("{prefix: g, rows: 1000, cols: 100, spacing_m: 10, cabinets: []}, ", 30) + "]\n",
			[]string{"site_grids[29]: at least one cabinet is required"}},
		{"one prefix, other widths", "site_grids: [{prefix: g, rows: 2, cols: 2, spacing_m: 10, cabinets: [{model: m, count: 1}]}, {prefix: g, rows: 20, cols: 2, spacing_m: 10, cabinets: [{model: m, count: 1}]}]\n", nil},
		{"site id too long", "sites: [{id: " + strings.Repeat("s", 65) + ", cabinets: [{model: m, count: 1}]}]\n",
			[]string{`site id "` + strings.Repeat("s", 65) + `" is 65 characters, at most 64`}},
		{"longest site id", "sites: [{id: " + strings.Repeat("s", 64) + ", cabinets: [{model: m, count: 1}]}]\n", nil},
		{"grid ids too long", "site_grids: [{prefix: " + strings.Repeat("g", 60) + ", rows: 100, cols: 10, spacing_m: 10, cabinets: [{model: m, count: 1}]}]\n",
			[]string{`names sites like "` + strings.Repeat("g", 60) + `-99-9", 65 characters, at most 64`}},
		{"class name with a comma", "compartment_classes: [{name: \"S,x\", width_mm: 1, height_mm: 1, depth_mm: 1}]\n",
			[]string{`compartment class name "S,x" must be 1-32 characters of [A-Za-z0-9._-]`}},
		{"class name with a space", "compartment_classes: [{name: big box, width_mm: 1, height_mm: 1, depth_mm: 1}]\n",
			[]string{`compartment class name "big box" must be`}},
		{"class names as shipped", "compartment_classes: [{name: S, width_mm: 1, height_mm: 1, depth_mm: 1}, {name: M-cold, width_mm: 1, height_mm: 1, depth_mm: 1, zone: chilled}, {name: L_2.b, width_mm: 2, height_mm: 2, depth_mm: 2}]\n", nil},
		{"too many classes", "compartment_classes: [" + strings.Repeat("{name: S, width_mm: 1, height_mm: 1, depth_mm: 1}, ", 33) + "]\n",
			[]string{"33 compartment classes, at most 32"}},
		{"no demand anywhere", "demand: {parcels_per_day: 0, size_mix: {S: 1}}\n", []string{"warning: parcels_per_day is 0 at every site: no parcel will arrive"}},
		{"demand at one site only", "demand: {parcels_per_day: 0, size_mix: {S: 1}}\nsite_grids: [{prefix: g, rows: 1, cols: 2, spacing_m: 10, cabinets: [{model: m, count: 1}], parcels_per_day: 3}]\n", nil},
		{"outages too often", "faults: {cabinet_outage: {mtbf: 1ms, mttr: 1ms}}\n", []string{"mtbf 1ms is shorter than 1h"}},
		{"outages hourly", "faults: {cabinet_outage: {mtbf: 1h, mttr: 1m}}\n", nil},
		{"duration overflows", "duration: 300000d\n", []string{`duration "300000d" is longer than 36500d`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The patch's first key replaces minimal's line of that key.
			src := minimal + tt.patch
			key, _, _ := strings.Cut(tt.patch, ":")
			for line := range strings.SplitSeq(minimal, "\n") {
				if strings.HasPrefix(line, key+":") {
					src = strings.Replace(minimal, line+"\n", "", 1) + tt.patch
				}
			}
			_, warnings, err := Parse("t.yaml", []byte(src))
			all := ""
			if err != nil {
				all += err.Error() + "\n"
			}
			all += warnings.Error()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				require.Empty(t, warnings)
				return
			}
			for _, w := range tt.want {
				require.Contains(t, all, w)
			}
		})
	}
}

func TestSecondDocumentAndSyntaxErrors(t *testing.T) {
	_, _, err := Parse("two.yaml", []byte(minimal+"---\nname: other\n"))
	require.ErrorContains(t, err, "two.yaml:9:1: a scenario file holds one YAML document")

	_, _, err = Parse("bad.yaml", []byte("version: 1\nname: [unclosed\n"))
	require.ErrorContains(t, err, "bad.yaml:")
	require.ErrorContains(t, err, "invalid YAML")

	_, _, err = Parse("empty.yaml", nil)
	require.ErrorContains(t, err, "empty.yaml:1:1: empty scenario")

	_, _, err = Load("testdata/does-not-exist.yaml")
	require.EqualError(t, err, "testdata/does-not-exist.yaml: cannot read the scenario: no such file or directory")
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"90s", 90 * time.Second, ""},
		{"36h", 36 * time.Hour, ""},
		{"28d", 28 * 24 * time.Hour, ""},
		{"2w", 14 * 24 * time.Hour, ""},
		{"1d12h", 36 * time.Hour, ""},
		{"1.5d", 36 * time.Hour, ""},
		{"8h30m", 8*time.Hour + 30*time.Minute, ""},
		{"50ms", 50 * time.Millisecond, ""},
		{"none", -1, ""},
		{"", 0, "empty"},
		{"-3h", 0, "negative"},
		{"3", 0, "missing unit"},
		{"3y", 0, `unknown unit "y"`},
		{"h", 0, "expected a number"},
		{"1.2.3s", 0, `malformed number "1.2.3"`},
		{"36500d", 36500 * 24 * time.Hour, ""},
		{"5214w2d", 36500 * 24 * time.Hour, ""},
		// Past a hundred years, and past what a time.Duration holds: each
		// said to be too long, none wrapped round to a negative span.
		{"36500d1ns", 0, `duration "36500d1ns" is longer than 36500d`},
		{"300000d", 0, `duration "300000d" is longer than 36500d`},
		{"100000000h", 0, `duration "100000000h" is longer than 36500d`},
		{"20000d20000d", 0, "longer than 36500d"},
		{"99999999999999999999999d", 0, "longer than 36500d"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, Duration(tt.want), got)
		})
	}
	require.Equal(t, "28d", Duration(28*24*time.Hour).String())
	require.Equal(t, "none", Never.String())
	require.Equal(t, "1h30m", Duration(90*time.Minute).String())
	require.Equal(t, "1d12h", Duration(36*time.Hour).String())
	require.Equal(t, "1s500ms", Duration(1500*time.Millisecond).String())
}

func TestParseTimeOfDay(t *testing.T) {
	got, err := ParseTimeOfDay("09:30")
	require.NoError(t, err)
	require.Equal(t, 9*time.Hour+30*time.Minute, got.D())
	require.Equal(t, "09:30", got.String())
	for _, bad := range []string{"9:30", "24:00", "12:60", "noon", "12-30"} {
		_, err := ParseTimeOfDay(bad)
		require.Error(t, err, bad)
	}
}

func TestScenarioPosFallsBackToParent(t *testing.T) {
	s, _, err := Parse("tiny.yaml", []byte(minimal))
	require.NoError(t, err)
	require.Equal(t, Pos{7, 9}, s.Pos("demand"))
	require.Equal(t, Pos{7, 27}, s.Pos("demand.parcels_per_day"))
	require.Equal(t, Pos{7, 9}, s.Pos("demand.hourly_profile"), "absent key: falls back to its section")
	require.Equal(t, Pos{1, 1}, s.Pos("nothing.here"))
}

// FuzzParse: the loader is a decoder of outside input; whatever the bytes,
// it returns a value or problems, never panics, and every problem is located.
func FuzzParse(f *testing.F) {
	for _, name := range Shipped() {
		data, err := shipped.ReadFile(name)
		require.NoError(f, err)
		f.Add(data)
	}
	for _, name := range []string{"three-mistakes.yaml", "many-mistakes.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("version: 1\nsites: {id: x}\n"))
	f.Add([]byte(minimal + "site_grids: [{prefix: a, rows: 1, cols: 1, spacing_m: 1, cabinets: [{model: m, count: 1}]}, {prefix: a, rows: 1, cols: 1, spacing_m: 1, cabinets: [{model: m, count: 1}]}]\n"))
	f.Add([]byte(minimal + "site_grids: [{prefix: g, rows: 4294967296, cols: 4294967296, spacing_m: 10, cabinets: [{model: m, count: 1}]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, warnings, err := Parse("fuzz.yaml", data)
		if err == nil {
			// What is accepted can be run: within every limit.
			require.NotNil(t, s)
			require.LessOrEqual(t, s.CabinetCount(), MaxCabinets)
			require.LessOrEqual(t, s.Warmup+s.Duration, MaxHorizon)
			require.LessOrEqual(t, s.Demand.PeakSeasonFactor(), float64(MaxSeasonFactor))
			ids := map[string]bool{}
			for _, site := range s.Sites {
				require.LessOrEqual(t, len(site.ID), MaxSiteIDLen)
				require.LessOrEqual(t, s.SiteParcelsPerDay(site), float64(MaxParcelsPerDay))
				require.False(t, ids[site.ID], "site id %q twice", site.ID)
				ids[site.ID] = true
			}
			require.LessOrEqual(t, len(s.CompartmentClasses), MaxClasses)
			for _, cl := range s.CompartmentClasses {
				require.LessOrEqual(t, max(cl.WidthMm, cl.HeightMm, cl.DepthMm), MaxCompartmentMm)
				require.Regexp(t, `^[A-Za-z0-9][A-Za-z0-9._-]*$`, cl.Name, "a class name fit for KPI names and CSV columns")
			}
		}
		for _, p := range append(warnings, problemsOf(err)...) {
			require.Positive(t, p.Pos.Line)
			require.NotEmpty(t, p.Message)
		}
	})
}

func problemsOf(err error) Problems {
	if ps, ok := err.(Problems); ok {
		return ps
	}
	return nil
}

func TestDecodeStrictForOtherConfigs(t *testing.T) {
	var cfg struct {
		HTTP string   `yaml:"http"`
		Port int      `yaml:"port"`
		Tags []string `yaml:"tags"`
	}
	ps := DecodeStrict("lockerd.yaml", []byte("http: :8080\nport: eighty\nhttps: x\ntags: [a]\n"), &cfg)
	require.Len(t, ps, 2)
	require.Equal(t, `lockerd.yaml:2:7: port: expected a whole number, got "eighty"`, ps[0].String())
	require.Contains(t, ps[1].String(), `lockerd.yaml:3:1: unknown key "https" in the file`, "a configuration is not a scenario")
	require.Equal(t, ":8080", cfg.HTTP)
	require.Empty(t, DecodeStrict("empty.yaml", nil, &cfg))
	require.Equal(t, `list.yaml:1:1: the file: expected a mapping, got a list`, DecodeStrict("list.yaml", []byte("[1, 2]\n"), &cfg)[0].String())
	ps = DecodeStrict("two.yaml", []byte("http: :8080\n---\nhttp: :9090\n"), &cfg)
	require.Len(t, ps, 1, "a second document is not silently ignored")
	require.Equal(t, `two.yaml:2:1: the file holds one YAML document; found another`, ps[0].String())
}

// lockerdLike is the shape of lockerd's configuration file: strings,
// a duration as text, and nothing else, as outside input meets it.
type lockerdLike struct {
	HTTP, MQTT, Data string
	StatusGrace      string   `yaml:"status_grace"`
	Port             int      `yaml:"port"`
	Verbose          bool     `yaml:"verbose"`
	Tags             []string `yaml:"tags"`
	Nested           struct {
		Rate float64 `yaml:"rate"`
	} `yaml:"nested"`
}

// FuzzDecodeStrict: any bytes as a configuration file give problems, each
// located at a line of the file, or a decoded value; never a panic.
func FuzzDecodeStrict(f *testing.F) {
	for _, seed := range []string{
		"", "http: :8080\nmqtt: :1883\nstatus_grace: 2m\n", "port: eighty\n", "tags: [a, b]\nnested: {rate: 0.5}\n",
		"[1, 2]\n", "a: &x 1\nb: *x\n", "http: :8080\nhttp: :9090\n", "---\n---\n", "verbose: yes\n", "\t: x",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg lockerdLike
		for _, p := range DecodeStrict("c.yaml", data, &cfg) {
			if p.File != "c.yaml" || p.Pos.Line < 1 || p.Message == "" {
				t.Fatalf("problem without a place or a message: %+v", p)
			}
		}
	})
}
