// Package atlastest runs an in-process stand-in for the RIPE Atlas REST API
// v2: measurement creation (with the API's field checks and probe
// selection), status transitions, results as one JSON array or one result
// per line, probe metadata in pages, stopping, and the API's failure modes
// (401/403, 429 with Retry-After, 5xx, malformed JSON) on demand. Results
// come from a Population of fake probes in the documented result format.
//
// It is for tests and benchmarks only: it listens on loopback and never
// contacts anything.
package atlastest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Server is the fake API. Set the exported fields before Start.
type Server struct {
	// Population is the world the probes measure; nil = NewPopulation(60).
	Population *Population
	// Key is the API key the server accepts; calls that need a key and
	// carry another (or none) get 403. "" accepts any key.
	Key string
	// Polls is how many status reads a created measurement answers before
	// it is Stopped (Specified, then Ongoing); default 2.
	Polls int
	// PageSize is the largest probes page the server sends (default 500).
	PageSize int
	// Names resolves host-name targets (the address of the measurement's
	// family is used); other names are refused like the API refuses a
	// target it cannot resolve.
	Names map[string][]netip.Addr
	// NoSuitableProbes makes every created measurement end in "No suitable
	// probes" with no results, as when a selection matches no connected probe.
	NoSuitableProbes bool
	// OnRequest, when set, is called with each request as it arrives,
	// before it is answered (from the request's goroutine): a test acts on
	// that event (interrupts a run once it waits for its measurements)
	// instead of polling Requests.
	OnRequest func(Request)

	srv *httptest.Server
	// URL is the base URL to give atlas.Client.BaseURL.
	URL string

	mu       sync.Mutex
	requests []Request
	faults   []*Fault
	msms     map[int]*msm
	nextID   int
}

// Request is one request the server received.
type Request struct {
	Method        string
	Path          string
	Query         url.Values
	Body          []byte
	Authorization string
}

// Fault makes matching requests fail. Path matches exactly or, ending in
// "*", as a prefix; Method "" matches any method.
type Fault struct {
	Method string
	Path   string
	Skip   int // let this many matching requests through first
	Times  int // then fail this many (0 = every one)

	Status     int
	RetryAfter string // Retry-After header value
	Body       string // reply body; "" = the API's JSON error object with Detail
	Detail     string
	// Truncate, on a results path, sends the first Truncate bytes of the
	// real reply and then cuts the connection.
	Truncate int
	// Hang, with Truncate, keeps the connection open and silent after the
	// first Truncate bytes until the client gives up.
	Hang bool

	hits int
}

type msm struct {
	id      int
	def     Definition
	probes  []ProbeSpec
	polls   int
	stopped bool // stopped by DELETE
	noProbe bool
	public  bool
	results [][]byte // fixed results (AddMeasurement); nil = generated
}

// Start serves the fake API on loopback until the test ends.
func (s *Server) Start(t testing.TB) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("atlastest: listen: %v", err)
	}
	s.Serve(l)
	t.Cleanup(s.Close)
	return s
}

// Serve serves the fake API on l (a loopback listener) in the background
// until Close.
func (s *Server) Serve(l net.Listener) {
	s.mu.Lock()
	s.init()
	s.mu.Unlock()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v2/measurements/{$}", s.create)
	mux.HandleFunc("GET /api/v2/measurements/{id}/{$}", s.status)
	mux.HandleFunc("DELETE /api/v2/measurements/{id}/{$}", s.stop)
	mux.HandleFunc("GET /api/v2/measurements/{id}/results/{$}", s.results)
	mux.HandleFunc("GET /api/v2/probes/{$}", s.probes)
	s.srv = httptest.NewUnstartedServer(s.middleware(mux))
	s.srv.Listener = l
	s.srv.Start()
	s.URL = s.srv.URL
}

// Close stops serving.
func (s *Server) Close() { s.srv.Close() }

// init sets the defaults; s.mu is held.
func (s *Server) init() {
	if s.Population == nil {
		s.Population = NewPopulation(60)
	}
	if s.Polls == 0 {
		s.Polls = 2
	}
	if s.PageSize == 0 {
		s.PageSize = 500
	}
	if s.msms == nil {
		s.msms = map[int]*msm{}
	}
	if s.nextID == 0 {
		s.nextID = 70000001
	}
}

