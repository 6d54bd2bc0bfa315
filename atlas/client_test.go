package atlas_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycheck/anycheck/atlas"
	"github.com/anycheck/anycheck/atlas/atlastest"
)

const testKey = "7e5b1d2c-0000-4000-8000-5ec2e7ac0de5"

func newClient(srv *atlastest.Server) *atlas.Client {
	return &atlas.Client{BaseURL: srv.URL, Key: testKey, RetryBase: time.Millisecond}
}

func pair(target string, af int) []atlas.Definition {
	return []atlas.Definition{
		atlas.DNSDefinition{AF: af, Target: target, Description: "dns", QueryClass: "CHAOS", QueryType: "TXT",
			QueryArgument: "hostname.bind", Protocol: "UDP", SetNSIDBit: true, IncludeABuf: true},
		atlas.TracerouteDefinition{AF: af, Target: target, Description: "traceroute", Protocol: "UDP", Paris: 16},
	}
}

func TestCreateSendsBodyAndKeyAndSharesProbes(t *testing.T) {
	srv := (&atlastest.Server{Key: testKey}).Start(t)
	c := newClient(srv)
	ids, err := c.Create(context.Background(), atlas.CreateRequest{
		Definitions: pair("192.0.2.53", 4),
		Probes:      []atlas.ProbeSelection{{Requested: 10, Type: atlas.SelectArea, Value: "WW"}},
		IsOneoff:    true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Fatalf("ids %v: want two measurements", ids)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/api/v2/measurements/" {
		t.Fatalf("requests %+v: want one POST /api/v2/measurements/", reqs)
	}
	if got := reqs[0].Authorization; got != "Key "+testKey {
		t.Errorf("Authorization %q, want the key after \"Key \"", got)
	}
	var body map[string]any
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	dns := body["definitions"].([]any)[0].(map[string]any)
	for k, want := range map[string]any{"type": "dns", "af": 4.0, "target": "192.0.2.53", "query_class": "CHAOS",
		"query_type": "TXT", "query_argument": "hostname.bind", "protocol": "UDP", "set_nsid_bit": true,
		"set_rd_bit": false, "use_probe_resolver": false, "include_abuf": true, "resolve_on_probe": false} {
		if dns[k] != want {
			t.Errorf("dns definition %s = %v, want %v", k, dns[k], want)
		}
	}
	tr := body["definitions"].([]any)[1].(map[string]any)
	if tr["type"] != "traceroute" || tr["protocol"] != "UDP" || tr["paris"] != 16.0 {
		t.Errorf("traceroute definition %v", tr)
	}
	if _, ok := tr["port"]; ok {
		t.Errorf("a UDP traceroute must not carry a port (the firmware ignores it): %v", tr)
	}
	if body["is_oneoff"] != true {
		t.Errorf("is_oneoff = %v", body["is_oneoff"])
	}
	sel := body["probes"].([]any)[0].(map[string]any)
	if sel["requested"] != 10.0 || sel["type"] != "area" || sel["value"] != "WW" {
		t.Errorf("probes %v", sel)
	}
	_, p0 := srv.Created(ids[0])
	_, p1 := srv.Created(ids[1])
	if len(p0) != 10 || fmt.Sprint(p0) != fmt.Sprint(p1) {
		t.Errorf("probes %v and %v: one request must give both definitions the same 10 probes", p0, p1)
	}
}

func TestCreateReportsTheAPIsFieldErrors(t *testing.T) {
	srv := (&atlastest.Server{}).Start(t)
	_, err := newClient(srv).Create(context.Background(), atlas.CreateRequest{
		Definitions: pair("192.0.2.53", 6), // an IPv4 target with af 6
		Probes:      []atlas.ProbeSelection{{Requested: 5, Type: atlas.SelectCountry, Value: "Netherlands"}},
		IsOneoff:    true,
	})
	var ae *atlas.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 400 {
		t.Fatalf("err %v: want a 400 APIError", err)
	}
	for _, want := range []string{"/definitions/0/target", "address family"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q should carry the API's complaint %q", err, want)
		}
	}
}

