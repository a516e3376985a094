package scene

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lockertwin/lockertwin/controller"
	"github.com/lockertwin/lockertwin/sim/world"
)

// LiveSource follows a running lockerd: the sites and their compartments'
// states from its API, then its observations from the Server-Sent Events
// stream, in real time. lockerd keeps no site positions, so sites are laid
// out on a grid.
type LiveSource struct {
	base, token string
	client      *http.Client
	layout      world.Layout
	initial     []initialState
	start       time.Time

	mu     sync.Mutex
	queue  []world.Observation
	err    error
	gaps   int // times the stream said it dropped observations
	cancel context.CancelFunc
}

type initialState struct {
	site, cabinet  string
	slot           int
	state          CompState
	doorOpen, warm bool
}

type siteView struct {
	Site         string   `json:"site"`
	Classes      []string `json:"classes"` // the scenario's order
	Compartments []struct {
		Cabinet     string   `json:"cabinet"`
		Compartment int      `json:"compartment"`
		Class       string   `json:"class"`
		Chilled     bool     `json:"chilled"`
		Status      string   `json:"status"`
		Parcel      string   `json:"parcel"`
		DoorOpen    bool     `json:"door_open"`
		Alarms      []string `json:"alarms"`
	} `json:"compartments"`
}

// NewLiveSource reads lockerd's sites (with a courier or admin token) and
// subscribes to its event stream.
func NewLiveSource(ctx context.Context, base, token string) (*LiveSource, error) {
	s := &LiveSource{base: strings.TrimSuffix(base, "/"), token: token, client: &http.Client{}, start: time.Now()}
	var sites struct {
		Sites []string `json:"sites"`
	}
	if err := s.get(ctx, "/v1/sites", &sites); err != nil {
		return nil, err
	}
	classes := map[string]bool{}
	const spacing = 400.0
	cols := 1
	for cols*cols < len(sites.Sites) {
		cols++
	}
	for i, id := range sites.Sites {
		var v siteView
		if err := s.get(ctx, "/v1/sites/"+id, &v); err != nil {
			return nil, err
		}
		sl := world.SiteLayout{ID: id, X: float64(i%cols) * spacing, Y: -float64(i/cols) * spacing}
		// Classes in the scenario's order (smallest first in a zone), then any
		// other a compartment names.
		for _, c := range v.Classes {
			if !classes[c] {
				classes[c] = true
				s.layout.Classes = append(s.layout.Classes, c)
			}
		}
		byCab := map[string]int{}
		for _, c := range v.Compartments {
			j, ok := byCab[c.Cabinet]
			if !ok {
				j = len(sl.Cabinets)
				byCab[c.Cabinet] = j
				sl.Cabinets = append(sl.Cabinets, world.CabinetLayout{Name: c.Cabinet})
			}
			sl.Cabinets[j].Compartments = append(sl.Cabinets[j].Compartments, world.CompartmentLayout{Class: c.Class, Chilled: c.Chilled})
			if !classes[c.Class] {
				classes[c.Class] = true
				s.layout.Classes = append(s.layout.Classes, c.Class)
			}
			warm := slices.Contains(c.Alarms, controller.ConditionOutOfRange)
			if st := statusStates[c.Status]; st != Free || c.DoorOpen || warm {
				s.initial = append(s.initial, initialState{id, c.Cabinet, c.Compartment, st, c.DoorOpen, warm})
			}
		}
		s.layout.Sites = append(s.layout.Sites, sl)
	}
	s.layout.Depot = [2]float64{-spacing, spacing}
	streamCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	req, err := http.NewRequestWithContext(streamCtx, http.MethodGet, s.base+"/v1/events", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.client.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("event stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := apiMessage(resp)
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("event stream: %s%s", resp.Status, msg)
	}
	go s.read(resp)
	return s, nil
}

func (s *LiveSource) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s%s", path, resp.Status, apiMessage(resp))
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// apiMessage is lockerd's explanation of a refusal (its error body's
// message), as ": message", or "" when the body has none.
func apiMessage(resp *http.Response) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e) != nil || e.Message == "" {
		return ""
	}
	return ": " + e.Message
}