// Inject adds a fault; faults are tried in the order added.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// AddMeasurement makes an existing, finished, public measurement with the
// given results (raw JSON objects) and returns its id.
func (s *Server) AddMeasurement(def Definition, results [][]byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	id := s.nextID
	s.nextID++
	if results == nil {
		results = [][]byte{}
	}
	s.msms[id] = &msm{id: id, def: def, polls: 1 << 30, public: true, results: results}
	return id
}

// AddFinished makes an existing, finished, public measurement of def run
// by the given probes (results generated from the population) and returns
// its id.
func (s *Server) AddFinished(def Definition, probes []ProbeSpec) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	id := s.nextID
	s.nextID++
	s.msms[id] = &msm{id: id, def: def, probes: probes, polls: 1 << 30, public: true}
	return id
}

// Created returns the probe ids given to measurement id (nil if unknown).
func (s *Server) Created(id int) (Definition, []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msms[id]
	if m == nil {
		return Definition{}, nil
	}
	ids := make([]int, len(m.probes))
	for i, p := range m.probes {
		ids[i] = p.ID
	}
	return m.def, ids
}

// Stopped reports whether measurement id was stopped by a DELETE.
func (s *Server) Stopped(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msms[id]
	return m != nil && m.stopped
}

// apiError writes the API's JSON error object.
func apiError(w http.ResponseWriter, status int, detail string, fields ...[2]string) {
	errs := make([]map[string]any, 0, len(fields))
	for _, f := range fields {
		errs = append(errs, map[string]any{"source": map[string]string{"pointer": f[0]}, "detail": f[1]})
	}
	body := map[string]any{"error": map[string]any{
		"status": status, "code": 100 + status%100, "title": http.StatusText(status), "detail": detail, "errors": errs,
	}}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		req := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body, Authorization: r.Header.Get("Authorization")}
		if s.OnRequest != nil {
			s.OnRequest(req)
		}
		s.mu.Lock()
		s.requests = append(s.requests, req)
		var fault *Fault
		for _, f := range s.faults {
			if f.matches(r) {
				f.hits++
				if f.hits > f.Skip && (f.Times == 0 || f.hits <= f.Skip+f.Times) {
					fault = f
					break
				}
			}
		}
		s.mu.Unlock()
		if fault != nil && fault.Truncate == 0 {
			if fault.RetryAfter != "" {
				w.Header().Set("Retry-After", fault.RetryAfter)
			}
			if fault.Body != "" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(fault.Status)
				io.WriteString(w, fault.Body)
				return
			}
			apiError(w, fault.Status, fault.Detail)
			return
		}
		// Keys: a wrong key is refused everywhere; a missing one only
		// where the API needs one.
		auth := r.Header.Get("Authorization")
		if s.Key != "" && auth != "" && auth != "Key "+s.Key {
			apiError(w, http.StatusForbidden, "The provided API key is not valid.")
			return
		}
		if (r.Method == http.MethodPost || r.Method == http.MethodDelete) && auth == "" {
			apiError(w, http.StatusForbidden, "Authentication credentials were not provided.")
			return
		}
		if fault != nil {
			tw := &truncWriter{ResponseWriter: w, left: fault.Truncate}
			if fault.Hang {
				tw.hang = r.Context().Done()
			}
			next.ServeHTTP(tw, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *Fault) matches(r *http.Request) bool {
	if f.Method != "" && f.Method != r.Method {
		return false
	}
	if p, ok := strings.CutSuffix(f.Path, "*"); ok {
		return strings.HasPrefix(r.URL.Path, p)
	}
	return f.Path == r.URL.Path
}

// truncWriter passes the first left bytes, then breaks the connection.
type truncWriter struct {
	http.ResponseWriter
	left int
	hang <-chan struct{} // wait for this before breaking the connection
}

func (t *truncWriter) Write(b []byte) (int, error) {
	if t.left <= 0 {
		panic(http.ErrAbortHandler)
	}
	if len(b) > t.left {
		b = b[:t.left]
	}
	n, err := t.ResponseWriter.Write(b)
	t.left -= n
	if t.left <= 0 {
		if fl, ok := t.ResponseWriter.(http.Flusher); ok {
			fl.Flush()
		}
		if t.hang != nil {
			<-t.hang
		}
		panic(http.ErrAbortHandler)
	}
	return n, err
}

var countryCode = regexp.MustCompile(`^[A-Z]{2}$`)

// create checks a creation request field by field, as the API does, and
// allocates the same probes to every definition of the request.
func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Definitions []map[string]any `json:"definitions"`
		Probes      []map[string]any `json:"probes"`
		IsOneoff    *bool            `json:"is_oneoff"`
	}
	body, _ := io.ReadAll(r.Body)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "JSON parse error - "+err.Error())
		return
	}
	var bad [][2]string
	if len(req.Definitions) == 0 {
		bad = append(bad, [2]string{"/definitions", "This field is required."})
	}
	if len(req.Probes) == 0 {
		bad = append(bad, [2]string{"/probes", "This field is required."})
	}
	defs := make([]Definition, len(req.Definitions))
	for i, d := range req.Definitions {
		p := fmt.Sprintf("/definitions/%d/", i)
		def, errs := s.checkDefinition(p, d)
		bad = append(bad, errs...)
		defs[i] = def
	}
	if len(bad) > 0 {
		apiError(w, http.StatusBadRequest, "There were problems with your request", bad...)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var chosen []ProbeSpec
	have := map[int]bool{}
	for i, sel := range req.Probes {
		ps, err := s.selectProbes(sel)
		if err != "" {
			bad = append(bad, [2]string{fmt.Sprintf("/probes/%d/value", i), err})
			continue
		}
		for _, p := range ps {
			if !have[p.ID] {
				have[p.ID] = true
				chosen = append(chosen, p)
			}
		}
	}
	if len(bad) > 0 {
		apiError(w, http.StatusBadRequest, "There were problems with your request", bad...)
		return
	}
	ids := make([]int, len(defs))
	for i, def := range defs {
		m := &msm{id: s.nextID, def: def, probes: chosen, public: true, noProbe: s.NoSuitableProbes || len(chosen) == 0}
		s.msms[m.id] = m
		ids[i] = m.id
		s.nextID++
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"measurements": ids})
}