func TestUnknownProbeSelection(t *testing.T) {
	srv := (&atlastest.Server{}).Start(t)
	_, err := newClient(srv).Create(context.Background(), atlas.CreateRequest{
		Definitions: pair("192.0.2.53", 4),
		Probes:      []atlas.ProbeSelection{{Requested: 5, Type: atlas.SelectCountry, Value: "Netherlands"}},
		IsOneoff:    true,
	})
	if err == nil || !strings.Contains(err.Error(), `"Netherlands" is not a valid country code`) || !strings.Contains(err.Error(), "/probes/0/value") {
		t.Errorf("err %v: want the API's message about the probe selection", err)
	}
}

func TestKeyErrors(t *testing.T) {
	srv := (&atlastest.Server{Key: testKey}).Start(t)
	ctx := context.Background()
	c := newClient(srv)
	c.Key = ""
	_, err := c.Create(ctx, atlas.CreateRequest{Definitions: pair("192.0.2.53", 4), Probes: []atlas.ProbeSelection{{Requested: 1, Type: "area", Value: "WW"}}})
	if !errors.Is(err, atlas.ErrNoKey) {
		t.Errorf("create without a key: %v, want ErrNoKey", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests sent without a key; want none", n)
	}

	c.Key = "wrong-key-0000"
	_, err = c.Create(ctx, atlas.CreateRequest{Definitions: pair("192.0.2.53", 4), Probes: []atlas.ProbeSelection{{Requested: 1, Type: "area", Value: "WW"}}})
	var ae *atlas.APIError
	if !errors.As(err, &ae) || !ae.Auth() || ae.StatusCode != 403 {
		t.Fatalf("wrong key: %v, want a 403 auth error", err)
	}
	if !strings.Contains(err.Error(), "The provided API key is not valid.") {
		t.Errorf("error %q should carry the API's message", err)
	}
	if strings.Contains(err.Error(), "wrong-key-0000") {
		t.Errorf("error %q shows the key", err)
	}

	srv.Inject(atlastest.Fault{Path: "/api/v2/measurements/*", Status: 401, Detail: "Authentication credentials were not provided.", Times: 1})
	c.Key = testKey
	_, err = c.Measurement(ctx, 1)
	if !errors.As(err, &ae) || !ae.Auth() || ae.StatusCode != 401 {
		t.Errorf("401: %v, want an auth error", err)
	}
}

func TestKeyNeverPrints(t *testing.T) {
	c := &atlas.Client{Key: testKey}
	for _, s := range []string{fmt.Sprint(c.Key), fmt.Sprintf("%v %+v %#v %s %q", c, c, c, c.Key, c.Key)} {
		if strings.Contains(s, testKey) {
			t.Errorf("formatted client shows the key: %s", s)
		}
	}
	b, _ := json.Marshal(struct{ K atlas.Key }{c.Key})
	if strings.Contains(string(b), testKey) {
		t.Errorf("JSON shows the key: %s", b)
	}
}

func TestRateLimitHonoursRetryAfter(t *testing.T) {
	srv := (&atlastest.Server{}).Start(t)
	srv.Inject(atlastest.Fault{Method: "POST", Path: "/api/v2/measurements/", Status: 429, RetryAfter: "1", Detail: "Request was throttled.", Times: 1})
	c := newClient(srv)
	start := time.Now()
	ids, err := c.Create(context.Background(), atlas.CreateRequest{Definitions: pair("192.0.2.53", 4),
		Probes: []atlas.ProbeSelection{{Requested: 3, Type: "area", Value: "WW"}}, IsOneoff: true})
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("retried after %s; Retry-After asked for 1s", waited)
	}
	if len(ids) != 2 || len(srv.Requests()) != 2 {
		t.Errorf("ids %v after %d requests: want success on the second", ids, len(srv.Requests()))
	}

	// A wait longer than the client accepts fails at once, naming it.
	srv.Inject(atlastest.Fault{Path: "/api/v2/measurements/*", Status: 429, RetryAfter: "3600", Detail: "Request was throttled. Expected available in 3600 seconds.", Times: 1})
	start = time.Now()
	_, err = c.Measurement(context.Background(), ids[0])
	var ae *atlas.APIError
	if !errors.As(err, &ae) || !ae.RateLimited() || ae.RetryAfter != time.Hour {
		t.Fatalf("err %v: want a rate-limit error asking for 1h", err)
	}
	if time.Since(start) > 5*time.Second || !strings.Contains(err.Error(), "Retry-After 1h0m0s, longer than the 2m0s waited for") {
		t.Errorf("err %q after %s: want an immediate error naming the wait and the limit", err, time.Since(start))
	}
	// A date far ahead is a day or more, said so.
	srv.Inject(atlastest.Fault{Path: "/api/v2/measurements/*", Status: 429, RetryAfter: "Fri, 31 Dec 9999 23:59:59 GMT", Detail: "throttled"})
	_, err = c.Measurement(context.Background(), ids[0])
	if err == nil || strings.Contains(err.Error(), "2562047h") || !strings.Contains(err.Error(), "Retry-After a day or more") {
		t.Errorf("err %q: want the wait said as a day or more", err)
	}
}