// read turns the event stream into observations.
func (s *LiveSource) read(resp *http.Response) {
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			event = "" // a blank line ends a message; the next names its own
			continue
		}
		if name, ok := strings.CutPrefix(line, "event: "); ok {
			event = name
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		if event == "gap" {
			// lockerd dropped observations this view was too slow for:
			// what it shows is stale until it reads the states again.
			s.resync()
			continue
		}
		var o struct {
			Site, At, Kind, Parcel, Cabinet, Detail string
			Compartment                             int
		}
		if json.Unmarshal([]byte(data), &o) != nil {
			continue
		}
		at, _ := time.Parse(time.RFC3339Nano, o.At)
		s.mu.Lock()
		s.queue = append(s.queue, world.Observation{At: at, Site: o.Site, Cabinet: o.Cabinet, Compartment: o.Compartment, Kind: o.Kind, Parcel: o.Parcel, Detail: o.Detail})
		s.mu.Unlock()
	}
	s.mu.Lock()
	if err := sc.Err(); err != nil {
		s.err = err
	}
	s.mu.Unlock()
}

// resync reads every site's compartment states again and queues them as
// "state" observations, after whatever the stream delivered before the gap.
func (s *LiveSource) resync() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var obs []world.Observation
	for _, site := range s.layout.Sites {
		var v siteView
		if err := s.get(ctx, "/v1/sites/"+site.ID, &v); err != nil {
			s.mu.Lock()
			s.err = fmt.Errorf("reading states after a gap in the stream: %w", err)
			s.mu.Unlock()
			return
		}
		for _, c := range v.Compartments {
			// Its state (door closed, temperature in range), then an open
			// door or a temperature alarm: any may have changed in the gap.
			at := world.Observation{At: time.Now(), Site: site.ID, Cabinet: c.Cabinet, Compartment: c.Compartment}
			state := at
			state.Kind, state.Detail, state.Parcel = StateObservation, c.Status, c.Parcel
			obs = append(obs, state)
			if c.DoorOpen {
				door := at
				door.Kind = "door_opened"
				obs = append(obs, door)
			}
			if slices.Contains(c.Alarms, controller.ConditionOutOfRange) {
				temp := at
				temp.Kind, temp.Detail = "alarm", controller.ConditionOutOfRange
				obs = append(obs, temp)
			}
		}
	}
	s.mu.Lock()
	s.queue = append(s.queue, obs...)
	s.gaps++
	s.mu.Unlock()
}

// Gaps is how many times the stream dropped observations and the view read
// the states again.
func (s *LiveSource) Gaps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gaps
}

// Layout is the sites as lockerd reported them.
func (s *LiveSource) Layout() world.Layout { return s.layout }

// Start is when the view connected.
func (s *LiveSource) Start() time.Time { return s.start }

// Apply sets the states lockerd reported when the view connected.
func (s *LiveSource) Apply(sc *Scene) {
	for _, st := range s.initial {
		site, comp := sc.comp(world.Observation{Site: st.site, Cabinet: st.cabinet, Compartment: st.slot})
		if comp != nil {
			sc.set(site, comp, st.state)
			comp.DoorOpen, comp.Warm = st.doorOpen, st.warm
		}
	}
}

// Advance hands over what the stream delivered; live time is real time.
func (s *LiveSource) Advance(_ time.Duration, emit func(world.Observation)) (bool, error) {
	s.mu.Lock()
	q, err := s.queue, s.err
	s.queue = nil
	s.mu.Unlock()
	for _, o := range q {
		emit(o)
	}
	return err == nil, err
}

// Close stops following the stream.
func (s *LiveSource) Close() { s.cancel() }
