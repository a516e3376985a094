package service

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lockertwin/lockertwin/allocator"
	"github.com/lockertwin/lockertwin/controller"
	"github.com/lockertwin/lockertwin/controller/store/sqlite"
	"github.com/lockertwin/lockertwin/twin/broker"
)

//go:embed openapi.json
var openapi []byte

// apiError is every error body: a stable code and a message; a refusal
// (no_capacity) also says why, as the allocator names it.
type apiError struct {
	Code    string `json:"code"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Code: code, Message: msg})
}

// writeCoreError maps the controller's typed errors to statuses: the
// caller's mistakes are 4xx, a store failure is 503, anything else 500.
func writeCoreError(w http.ResponseWriter, err error) {
	code := controller.ErrorCode(err)
	status := http.StatusInternalServerError
	switch code {
	case "unknown_parcel", "unknown_cabinet", "unknown_compartment":
		status = http.StatusNotFound
	case "duplicate_parcel", "wrong_state", "compartment_busy", "no_capacity", "duplicate_event":
		status = http.StatusConflict
	case "bad_request":
		status = http.StatusBadRequest
	case "wrong_code", "bad_qr", "code_expired":
		status = http.StatusUnauthorized
	case "locked_out":
		status = http.StatusTooManyRequests
		var lo *controller.LockoutError
		if errors.As(err, &lo) {
			w.Header().Set("Retry-After", strconv.Itoa(int(time.Until(lo.Until).Seconds())+1))
		}
	case "store_unavailable":
		status = http.StatusServiceUnavailable
	}
	if errors.Is(err, errShuttingDown) {
		status, code = http.StatusServiceUnavailable, "shutting_down"
	}
	body := apiError{Code: code, Message: err.Error()}
	if refused := (*controller.RefusedError)(nil); errors.As(err, &refused) {
		body.Reason = refused.Reason.String()
	}
	writeJSON(w, status, body)
}

// decode reads a JSON body strictly: unknown fields and trailing data are
// the caller's mistake.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "invalid JSON body: "+err.Error())
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "bad_request", "trailing data after the JSON body")
		return false
	}
	return true
}

// role is what a token may do; a higher role may do all a lower one may.
type role uint8

const (
	roleCourier role = iota + 1
	roleAdmin
)

// authorize checks a bearer token; the admin token may do what a courier may.
func (s *Service) authorize(w http.ResponseWriter, r *http.Request, need role) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeError(w, http.StatusUnauthorized, "unauthenticated", "a bearer token is required")
		return false
	}
	eq := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	var has role // the token's role, each token compared once
	switch {
	case eq(tok, s.tokens.Admin):
		has = roleAdmin
	case eq(tok, s.tokens.Courier):
		has = roleCourier
	default: // RFC 6750: an unknown token is not authenticated, not forbidden
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "unauthenticated", "the bearer token is not valid here")
		return false
	}
	if has < need { // the courier's token on an admin route
		writeError(w, http.StatusForbidden, "forbidden", "this token may not do that")
		return false
	}
	return true
}

// route is one endpoint of the API, as /v1/openapi.json documents it.
type route struct {
	method, path string
	handler      http.HandlerFunc
	// uninstrumented: not counted in the request metrics (the metrics
	// themselves, and the event stream, whose requests last for hours).
	uninstrumented bool
}

// apiRoutes are the API's endpoints; a test holds them to openapi.json.
func (s *Service) apiRoutes() []route {
	metrics := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	return []route{
		{method: "GET", path: "/healthz", handler: func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) }},
		{method: "GET", path: "/readyz", handler: s.readyz},
		{method: "GET", path: "/metrics", handler: metrics.ServeHTTP, uninstrumented: true},
		{method: "GET", path: "/v1/openapi.json", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(openapi)
		}},
		{method: "GET", path: "/v1/sites", handler: s.listSites},
		{method: "POST", path: "/v1/sites", handler: s.provisionSite},
		{method: "GET", path: "/v1/sites/{site}", handler: s.getSite},
		{method: "GET", path: "/v1/sites/{site}/exceptions", handler: s.exceptions},
		{method: "POST", path: "/v1/sites/{site}/cabinets/{cabinet}/compartments/{compartment}/in-service", handler: s.backInService},
		{method: "POST", path: "/v1/sites/{site}/parcels", handler: s.announce},
		{method: "GET", path: "/v1/sites/{site}/parcels/{parcel}", handler: s.getParcel},
		{method: "POST", path: "/v1/sites/{site}/parcels/{parcel}/deposit", handler: s.deposit},
		{method: "POST", path: "/v1/sites/{site}/parcels/{parcel}/return", handler: s.collectReturn},
		{method: "POST", path: "/v1/sites/{site}/parcels/{parcel}/qr", handler: s.issueQR},
		{method: "POST", path: "/v1/sites/{site}/parcels/{parcel}/code", handler: s.reissueCode},
		{method: "POST", path: "/v1/sites/{site}/parcels/{parcel}/cancel", handler: s.cancel},
		{method: "POST", path: "/v1/sites/{site}/parcels/{parcel}/resolve", handler: s.resolve},
		{method: "POST", path: "/v1/sites/{site}/pickup", handler: s.pickup},
		{method: "GET", path: "/v1/audit/verify", handler: s.verify},
		{method: "GET", path: "/v1/events", handler: s.events, uninstrumented: true},
	}
}

func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.apiRoutes() {
		var h http.Handler = rt.handler
		if !rt.uninstrumented {
			h = s.metrics.instrument(rt.path, rt.handler)
		}
		if rt.method == "POST" {
			h = bodyDeadline(h, s.cfg.BodyTimeout)
		}
		mux.Handle(rt.method+" "+rt.path, h)
	}
	if s.cfg.ViewDir != "" {
		mux.Handle("GET /view/", http.StripPrefix("/view/", http.FileServer(http.Dir(s.cfg.ViewDir))))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allowed := allowedMethods(mux, r); len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			verb := " are"
			if len(allowed) == 1 {
				verb = " is"
			}
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed",
				r.Method+" is not served at "+r.URL.Path+"; "+strings.Join(allowed, ", ")+verb)
			return
		}
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// bodyDeadline gives a request d to arrive whole, body included, from
// the end of its headers: a client that sends its body a byte a minute
// would otherwise hold a connection and a goroutine for as long as it
// likes (the headers have the server's ReadHeaderTimeout). It is set per
// POST route rather than as the server's ReadTimeout, which would also end
// the event stream's long GETs. A body late past d reads as an i/o timeout:
// a 400, and the connection is closed.
func bodyDeadline(h http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		d = DefaultBodyTimeout
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		h.ServeHTTP(w, r)
	})
}

// allowedMethods lists the methods some route serves at r's path (RFC 9110
// §15.5.6: a 405 names them in Allow); none when no route has the path. The
// catch-all "/" took r, so this runs only for requests no route serves.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
			allowed = append(allowed, m)
		}
	}
	return allowed
}

func (s *Service) readyz(w http.ResponseWriter, _ *http.Request) {
	s.mu.RLock()
	ready := s.ready
	s.mu.RUnlock()
	if !ready {
		writeError(w, http.StatusServiceUnavailable, "not_ready", "starting or stopping")
		return
	}
	writeJSON(w, 200, map[string]string{"status": "ready"})
}

func (s *Service) siteOf(w http.ResponseWriter, r *http.Request) (*site, bool) {
	st, ok := s.site(r.PathValue("site"))
	if !ok {
		writeError(w, http.StatusNotFound, "unknown_site", "no site "+strconv.Quote(r.PathValue("site")))
	}
	return st, ok
}

// onSite runs f on the site r names, on the site's goroutine (committed
// before it returns, as every input is), and answers a missing site or
// f's error itself; false when it did. The caller has authorized r.
func (s *Service) onSite(w http.ResponseWriter, r *http.Request, f func(st *site) error) (*site, bool) {
	st, ok := s.siteOf(w, r)
	if !ok {
		return nil, false
	}
	if err := st.call(r.Context(), func() error { return f(st) }); err != nil {
		writeCoreError(w, err)
		return nil, false
	}
	return st, true
}

func (s *Service) listSites(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, roleCourier) {
		return
	}
	var ids []string
	for _, st := range s.sortedSites() {
		ids = append(ids, st.id)
	}
	writeJSON(w, 200, map[string]any{"sites": ids})
}

// provisionSite adds a site (admin): its layout is stored, its core started,
// and the new cabinets' MQTT credentials are returned, once.
func (s *Service) provisionSite(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, roleAdmin) {
		return
	}
	var l SiteLayout
	if !decode(w, r, &l) {
		return
	}
	if _, exists := s.site(l.ID); exists {
		writeError(w, http.StatusConflict, "duplicate_site", "site "+strconv.Quote(l.ID)+" exists")
		return
	}
	fresh, err := s.provision(l)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_layout", err.Error())
		return
	}
	if err := s.recordSecrets(fresh); err != nil {
		writeCoreError(w, fmt.Errorf("%w: %v", controller.ErrLogFailed, err))
		return
	}
	if err := s.startSite(l); err != nil {
		writeError(w, http.StatusBadRequest, "bad_layout", err.Error())
		return
	}
	st, _ := s.site(l.ID)
	s.wg.Add(1)
	go st.run()
	writeJSON(w, http.StatusCreated, map[string]any{"site": l.ID, "cabinets": fresh})
}

type compartmentView struct {
	Cabinet     string   `json:"cabinet"`
	Compartment int      `json:"compartment"`
	Class       string   `json:"class"`
	Chilled     bool     `json:"chilled,omitempty"`
	Status      string   `json:"status"`
	Parcel      string   `json:"parcel,omitempty"`
	ParcelState string   `json:"parcel_state,omitempty"`
	DoorOpen    bool     `json:"door_open,omitempty"`
	Alarms      []string `json:"alarms,omitempty"`
}

// compartmentStatus is the site view's status: the inventory's, except
// that a compartment holding an expired parcel (waiting for a courier to
// take it back) says so rather than "occupied".
func compartmentStatus(inv string, parcel controller.State) string {
	switch parcel {
	case controller.StateAwaitingReturn, controller.StateReturnOpening, controller.StateReturnOpen:
		if inv == "occupied" {
			return "awaiting-return"
		}
	}
	return inv
}

type cabinetView struct {
	Cabinet string   `json:"cabinet"`
	Online  bool     `json:"online"`
	Alarms  []string `json:"alarms,omitempty"`
}

func (s *Service) getSite(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, roleCourier) {
		return
	}
	var view []compartmentView
	var cabView []cabinetView
	var classes []string
	st, ok := s.onSite(w, r, func(st *site) error {
		inv := st.core.Inventory()
		cat := inv.Catalog()
		for id := range cat.Len() {
			classes = append(classes, cat.Class(allocator.ClassID(id)).Name)
		}
		cabs := inv.Cabinets()
		for _, cb := range cabs {
			cabView = append(cabView, cabinetView{Cabinet: cb.Name, Online: inv.CabinetOnline(cb.ID), Alarms: st.core.CabinetConditions(cb.ID)})
		}
		for i := 0; i < inv.Len(); i++ {
			c, _ := inv.Compartment(allocator.CompartmentID(i))
			class := inv.Catalog().Class(c.Class)
			v := compartmentView{Cabinet: cabs[c.Cabinet].Name, Compartment: c.Slot,
				Class: class.Name, Chilled: class.Zone == allocator.Chilled, Status: inv.Status(c.ID).String()}
			v.Alarms, v.DoorOpen = st.core.Conditions(c.ID)
			if parcel, state, ok := st.core.Holding(c.ID); ok {
				v.Parcel, v.ParcelState = parcel, state.String()
				v.Status = compartmentStatus(v.Status, state)
			}
			view = append(view, v)
		}
		return nil
	})
	if !ok {
		return
	}
	writeJSON(w, 200, map[string]any{"site": st.id, "classes": classes, "cabinets": cabView, "compartments": view})
}

type announceRequest struct {
	ID            string `json:"id"`
	Class         string `json:"class,omitempty"`
	LengthMm      int    `json:"length_mm,omitempty"`
	WidthMm       int    `json:"width_mm,omitempty"`
	HeightMm      int    `json:"height_mm,omitempty"`
	Zone          string `json:"zone,omitempty"`
	Recipient     string `json:"recipient"`
	MaxTopMm      int    `json:"max_top_mm,omitempty"`
	PreferCabinet string `json:"prefer_cabinet,omitempty"`
}

type reservationView struct {
	Parcel        string `json:"parcel"`
	Cabinet       string `json:"cabinet,omitempty"`
	Compartment   int    `json:"compartment,omitempty"`
	Class         string `json:"class,omitempty"`
	ReservedUntil string `json:"reserved_until,omitempty"`
}

func (s *Service) announce(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, roleCourier) {
		return
	}
	st, ok := s.siteOf(w, r)
	if !ok {
		return
	}
	var req announceRequest
	if !decode(w, r, &req) {
		return
	}
	spec := controller.ParcelSpec{Class: req.Class, LengthMm: req.LengthMm, WidthMm: req.WidthMm, HeightMm: req.HeightMm,
		Zone: req.Zone, MaxTopMm: req.MaxTopMm, PreferCabinet: req.PreferCabinet}
	var res controller.Reservation
	err := st.call(r.Context(), func() error {
		var err error
		res, err = st.core.Announce(req.ID, spec, req.Recipient)
		return err
	})
	if err != nil {
		writeCoreError(w, err)
		return
	}
	view := reservationView{Parcel: res.Parcel, Cabinet: res.Cabinet, Compartment: res.Compartment, Class: res.Class}
	if !res.Until.IsZero() {
		view.ReservedUntil = res.Until.Format(time.RFC3339)
	}
	writeJSON(w, http.StatusCreated, view)
}

type doorView struct {
	Parcel      string `json:"parcel"`
	Cabinet     string `json:"cabinet"`
	Compartment int    `json:"compartment"`
	Command     string `json:"command,omitempty"`
}

func (s *Service) doorCall(w http.ResponseWriter, r *http.Request, op func(*controller.Core, string) (controller.DoorOpening, error)) {
	if !s.authorize(w, r, roleCourier) {
		return
	}
	var d controller.DoorOpening
	if _, ok := s.onSite(w, r, func(st *site) (err error) {
		d, err = op(st.core, r.PathValue("parcel"))
		return err
	}); !ok {
		return
	}
	writeJSON(w, http.StatusAccepted, doorView{Parcel: d.Parcel, Cabinet: d.Cabinet, Compartment: d.Compartment, Command: d.Command})
}

func (s *Service) deposit(w http.ResponseWriter, r *http.Request) {
	s.doorCall(w, r, (*controller.Core).StartDeposit)
}

func (s *Service) collectReturn(w http.ResponseWriter, r *http.Request) {
	s.doorCall(w, r, (*controller.Core).CollectReturn)
}

func (s *Service) issueQR(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, roleAdmin) {
		return
	}
	var qr string
	if _, ok := s.onSite(w, r, func(st *site) (err error) {
		qr, err = st.core.IssueQR(r.PathValue("parcel"))
		return err
	}); !ok {
		return
	}
	writeJSON(w, 200, map[string]string{"qr": qr})
}

// reissueCode sends a parcel awaiting pickup a new code, the old one
// voided (admin: customer service, for a recipient whose code never came).
func (s *Service) reissueCode(w http.ResponseWriter, r *http.Request) {
	if s.authorize(w, r, roleAdmin) {
		s.parcelAction(w, r, (*controller.Core).ReissueCode)
	}
}

// parcelView is a parcel's state after an operation on it.
type parcelView struct {
	Parcel      string `json:"parcel"`
	State       string `json:"state"`
	Cabinet     string `json:"cabinet,omitempty"`
	Compartment int    `json:"compartment,omitempty"`
}

// parcelAction runs op on one parcel on its site's goroutine (committed
// before the answer, as every input is) and answers with the parcel's
// state afterwards. The caller has authorized the request.
func (s *Service) parcelAction(w http.ResponseWriter, r *http.Request, op func(*controller.Core, string) error) {
	id := r.PathValue("parcel")
	var info controller.ParcelInfo
	if _, ok := s.onSite(w, r, func(st *site) error {
		if err := op(st.core, id); err != nil {
			return err
		}
		info, _ = st.core.Parcel(id) // known: op found it
		return nil
	}); !ok {
		return
	}
	writeJSON(w, 200, parcelView{Parcel: id, State: info.State.String(), Cabinet: info.Cabinet, Compartment: info.Compartment})
}

// cancel withdraws a parcel not yet deposited (courier): its reservation
// is released.
func (s *Service) cancel(w http.ResponseWriter, r *http.Request) {
	if s.authorize(w, r, roleCourier) {
		s.parcelAction(w, r, (*controller.Core).Cancel)
	}
}

type resolveRequest struct {
	// Resolution: "resume" (the fault is cleared; the parcel carries on) or
	// "removed" (staff took it out; the compartment is empty).
	Resolution string `json:"resolution"`
}

// resolve records an operator's decision on a parcel in exception (admin).
func (s *Service) resolve(w http.ResponseWriter, r *http.Request) {
	var req resolveRequest
	if !s.authorize(w, r, roleAdmin) || !decode(w, r, &req) {
		return
	}
	s.parcelAction(w, r, func(c *controller.Core, id string) error {
		return c.ResolveException(id, controller.Resolution(req.Resolution))
	})
}

type exceptionView struct {
	Parcel      string `json:"parcel"`
	Exception   string `json:"exception"`
	Previous    string `json:"previous_state"`
	Cabinet     string `json:"cabinet,omitempty"`
	Compartment int    `json:"compartment,omitempty"`
	Class       string `json:"class,omitempty"`
}

// exceptions lists a site's parcels in exception, by id, for an operator
// (admin).
func (s *Service) exceptions(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, roleAdmin) {
		return
	}
	out := []exceptionView{}
	st, ok := s.onSite(w, r, func(st *site) error {
		for _, p := range st.core.Exceptions() {
			out = append(out, exceptionView{Parcel: p.ID, Exception: p.Exception, Previous: p.Previous.String(),
				Cabinet: p.Cabinet, Compartment: p.Compartment, Class: p.Class})
		}
		return nil
	})
	if !ok {
		return
	}
	writeJSON(w, 200, map[string]any{"site": st.id, "parcels": out})
}

// backInService puts an out-of-service compartment (a jammed door, say)
// back in service after a repair (admin).
func (s *Service) backInService(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, roleAdmin) {
		return
	}
	cab := r.PathValue("cabinet")
	slot, err := strconv.Atoi(r.PathValue("compartment"))
	var status string
	if _, ok := s.onSite(w, r, func(st *site) error {
		if err != nil || slot < 1 {
			return fmt.Errorf("%w: compartment must be a slot number from 1, got %q", controller.ErrBadRequest, r.PathValue("compartment"))
		}
		if err := st.core.ReturnToService(cab, slot); err != nil {
			return err
		}
		inv := st.core.Inventory()
		ci := slices.IndexFunc(inv.Cabinets(), func(c allocator.Cabinet) bool { return c.Name == cab })
		id, _ := inv.CompartmentAt(allocator.CabinetID(ci), slot)
		status = inv.Status(id).String()
		return nil
	}); !ok {
		return
	}
	writeJSON(w, 200, map[string]any{"cabinet": cab, "compartment": slot, "status": status})
}

type pickupRequest struct {
	Cabinet string `json:"cabinet"`
	Code    string `json:"code,omitempty"`
	QR      string `json:"qr,omitempty"`
}

// pickup is a recipient at a cabinet: authenticated by the code itself.
func (s *Service) pickup(w http.ResponseWriter, r *http.Request) {
	st, ok := s.siteOf(w, r)
	if !ok {
		return
	}
	var req pickupRequest
	if !decode(w, r, &req) {
		return
	}
	switch {
	case req.Code == "" && req.QR == "":
		writeError(w, http.StatusBadRequest, "bad_request", "give the pickup code or the qr payload")
		return
	case req.Code != "" && req.QR != "":
		writeError(w, http.StatusBadRequest, "bad_request", "give a code or a qr, not both")
		return
	}
	var res controller.PickupResult
	err := st.call(r.Context(), func() error {
		var err error
		if req.Code != "" {
			res, err = st.core.Pickup(req.Cabinet, req.Code)
		} else {
			res, err = st.core.PickupQR(req.Cabinet, req.QR)
		}
		return err
	})
	if err != nil {
		writeCoreError(w, err)
		return
	}
	writeJSON(w, 200, doorView{Parcel: res.Parcel, Cabinet: res.Cabinet, Compartment: res.Compartment})
}

type historyEntry struct {
	Seq  uint64 `json:"seq"`
	At   string `json:"at"`
	Kind string `json:"kind"`
	Text string `json:"text,omitempty"`
}

func (s *Service) getParcel(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, roleCourier) {
		return
	}
	st, ok := s.siteOf(w, r)
	if !ok {
		return
	}
	id := r.PathValue("parcel")
	var info controller.ParcelInfo
	err := st.call(r.Context(), func() error {
		var err error
		info, err = st.core.Parcel(id)
		return err
	})
	if err != nil {
		writeCoreError(w, err)
		return
	}
	events, err := s.store.History(st.id, id)
	if err != nil {
		writeCoreError(w, fmt.Errorf("%w: %v", controller.ErrLogFailed, err))
		return
	}
	history := make([]historyEntry, 0, len(events))
	for _, e := range events {
		h := historyEntry{Seq: e.Seq, At: time.Unix(0, e.At).UTC().Format(time.RFC3339Nano), Kind: e.Kind.String()}
		if e.Kind != controller.Announced { // the recipient is personal data
			h.Text = e.Text
		}
		history = append(history, h)
	}
	if info.Cabinet == "" {
		// A finished parcel is no longer in the core: where it was picked
		// up or returned from is in its history.
		if e := lastDeparture(events); e != nil {
			if err := st.call(r.Context(), func() error {
				info.Cabinet, info.Compartment, info.Class = st.place(e)
				return nil
			}); err != nil {
				writeCoreError(w, err)
				return
			}
		}
	}
	view := map[string]any{"parcel": info.ID, "state": info.State.String(), "exception": info.Exception, "history": history}
	if info.Cabinet != "" { // none: refused, cancelled, or its reservation lapsed
		view["cabinet"], view["compartment"], view["class"] = info.Cabinet, info.Compartment, info.Class
	}
	if !info.Deadline.IsZero() {
		view["deadline"] = info.Deadline.Format(time.RFC3339)
	}
	if !info.CodeLockedUntil.IsZero() {
		view["code_locked_until"] = info.CodeLockedUntil.Format(time.RFC3339)
	}
	if info.TempExcursion {
		view["temp_excursion"] = true
	}
	writeJSON(w, 200, view)
}

func (s *Service) verify(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, roleAdmin) {
		return
	}
	type result struct {
		Site    string `json:"site"`
		Entries int    `json:"entries"`
		OK      bool   `json:"ok"`
		Error   string `json:"error,omitempty"`
	}
	var out []result
	allOK := true
	for _, st := range s.sortedSites() {
		n, err := s.store.Verify(st.id)
		res := result{Site: st.id, Entries: n, OK: err == nil}
		if err != nil {
			res.Error, allOK = err.Error(), false
		}
		out = append(out, res)
	}
	status := 200
	if !allOK {
		status = http.StatusConflict
	}
	writeJSON(w, status, map[string]any{"ok": allOK, "sites": out})
}

// ---- observations (Server-Sent Events) -------------------------------------

// Observation is what live views see of a domain event: no codes, digests
// or recipients.
type Observation struct {
	Site        string `json:"site"`
	Seq         uint64 `json:"seq"`
	At          string `json:"at"`
	Kind        string `json:"kind"`
	Parcel      string `json:"parcel,omitempty"`
	Cabinet     string `json:"cabinet,omitempty"`
	Compartment int    `json:"compartment,omitempty"`
	Detail      string `json:"detail,omitempty"`
}

// lastDeparture is the event in which a parcel left its compartment for
// good (picked up or returned), or nil.
func lastDeparture(events []controller.Event) *controller.Event {
	for i := len(events) - 1; i >= 0; i-- {
		if k := events[i].Kind; k == controller.PickedUp || k == controller.Returned {
			return &events[i]
		}
	}
	return nil
}

// place names the cabinet and compartment an event refers to, and the
// compartment's class ("" and 0 for those it names none of). On the
// site's goroutine: the inventory is the core's.
func (st *site) place(e *controller.Event) (cabinet string, slot int, class string) {
	inv := st.core.Inventory()
	if e.Cabinet >= 0 && int(e.Cabinet) < len(inv.Cabinets()) {
		cabinet = inv.Cabinets()[e.Cabinet].Name
	}
	if c, ok := inv.Compartment(allocator.CompartmentID(e.Compartment)); ok && e.Compartment >= 0 {
		slot, class = c.Slot, inv.Catalog().Class(c.Class).Name
	}
	return cabinet, slot, class
}

func (st *site) observation(e *controller.Event) Observation {
	o := Observation{Site: st.id, Seq: e.Seq, At: time.Unix(0, e.At).UTC().Format(time.RFC3339Nano), Kind: e.Kind.String(), Parcel: e.Parcel}
	o.Cabinet, o.Compartment, _ = st.place(e)
	switch e.Kind {
	case controller.AlarmRaised, controller.AlarmCleared, controller.ExceptionRaised, controller.Refused, controller.OutOfService, controller.CabinetStatus, controller.Notified:
		o.Detail = e.Text
	}
	return o
}

// hub fans observations out to SSE subscribers; a slow subscriber loses
// observations rather than slowing a site, and is told how many (gap). A
// subscriber may take only some kinds; an observation nobody takes is never
// built.
type hub struct {
	mu     sync.Mutex
	subs   map[chan Observation]*subscriber
	closed bool
	missed int64 // observations dropped, all subscribers
}

type subscriber struct {
	missed int64
	kinds  uint64 // bit k set: takes controller.Kind k; none set: every kind
}

func kindBit(k controller.Kind) uint64 { return 1 << (k & 63) }

func newHub() *hub { return &hub{subs: map[chan Observation]*subscriber{}} }

func (h *hub) subscribe(kinds ...controller.Kind) chan Observation {
	return h.subscribeN(256, kinds...)
}

// subscribeN subscribes with a buffer of the given size to the given kinds
// (none: all).
func (h *hub) subscribeN(buffer int, kinds ...controller.Kind) chan Observation {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan Observation, buffer)
	if h.closed {
		close(ch)
		return ch
	}
	sub := &subscriber{}
	for _, k := range kinds {
		sub.kinds |= kindBit(k)
	}
	h.subs[ch] = sub
	return ch
}

func (h *hub) unsubscribe(ch chan Observation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

// publish offers an observation of kind k to the subscribers that take
// it; build makes it, once, and only if one does.
func (h *hub) publish(k controller.Kind, build func() Observation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var o Observation
	built := false
	for ch, sub := range h.subs {
		if sub.kinds != 0 && sub.kinds&kindBit(k) == 0 {
			continue
		}
		if !built {
			o, built = build(), true
		}
		select {
		case ch <- o:
		default:
			sub.missed++
			h.missed++
		}
	}
}

// takeMissed returns how many observations the subscriber missed since it
// last asked.
func (h *hub) takeMissed(ch chan Observation) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub := h.subs[ch]
	if sub == nil {
		return 0
	}
	n := sub.missed
	sub.missed = 0
	return n
}

// missedTotal is every subscriber's missed observations (a metric).
func (h *hub) missedTotal() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.missed
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		close(ch)
	}
	h.subs = map[chan Observation]*subscriber{}
}

func (s *Service) events(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, roleCourier) {
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "internal", "streaming unsupported")
		return
	}
	var kinds []controller.Kind
	if q := r.URL.Query().Get("kinds"); q != "" {
		for _, name := range strings.Split(q, ",") {
			k, ok := controller.ParseKind(strings.TrimSpace(name))
			if !ok {
				writeError(w, http.StatusBadRequest, "bad_request", "unknown observation kind "+strconv.Quote(name))
				return
			}
			kinds = append(kinds, k)
		}
	}
	ch := s.hub.subscribe(kinds...)
	defer s.hub.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(200)
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	stream(w, flusher.Flush, ch, func() int64 { return s.hub.takeMissed(ch) }, keepalive.C, r.Context().Done())
}

// stream writes observations as Server-Sent Events until ch closes or done.
// When a subscriber has fallen behind and observations were dropped, a
// "gap" event with the count follows the last buffered observation: what a
// view saw is then stale, and it should read the sites' states again.
func stream(w io.Writer, flush func(), ch <-chan Observation, takeMissed func() int64, keepalive <-chan time.Time, done <-chan struct{}) {
	fmt.Fprint(w, ": lockerd observations\n\n")
	flush()
	for {
		select {
		case o, open := <-ch:
			if !open {
				return
			}
			b, _ := json.Marshal(o)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", o.Kind, b)
			if len(ch) == 0 {
				if n := takeMissed(); n > 0 {
					fmt.Fprintf(w, "event: gap\ndata: {\"missed\":%d}\n\n", n)
				}
			}
			flush()
		case <-keepalive:
			fmt.Fprint(w, ": keepalive\n\n")
			flush()
		case <-done:
			return
		}
	}
}

// ---- metrics ---------------------------------------------------------------

type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	doorRTT      prometheus.Histogram
	alarms       *prometheus.CounterVec
	mqttRejected prometheus.Counter
	// eventsDropped counts cabinet events dropped as already handled: a
	// copy, or an event of a cabinet behind its own sequence.
	eventsDropped prometheus.Counter
	issued        map[string]time.Time
	mu            sync.Mutex
}

func newMetrics(s *Service) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), issued: map[string]time.Time{}}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lockerd_http_requests_total", Help: "HTTP requests by route and status."}, []string{"route", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lockerd_http_request_seconds", Help: "HTTP request latency by route.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"route"})
	m.doorRTT = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lockerd_door_round_trip_seconds", Help: "From a door command to the cabinet's door_opened.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)})
	m.alarms = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lockerd_alarms_total", Help: "Alarms by kind."}, []string{"kind"})
	m.mqttRejected = prometheus.NewCounter(prometheus.CounterOpts{Name: "lockerd_mqtt_messages_rejected_total", Help: "Cabinet messages refused as malformed, misrouted or invalid."})
	m.eventsDropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "lockerd_cabinet_events_dropped_total",
		Help: "Cabinet events dropped as already handled: copies (redelivered), or events of a cabinet behind its own sequence (restarted without its memory)."})
	parcels := &siteGauge{s: s, desc: prometheus.NewDesc("lockerd_parcels", "Active parcels by site and state.", []string{"site", "state"}, nil),
		read: func(core *controller.Core) map[string]int {
			counts := map[string]int{}
			for state, n := range core.ParcelsByState() {
				counts[state.String()] = n
			}
			return counts
		}}
	active := &siteGauge{s: s, desc: prometheus.NewDesc("lockerd_alarms_active",
		"Compartments (and cabinets as a whole) in an alarm now, by site and kind: door_left_open until the door closes, temp_out_of_range until back in range.",
		[]string{"site", "kind"}, nil),
		read: func(core *controller.Core) map[string]int { return core.ConditionCounts() }}
	connected := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lockerd_mqtt_clients_connected", Help: "Connected MQTT clients (cabinets)."}, func() float64 {
		if s.broker == nil {
			return 0
		}
		return float64(s.broker.Stats().ClientsConnected)
	})
	brokerStats := func() broker.Stats {
		if s.broker == nil {
			return broker.Stats{}
		}
		return s.broker.Stats()
	}
	storeStats := func() sqlite.Stats {
		if s.store == nil {
			return sqlite.Stats{}
		}
		return s.store.Stats()
	}
	brokerCounter := func(name, help string, get func(broker.Stats) int64) prometheus.Collector {
		return statCounter(name, help, brokerStats, get)
	}
	storeCounter := func(name, help string, get func(sqlite.Stats) int64) prometheus.Collector {
		return statCounter(name, help, storeStats, get)
	}
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lockerd_sse_observations_missed_total",
			Help: "Observations dropped for event-stream subscribers that fell behind (each was sent a gap event)."},
			func() float64 { return float64(s.hub.missedTotal()) }),
		brokerCounter("lockerd_mqtt_messages_received_total", "MQTT messages the broker received.", func(b broker.Stats) int64 { return b.MessagesReceived }),
		brokerCounter("lockerd_mqtt_messages_sent_total", "MQTT messages the broker sent.", func(b broker.Stats) int64 { return b.MessagesSent }),
		brokerCounter("lockerd_mqtt_messages_dropped_total", "MQTT messages dropped because a client's queue was full.", func(b broker.Stats) int64 { return b.MessagesDropped }),
		brokerCounter("lockerd_mqtt_denied_total", "Connections, publishes and subscriptions the broker's ACL refused.", func(b broker.Stats) int64 { return b.Denied }),
		brokerCounter("lockerd_mqtt_wills_total", "Last wills of cabinets that vanished.", func(b broker.Stats) int64 { return b.Wills }),
		brokerCounter("lockerd_mqtt_stale_wills_total", "Wills of sessions already taken over, not delivered.", func(b broker.Stats) int64 { return b.StaleWills }),
		storeCounter("lockerd_store_transactions_total", "SQLite transactions committed (each holds one or more sites' batches).", func(st sqlite.Stats) int64 { return st.Transactions }),
		storeCounter("lockerd_store_batches_total", "Sites' batches of events committed.", func(st sqlite.Stats) int64 { return st.Batches }),
		storeCounter("lockerd_store_events_total", "Events committed to the audit log.", func(st sqlite.Stats) int64 { return st.Events }),
		storeCounter("lockerd_store_checkpoints_total", "WAL checkpoints run beside the commits (-sync normal).", func(st sqlite.Stats) int64 { return st.Checkpoints }),
		storeCounter("lockerd_store_wal_restarts_total", "Times the WAL was rewound after growing past its limit (-sync normal).", func(st sqlite.Stats) int64 { return st.Restarts }),
		storeCounter("lockerd_store_checkpoint_errors_total", "Checkpoints that failed; the next one retries (-sync normal).", func(st sqlite.Stats) int64 { return st.CheckpointErrors }),
	)
	if wh, ok := s.cfg.Notifier.(deliveryCounter); ok {
		m.reg.MustRegister(
			statCounter("lockerd_webhook_sent_total", "Notifications the webhook delivered.", wh.Counts, func(c WebhookCounts) int64 { return c.Sent }),
			statCounter("lockerd_webhook_failed_total", "Notifications the webhook gave up on after its retries (logged with the parcel).", wh.Counts, func(c WebhookCounts) int64 { return c.Failed }),
			statCounter("lockerd_webhook_dropped_total", "Notifications dropped because the webhook's queue was full.", wh.Counts, func(c WebhookCounts) int64 { return c.Dropped }),
		)
	}
	m.reg.MustRegister(m.requests, m.latency, m.doorRTT, m.alarms, m.mqttRejected, m.eventsDropped, parcels, active, connected,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// deliveryCounter is a Notifier that counts its deliveries (Webhook).
type deliveryCounter interface {
	Counts() WebhookCounts
}

// statCounter exports one field of a component's counters.
func statCounter[T any](name, help string, read func() T, get func(T) int64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(get(read())) })
}

// siteGauge asks each site's goroutine for its counts at scrape time
// (read runs there): a gauge labelled by site and the counts' keys.
type siteGauge struct {
	s    *Service
	desc *prometheus.Desc
	read func(*controller.Core) map[string]int
}

func (g *siteGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *siteGauge) Collect(ch chan<- prometheus.Metric) {
	for _, st := range g.s.sortedSites() {
		var counts map[string]int
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := st.call(ctx, func() error { counts = g.read(st.core); return nil })
		cancel()
		if err != nil {
			continue
		}
		for key, n := range counts {
			ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(n), st.id, key)
		}
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }

func (m *metrics) instrument(route string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		h(rec, r)
		m.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// observe updates metrics from a committed event.
func (m *metrics) observe(_ *site, e *controller.Event) {
	switch e.Kind {
	case controller.AlarmRaised:
		m.alarms.WithLabelValues(e.Text).Inc()
	case controller.DoorCommanded:
		m.mu.Lock()
		m.issued[e.Command] = time.Unix(0, e.At)
		m.mu.Unlock()
	case controller.DoorOpened, controller.CommandFailed:
		m.mu.Lock()
		if at, ok := m.issued[e.Command]; ok {
			if e.Kind == controller.DoorOpened {
				m.doorRTT.Observe(time.Unix(0, e.At).Sub(at).Seconds())
			}
			delete(m.issued, e.Command)
		}
		m.mu.Unlock()
	}
}