func TestServerErrorsAreRetriedBounded(t *testing.T) {
	srv := (&atlastest.Server{}).Start(t)
	c := newClient(srv)
	ctx := context.Background()
	ids, err := c.Create(ctx, atlas.CreateRequest{Definitions: pair("192.0.2.53", 4),
		Probes: []atlas.ProbeSelection{{Requested: 3, Type: "area", Value: "WW"}}, IsOneoff: true})
	if err != nil {
		t.Fatal(err)
	}
	// Reads: any 5xx is retried, then succeed.
	srv.Inject(atlastest.Fault{Method: "GET", Path: "/api/v2/measurements/*", Status: 502, Times: 2})
	before := len(srv.Requests())
	if _, err := c.Measurement(ctx, ids[0]); err != nil {
		t.Fatalf("after two 502s: %v", err)
	}
	if n := len(srv.Requests()) - before; n != 3 {
		t.Errorf("%d requests, want 3 (two 502s, then the answer)", n)
	}
	// Bounded: a server that keeps failing gives up after MaxAttempts.
	srv.Inject(atlastest.Fault{Method: "GET", Path: "/api/v2/probes/", Status: 500, Detail: "Internal Server Error"})
	before = len(srv.Requests())
	_, err = c.Probes(ctx, []int{6001})
	var ae *atlas.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 500 {
		t.Errorf("err %v: want the 500", err)
	}
	if n := len(srv.Requests()) - before; n != 4 {
		t.Errorf("%d tries, want 4", n)
	}
	// Creating is repeated only when nothing was done: 503 yes, 500 no.
	srv.Inject(atlastest.Fault{Method: "POST", Path: "/api/v2/measurements/", Status: 503, Times: 1})
	srv.Inject(atlastest.Fault{Method: "POST", Path: "/api/v2/measurements/", Status: 500, Skip: 1, Times: 1})
	before = len(srv.Requests())
	if _, err := c.Create(ctx, atlas.CreateRequest{Definitions: pair("192.0.2.53", 4),
		Probes: []atlas.ProbeSelection{{Requested: 3, Type: "area", Value: "WW"}}, IsOneoff: true}); err != nil {
		t.Errorf("create after a 503: %v", err)
	}
	if _, err := c.Create(ctx, atlas.CreateRequest{Definitions: pair("192.0.2.53", 4),
		Probes: []atlas.ProbeSelection{{Requested: 3, Type: "area", Value: "WW"}}, IsOneoff: true}); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Errorf("create answered 500: %v, want the error without a retry", err)
	}
	if n := len(srv.Requests()) - before; n != 3 {
		t.Errorf("%d create requests, want 3 (503, retry, 500)", n)
	}
}