func (s *Server) checkDefinition(p string, d map[string]any) (Definition, [][2]string) {
	var bad [][2]string
	str := func(k string) string { v, _ := d[k].(string); return v }
	num := func(k string) (int, bool) {
		n, ok := d[k].(json.Number)
		if !ok {
			return 0, false
		}
		i, err := strconv.Atoi(n.String())
		return i, err == nil
	}
	def := Definition{Type: str("type"), QName: str("query_argument"), Protocol: str("protocol")}
	af, ok := num("af")
	if !ok || (af != 4 && af != 6) {
		bad = append(bad, [2]string{p + "af", "Must be 4 or 6."})
	}
	def.AF = af
	if str("description") == "" {
		bad = append(bad, [2]string{p + "description", "This field is required."})
	}
	target := str("target")
	if target == "" {
		bad = append(bad, [2]string{p + "target", "This field is required."})
	} else if a, err := netip.ParseAddr(target); err == nil {
		if (af == 4) != a.Is4() {
			bad = append(bad, [2]string{p + "target", "The target address does not match the address family."})
		}
		def.Target = a.String()
	} else if i := slices.IndexFunc(s.Names[target], func(a netip.Addr) bool { return (af == 4) == a.Is4() }); i >= 0 {
		def.Target = s.Names[target][i].String()
	} else {
		bad = append(bad, [2]string{p + "target", fmt.Sprintf("Could not resolve %s for address family %d.", target, af)})
	}
	switch def.Type {
	case "dns":
		if def.QName == "" {
			bad = append(bad, [2]string{p + "query_argument", "This field is required."})
		}
		if qc := str("query_class"); qc != "IN" && qc != "CHAOS" {
			bad = append(bad, [2]string{p + "query_class", "Must be IN or CHAOS."})
		}
		if str("query_type") == "" {
			bad = append(bad, [2]string{p + "query_type", "This field is required."})
		}
		if def.Protocol != "UDP" && def.Protocol != "TCP" {
			bad = append(bad, [2]string{p + "protocol", "Must be UDP or TCP."})
		}
		if v, _ := d["use_probe_resolver"].(bool); v {
			bad = append(bad, [2]string{p + "use_probe_resolver", "A target cannot be combined with the probe's resolver."})
		}
	case "traceroute":
		if def.Protocol != "UDP" && def.Protocol != "ICMP" && def.Protocol != "TCP" {
			bad = append(bad, [2]string{p + "protocol", "Must be ICMP, UDP or TCP."})
		}
		if pa, ok := num("paris"); !ok || pa < 0 || pa > 64 {
			bad = append(bad, [2]string{p + "paris", "Must be between 0 and 64."})
		}
		if port, ok := num("port"); ok {
			if port < 1 || port > 65535 {
				bad = append(bad, [2]string{p + "port", "Must be between 1 and 65535."})
			}
			def.Port = port
		}
	default:
		bad = append(bad, [2]string{p + "type", "Must be one of ping, traceroute, dns, sslcert, http, ntp."})
	}
	return def, bad
}

// selectProbes resolves one probe selection against the population; the
// string is the API's complaint about the value.
func (s *Server) selectProbes(sel map[string]any) ([]ProbeSpec, string) {
	n, err := strconv.Atoi(fmt.Sprint(sel["requested"]))
	if err != nil || n < 1 {
		return nil, "requested must be a positive number."
	}
	value := fmt.Sprint(sel["value"])
	var match func(ProbeSpec) bool
	switch sel["type"] {
	case "area":
		if value != "WW" && !slices.Contains(areas, value) {
			return nil, fmt.Sprintf("%q is not a valid area.", value)
		}
		match = func(p ProbeSpec) bool { return value == "WW" || p.Area == value }
	case "country":
		if !countryCode.MatchString(value) {
			return nil, fmt.Sprintf("%q is not a valid country code.", value)
		}
		match = func(p ProbeSpec) bool { return p.Country == value }
	case "asn":
		a, err := strconv.ParseUint(value, 10, 32)
		if err != nil {
			return nil, fmt.Sprintf("%q is not a valid ASN.", value)
		}
		match = func(p ProbeSpec) bool { return p.ASNv4 == uint32(a) || p.ASNv6 == uint32(a) }
	case "prefix":
		pf, err := netip.ParsePrefix(value)
		if err != nil {
			return nil, fmt.Sprintf("%q is not a valid prefix.", value)
		}
		match = func(p ProbeSpec) bool { return pf.Contains(p.Addr4) || pf.Contains(p.Addr6) }
	case "probes":
		want := map[int]bool{}
		for _, f := range strings.Split(value, ",") {
			id, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return nil, fmt.Sprintf("%q is not a list of probe ids.", value)
			}
			want[id] = true
		}
		n = len(want)
		match = func(p ProbeSpec) bool { return want[p.ID] }
	case "msm":
		id, err := strconv.Atoi(value)
		m := s.msms[id]
		if err != nil || m == nil {
			return nil, fmt.Sprintf("Measurement %s does not exist.", value)
		}
		return slices.Clone(m.probes[:min(n, len(m.probes))]), ""
	default:
		return nil, fmt.Sprintf("Unknown probe selection type %v.", sel["type"])
	}
	var out []ProbeSpec
	for _, p := range s.Population.Probes {
		if len(out) == n {
			break
		}
		if match(p) {
			out = append(out, p)
		}
	}
	return out, ""
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *msm {
	id, err := strconv.Atoi(r.PathValue("id"))
	m := s.msms[id]
	if err != nil || m == nil {
		apiError(w, http.StatusNotFound, "Not found.")
		return nil
	}
	return m
}