func TestMalformedJSON(t *testing.T) {
	srv := (&atlastest.Server{}).Start(t)
	c := newClient(srv)
	srv.Inject(atlastest.Fault{Method: "GET", Path: "/api/v2/measurements/*", Status: 200, Body: `{"id": 5, "status": {"id": 2,`})
	_, err := c.Measurement(context.Background(), 5)
	var me *atlas.MalformedError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "measurement 5: malformed reply") {
		t.Errorf("err %v: want a malformed-reply error naming the measurement", err)
	}
	srv.Inject(atlastest.Fault{Path: "/api/v2/probes/", Status: 200, Body: `{"count": 1, "results": [{"id": "six"}]}`})
	if _, err := c.Probes(context.Background(), []int{6}); !errors.As(err, &me) {
		t.Errorf("probes err %v: want a malformed-reply error", err)
	}
	// An error reply that is not JSON still gives its text.
	srv.Inject(atlastest.Fault{Method: "POST", Path: "/api/v2/measurements/", Status: 400, Body: "<html>\x1b[31mBad\nRequest</html>"})
	_, err = c.Create(context.Background(), atlas.CreateRequest{Definitions: pair("192.0.2.53", 4),
		Probes: []atlas.ProbeSelection{{Requested: 1, Type: "area", Value: "WW"}}})
	if err == nil || strings.ContainsAny(err.Error(), "\x1b\n") || !strings.Contains(err.Error(), "Bad Request") {
		t.Errorf("err %q: want the body's text on one line, without control characters", err)
	}
}