// statusOf is the state a status read sees (before it counts as a poll).
func (s *Server) statusOf(m *msm) (int, string) {
	switch {
	case m.stopped:
		return 4, "Stopped"
	case m.noProbe && m.polls == 0:
		return 0, "Specified"
	case m.noProbe:
		return 6, "No suitable probes"
	case m.polls >= s.Polls:
		return 4, "Stopped"
	case m.polls == 0:
		return 0, "Specified"
	}
	return 2, "Ongoing"
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	m := s.lookup(w, r)
	if m == nil {
		s.mu.Unlock()
		return
	}
	id, name := s.statusOf(m)
	m.polls++
	reported := len(m.probes)
	if id < 4 {
		reported = len(m.probes) * (m.polls - 1) / s.Polls
	}
	body := map[string]any{
		"id": m.id, "type": m.def.Type, "af": m.def.AF, "target": m.def.Target, "is_oneoff": true, "is_public": m.public,
		"status":           map[string]any{"id": id, "name": name, "when": s.Population.Start},
		"probes_requested": len(m.probes), "probes_scheduled": len(m.probes), "participant_count": reported,
		"result": fmt.Sprintf("%s/api/v2/measurements/%d/results/", s.URL, m.id),
	}
	if m.noProbe {
		body["probes_scheduled"], body["participant_count"] = 0, 0
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.lookup(w, r)
	if m == nil {
		return
	}
	m.stopped = true
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) results(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	m := s.lookup(w, r)
	if m == nil {
		s.mu.Unlock()
		return
	}
	if m.results == nil && !m.noProbe {
		m.results = s.Population.Results(m.id, m.def, m.probes)
	}
	results := m.results
	s.mu.Unlock()
	q := r.URL.Query()
	start, _ := strconv.ParseInt(q.Get("start"), 10, 64)
	stop, err := strconv.ParseInt(q.Get("stop"), 10, 64)
	if err != nil {
		stop = 1 << 62
	}
	window := q.Has("start") || q.Has("stop")
	txt := false
	switch q.Get("format") {
	case "", "json":
	case "txt":
		txt = true
	default:
		apiError(w, http.StatusBadRequest, "Unknown format "+q.Get("format"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if !txt {
		io.WriteString(w, "[")
	}
	first := true
	for _, res := range results {
		var ts struct {
			Timestamp int64 `json:"timestamp"`
		}
		if window && json.Unmarshal(res, &ts) == nil && (ts.Timestamp < start || ts.Timestamp > stop) {
			continue
		}
		if !txt && !first {
			io.WriteString(w, ",")
		}
		first = false
		w.Write(res)
		if txt {
			io.WriteString(w, "\n")
		}
	}
	if !txt {
		io.WriteString(w, "]")
	}
}

func (s *Server) probes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var want []int
	if v := q.Get("id__in"); v != "" {
		for _, f := range strings.Split(v, ",") {
			id, err := strconv.Atoi(f)
			if err != nil {
				apiError(w, http.StatusBadRequest, "Invalid id__in.")
				return
			}
			want = append(want, id)
		}
	}
	size := s.PageSize
	if ps, err := strconv.Atoi(q.Get("page_size")); err == nil && ps > 0 && ps < size {
		size = ps
	}
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	var all []ProbeSpec
	for _, p := range s.Population.Probes {
		if want == nil || slices.Contains(want, p.ID) {
			all = append(all, p)
		}
	}
	from := min((page-1)*size, len(all))
	to := min(from+size, len(all))
	results := make([]map[string]any, 0, to-from)
	for _, p := range all[from:to] {
		results = append(results, probeJSON(p))
	}
	var next any
	if to < len(all) {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("page", strconv.Itoa(page+1))
		next = s.URL + "/api/v2/probes/?" + nq.Encode()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"count": len(all), "next": next, "previous": nil, "results": results})
}

// probeJSON is a probe as /api/v2/probes/ shows it.
func probeJSON(p ProbeSpec) map[string]any {
	str := func(a netip.Addr) any {
		if !a.IsValid() {
			return nil
		}
		return a.String()
	}
	pfx := func(a netip.Addr, bits int) any {
		if !a.IsValid() {
			return nil
		}
		return netip.PrefixFrom(a, bits).Masked().String()
	}
	asn := func(a uint32) any {
		if a == 0 {
			return nil
		}
		return a
	}
	tags := []map[string]string{}
	for _, t := range p.Tags {
		tags = append(tags, map[string]string{"name": t, "slug": t})
	}
	return map[string]any{
		"tags": tags,
		"id":   p.ID, "asn_v4": asn(p.ASNv4), "asn_v6": asn(p.ASNv6), "country_code": p.Country,
		"address_v4": str(p.Addr4), "address_v6": str(p.Addr6),
		"prefix_v4": pfx(p.Addr4, 28), "prefix_v6": pfx(p.Addr6, 48),
		"is_anchor": p.ID%100 == 0, "is_public": true,
		"geometry": map[string]any{"type": "Point", "coordinates": []float64{p.Lon, p.Lat}},
		"status":   map[string]any{"id": 1, "name": "Connected"},
	}
}