func TestWaitFollowsStatusTransitions(t *testing.T) {
	srv := (&atlastest.Server{Polls: 3}).Start(t)
	c := newClient(srv)
	ctx := context.Background()
	ids, err := c.Create(ctx, atlas.CreateRequest{Definitions: pair("192.0.2.53", 4),
		Probes: []atlas.ProbeSelection{{Requested: 12, Type: "area", Value: "WW"}}, IsOneoff: true})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	states, err := c.Wait(ctx, ids, atlas.WaitOptions{Poll: time.Millisecond, MaxPoll: 4 * time.Millisecond, OnPoll: func(ms []atlas.Measurement) {
		seen = append(seen, fmt.Sprintf("%s/%s %d/%d", ms[0].Status.Name, ms[1].Status.Name, ms[0].Participants, ms[0].ProbesScheduled))
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Specified/Specified 0/12", "Ongoing/Ongoing 4/12", "Ongoing/Ongoing 8/12", "Stopped/Stopped 12/12"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("polls saw %q, want %q", seen, want)
	}
	if states[0].Type != "dns" || states[1].Type != "traceroute" || !states[0].Status.Done() {
		t.Errorf("final states %+v", states)
	}

	// A deadline ends the wait with the last states.
	ids, _ = c.Create(ctx, atlas.CreateRequest{Definitions: pair("192.0.2.53", 4),
		Probes: []atlas.ProbeSelection{{Requested: 12, Type: "area", Value: "WW"}}, IsOneoff: true})
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	states, err = c.Wait(short, ids, atlas.WaitOptions{Poll: 100 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) || states[0].Status.Name != "Specified" {
		t.Errorf("wait past its deadline: %v, states %+v", err, states)
	}
}

func TestNoSuitableProbesIsDone(t *testing.T) {
	srv := (&atlastest.Server{}).Start(t)
	c := newClient(srv)
	ids, err := c.Create(context.Background(), atlas.CreateRequest{Definitions: pair("192.0.2.53", 4),
		Probes: []atlas.ProbeSelection{{Requested: 5, Type: "asn", Value: 64511}}, IsOneoff: true})
	if err != nil {
		t.Fatal(err)
	}
	states, err := c.Wait(context.Background(), ids, atlas.WaitOptions{Poll: time.Millisecond})
	if err != nil || states[0].Status.ID != atlas.StatusNoSuitableProbe || !states[0].Status.Done() {
		t.Errorf("states %+v, err %v: want No suitable probes", states, err)
	}
}

func TestResultsOf5000ProbesAsArrayAndLines(t *testing.T) {
	pop := atlastest.NewPopulation(5000)
	srv := (&atlastest.Server{Population: pop}).Start(t)
	c := newClient(srv)
	ctx := context.Background()
	ids, err := c.Create(ctx, atlas.CreateRequest{Definitions: pair("192.0.2.53", 4),
		Probes: []atlas.ProbeSelection{{Requested: 5000, Type: "area", Value: "WW"}}, IsOneoff: true})
	if err != nil {
		t.Fatal(err)
	}
	reporting := 0
	for _, p := range pop.Probes {
		if p.Behaviour != atlastest.NoResult {
			reporting++
		}
	}
	for _, id := range ids {
		body, err := c.Results(ctx, id, atlas.ResultsQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var arr []json.RawMessage
		err = json.NewDecoder(body).Decode(&arr)
		body.Close()
		if err != nil || len(arr) != reporting {
			t.Errorf("msm %d as one array: %d results, err %v; want %d", id, len(arr), err, reporting)
		}
		body, err = c.Results(ctx, id, atlas.ResultsQuery{Format: "txt"})
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(body)
		sc.Buffer(nil, 1<<20)
		lines := 0
		for sc.Scan() {
			var r struct {
				MsmID int `json:"msm_id"`
				PrbID int `json:"prb_id"`
			}
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.MsmID != id || r.PrbID == 0 {
				t.Fatalf("line %d: %v %+v", lines, err, r)
			}
			lines++
		}
		body.Close()
		if sc.Err() != nil || lines != reporting {
			t.Errorf("msm %d one per line: %d lines, err %v; want %d", id, lines, sc.Err(), reporting)
		}
	}
}

func TestResultsTimeWindowAndCutStream(t *testing.T) {
	pop := atlastest.NewPopulation(120)
	srv := (&atlastest.Server{Population: pop}).Start(t)
	c := newClient(srv)
	ctx := context.Background()
	id := srv.AddMeasurement(atlastest.Definition{Type: "dns", AF: 4, Target: "192.0.2.53", QName: "hostname.bind", Protocol: "UDP"},
		pop.Results(1, atlastest.Definition{Type: "dns", AF: 4, Target: "192.0.2.53", QName: "hostname.bind", Protocol: "UDP"}, pop.Probes))
	body, err := c.Results(ctx, id, atlas.ResultsQuery{Start: time.Unix(pop.Start+10, 0), Stop: time.Unix(pop.Start+19, 0), Format: "txt"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(body)
	body.Close()
	q := srv.Requests()[len(srv.Requests())-1].Query
	if q.Get("start") != fmt.Sprint(pop.Start+10) || q.Get("stop") != fmt.Sprint(pop.Start+19) || q.Get("format") != "txt" {
		t.Errorf("query %v: want start, stop as UNIX seconds and format", q)
	}
	if n := strings.Count(string(b), "\n"); n == 0 || n >= 118 {
		t.Errorf("%d results in a 10 s window of 120 spread over a minute", n)
	}

	srv.Inject(atlastest.Fault{Path: "/api/v2/measurements/*", Truncate: 700})
	body, err = c.Results(ctx, id, atlas.ResultsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var arr []json.RawMessage
	err = json.NewDecoder(body).Decode(&arr)
	body.Close()
	if err == nil {
		t.Errorf("a download cut after 700 bytes decoded without error (%d results)", len(arr))
	}
}

func TestSilentDownloadIsGivenUp(t *testing.T) {
	pop := atlastest.NewPopulation(50)
	srv := (&atlastest.Server{Population: pop}).Start(t)
	def := atlastest.Definition{Type: "dns", AF: 4, Target: "192.0.2.53", QName: "hostname.bind", Protocol: "UDP"}
	id := srv.AddMeasurement(def, pop.Results(1, def, pop.Probes))
	srv.Inject(atlastest.Fault{Path: "/api/v2/measurements/*", Truncate: 500, Hang: true})
	c := newClient(srv)
	c.IdleTimeout = 200 * time.Millisecond
	start := time.Now()
	body, err := c.Results(context.Background(), id, atlas.ResultsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, body)
	body.Close()
	if err == nil || !strings.Contains(err.Error(), "only 500 bytes in 200ms") || n != 500 {
		t.Errorf("read %d bytes, err %v: want the 500 bytes sent, then a timeout naming how little came", n, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("gave up after %s", took)
	}
}

func TestProbesInBatchesAndPages(t *testing.T) {
	pop := atlastest.NewPopulation(1200)
	srv := (&atlastest.Server{Population: pop, PageSize: 200}).Start(t)
	c := newClient(srv)
	ids := make([]int, 0, 1201)
	for _, p := range pop.Probes {
		ids = append(ids, p.ID)
	}
	ids = append(ids, ids[0], 99999999) // a duplicate and an unknown probe
	probes, err := c.Probes(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(probes) != 1200 {
		t.Fatalf("%d probes, want 1200", len(probes))
	}
	var idIn []int
	for _, r := range srv.Requests() {
		if r.Query.Get("page") == "" {
			idIn = append(idIn, strings.Count(r.Query.Get("id__in"), ",")+1)
		}
	}
	if fmt.Sprint(idIn) != "[500 500 201]" {
		t.Errorf("batches of %v ids, want [500 500 201]", idIn)
	}
	if n := len(srv.Requests()); n != 3+3+1 {
		t.Errorf("%d requests, want 7 (batches of 3, 3 and 1 pages of at most 200)", n)
	}
	p, want := probes[7], pop.Probes[7]
	if p.ID != want.ID || p.ASNv4 != want.ASNv4 || p.Country != want.Country || !p.HasLocation ||
		p.Latitude != want.Lat || p.Longitude != want.Lon || p.AddressV4 != want.Addr4 || p.PrefixV4 != netip.PrefixFrom(want.Addr4, 28).Masked() {
		t.Errorf("probe %+v, want the metadata of %+v", p, want)
	}
	if probes[3].AddressV6.IsValid() || probes[3].ASNv6 != 0 {
		t.Errorf("probe without IPv6 got %v AS%d", probes[3].AddressV6, probes[3].ASNv6)
	}
}

func TestProbesNextLinkMustStayOnTheAPI(t *testing.T) {
	srv := (&atlastest.Server{}).Start(t)
	srv.Inject(atlastest.Fault{Path: "/api/v2/probes/", Status: 200, Times: 1,
		Body: `{"count": 2, "next": "https://collector.example/api/v2/probes/?page=2", "results": [{"id": 6001}]}`})
	_, err := newClient(srv).Probes(context.Background(), []int{6001, 6002})
	if err == nil || !strings.Contains(err.Error(), "collector.example") {
		t.Errorf("err %v: want a refusal to follow a next link off the API", err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("%d requests", n)
	}
}

func TestStop(t *testing.T) {
	srv := (&atlastest.Server{Key: testKey}).Start(t)
	c := newClient(srv)
	ids, err := c.Create(context.Background(), atlas.CreateRequest{Definitions: pair("192.0.2.53", 4),
		Probes: []atlas.ProbeSelection{{Requested: 3, Type: "area", Value: "WW"}}, IsOneoff: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(context.Background(), ids[1]); err != nil {
		t.Fatal(err)
	}
	if !srv.Stopped(ids[1]) || srv.Stopped(ids[0]) {
		t.Errorf("stopped: %v %v, want only the second", srv.Stopped(ids[0]), srv.Stopped(ids[1]))
	}
	last := srv.Requests()[len(srv.Requests())-1]
	if last.Method != "DELETE" || last.Path != fmt.Sprintf("/api/v2/measurements/%d/", ids[1]) || last.Authorization != "Key "+testKey {
		t.Errorf("stop sent %+v", last)
	}
	m, err := c.Measurement(context.Background(), ids[1])
	if err != nil || m.Status.ID != atlas.StatusStopped {
		t.Errorf("after stop: %+v %v", m, err)
	}
	if err := c.Stop(context.Background(), 12345); err == nil || !strings.Contains(err.Error(), "stop measurement 12345: HTTP 404") {
		t.Errorf("stopping an unknown measurement: %v", err)
	}
}

func TestBadBaseURL(t *testing.T) {
	for _, b := range []string{"atlas.example", "ftp://atlas.example", "http://"} {
		c := &atlas.Client{BaseURL: b}
		if _, err := c.Measurement(context.Background(), 1); err == nil || !strings.Contains(err.Error(), b) {
			t.Errorf("base %q: %v", b, err)
		}
	}
}

func TestSecondRequestReusesTheFirstsProbes(t *testing.T) {
	srv := (&atlastest.Server{}).Start(t)
	c := newClient(srv)
	ctx := context.Background()
	v4, err := c.Create(ctx, atlas.CreateRequest{Definitions: pair("192.0.2.53", 4),
		Probes: []atlas.ProbeSelection{{Requested: 8, Type: atlas.SelectCountry, Value: "NL"}}, IsOneoff: true})
	if err != nil {
		t.Fatal(err)
	}
	v6, err := c.Create(ctx, atlas.CreateRequest{Definitions: pair("2001:db8:53::53", 6),
		Probes: []atlas.ProbeSelection{atlas.SameProbesAs(v4[0], 8)}, IsOneoff: true})
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Probes []map[string]any `json:"probes"`
	}
	json.Unmarshal(srv.Requests()[1].Body, &body)
	if len(body.Probes) != 1 || body.Probes[0]["type"] != "msm" || body.Probes[0]["value"] != float64(v4[0]) || body.Probes[0]["requested"] != 8.0 {
		t.Errorf("second request's probes %v, want {type msm, value %d, requested 8}", body.Probes, v4[0])
	}
	_, p4 := srv.Created(v4[0])
	_, p6 := srv.Created(v6[1])
	if len(p4) == 0 || fmt.Sprint(p4) != fmt.Sprint(p6) {
		t.Errorf("probes %v then %v: want the same", p4, p6)
	}
}

// The key goes only to the origin (scheme, host and port) of BaseURL: a
// redirect from the https API to http on the same host and another port is
// followed without it for a GET and refused for a creation; a redirect
// within the origin keeps it.
func TestKeyStaysWithItsOrigin(t *testing.T) {
	var mu sync.Mutex
	var elsewhere []string // method and Authorization of every request the other origin got
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		elsewhere = append(elsewhere, r.Method+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		fmt.Fprint(w, `{"id":1,"type":"dns","af":4,"target":"192.0.2.53","status":{"id":4,"name":"Stopped"}}`)
	}))
	defer other.Close()
	var sameOriginKey string
	postCode := http.StatusTemporaryRedirect
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/api/v2/measurements/2/":
			http.Redirect(w, r, "/moved/2/", http.StatusFound)
		case r.URL.Path == "/moved/2/":
			sameOriginKey = r.Header.Get("Authorization")
			fmt.Fprint(w, `{"id":2,"type":"dns","af":4,"target":"192.0.2.53","status":{"id":4,"name":"Stopped"}}`)
		case r.Method == http.MethodPost:
			http.Redirect(w, r, other.URL+r.URL.Path, postCode)
		default:
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
		}
	}))
	defer api.Close()
	c := &atlas.Client{BaseURL: api.URL, HTTP: api.Client(), Key: testKey, RetryBase: time.Millisecond, MaxAttempts: 1}

	if m, err := c.Measurement(context.Background(), 1); err != nil || m.ID != 1 {
		t.Fatalf("GET redirected to another origin: %+v %v", m, err)
	}
	if m, err := c.Measurement(context.Background(), 2); err != nil || m.ID != 2 || sameOriginKey != "Key "+testKey {
		t.Errorf("GET redirected within the origin: %+v %v, Authorization there %q", m, err, sameOriginKey)
	}
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound, http.StatusSeeOther} {
		postCode = code
		_, err := c.Create(context.Background(), atlas.CreateRequest{Definitions: pair("192.0.2.53", 4),
			Probes: []atlas.ProbeSelection{{Requested: 1, Type: atlas.SelectArea, Value: "WW"}}, IsOneoff: true})
		if err == nil || !strings.Contains(err.Error(), "redirect") {
			t.Errorf("POST redirected (%d) to another origin: %v, want it refused", code, err)
		}
		if strings.Contains(fmt.Sprint(err), testKey) {
			t.Errorf("the error shows the key: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(elsewhere) != 1 || elsewhere[0] != "GET " {
		t.Errorf("the other origin got %q, want one GET without a key", elsewhere)
	}
}
