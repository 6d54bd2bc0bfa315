package atlas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/anycheck/anycheck/internal/wait"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
)

// DefaultBaseURL is the public RIPE Atlas API. Tests and mirrors set
// Client.BaseURL instead; nothing in this package contacts it by itself.
const DefaultBaseURL = "https://atlas.ripe.net"

// Key is a RIPE Atlas API key. It prints as "[redacted]" in every format
// verb and in JSON, so a key cannot leak through a log line, an error
// message or a document by accident; only the Authorization header carries it.
type Key string

func (Key) String() string   { return "[redacted]" }
func (Key) GoString() string { return `atlas.Key("[redacted]")` }

// MarshalJSON never writes the key.
func (Key) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// Client speaks the RIPE Atlas REST API v2. The zero value talks to
// DefaultBaseURL without a key, with a private http.Client with timeouts.
// A Client holds no state between calls; it is safe for concurrent use.
type Client struct {
	// BaseURL is scheme://host[:port] of the API (no /api/v2).
	BaseURL string
	// HTTP carries the requests; nil means a client with dial, TLS and
	// response-header timeouts (a results download itself may take long:
	// bound it with the context).
	HTTP *http.Client
	// Key is sent as "Authorization: Key …" when set. Creating and stopping
	// measurements need one; public results and probes do not.
	Key Key
	// UserAgent is sent with every request.
	UserAgent string
	// MaxAttempts bounds the tries of one request on 5xx and 429 replies
	// (default 4).
	MaxAttempts int
	// RetryBase is the first wait after a 5xx reply, doubled after each
	// further one, at most 30s (default 1s).
	RetryBase time.Duration
	// MaxRetryAfter is the longest Retry-After a 429 reply may ask for and
	// still be waited out (default 2m); a longer one fails the request.
	MaxRetryAfter time.Duration
	// IdleTimeout is the window in which a reply's body must bring at
	// least MinProgress bytes (or end) before the request is given up
	// (default 60s): a results download may take long, but never hang, nor
	// trickle.
	IdleTimeout time.Duration
	// DownloadTimeout bounds a whole results download, however steadily
	// it comes (default 30m).
	DownloadTimeout time.Duration
}

// MinProgress is the least a reply's body must bring in every IdleTimeout.
const MinProgress = 4 << 10

func (c *Client) base() (*url.URL, error) {
	b := c.BaseURL
	if b == "" {
		b = DefaultBaseURL
	}
	u, err := url.Parse(strings.TrimRight(b, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("atlas API base %q: want http(s)://host[:port]", RedactURL(b))
	}
	return u, nil
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second}).DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleConnTimeout:       30 * time.Second,
		MaxIdleConnsPerHost:   4,
	}}
}

func (c *Client) maxAttempts() int {
	if c.MaxAttempts > 0 {
		return c.MaxAttempts
	}
	return 4
}

func (c *Client) retryBase() time.Duration {
	if c.RetryBase > 0 {
		return c.RetryBase
	}
	return time.Second
}

func (c *Client) idleTimeout() time.Duration {
	if c.IdleTimeout > 0 {
		return c.IdleTimeout
	}
	return time.Minute
}

func (c *Client) downloadTimeout() time.Duration {
	if c.DownloadTimeout > 0 {
		return c.DownloadTimeout
	}
	return 30 * time.Minute
}

func (c *Client) maxRetryAfter() time.Duration {
	if c.MaxRetryAfter > 0 {
		return c.MaxRetryAfter
	}
	return 2 * time.Minute
}

// ErrNoKey is returned by calls that need an API key when Client.Key is empty.
var ErrNoKey = errors.New("an API key is needed")

// APIError is a reply with an unsuccessful HTTP status. Detail carries the
// API's own message (its "error.detail", or a plain-text body).
type APIError struct {
	Op         string // what was asked: "create measurements", "measurement 123"
	StatusCode int
	Title      string
	Detail     string
	// Fields are the API's per-field complaints ("/definitions/0/target:
	// This field is required.").
	Fields []string
	// RetryAfter is the wait a 429 reply asked for (0 when absent), at
	// most MaxRetryAfterHeader.
	RetryAfter time.Duration
	// Waited is the longest wait the client accepted, set when RetryAfter
	// was longer (so the request was not retried).
	Waited time.Duration
}

// MaxRetryAfterHeader caps a Retry-After: a day or more is a day.
const MaxRetryAfterHeader = 24 * time.Hour

func (e *APIError) Error() string {
	msg := e.Detail
	if msg == "" {
		msg = e.Title
	}
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	if len(e.Fields) > 0 {
		msg += " (" + strings.Join(e.Fields, "; ") + ")"
	}
	s := fmt.Sprintf("atlas %s: HTTP %d: %s", e.Op, e.StatusCode, msg)
	if e.StatusCode == http.StatusTooManyRequests && e.RetryAfter > 0 {
		after := e.RetryAfter.String()
		if e.RetryAfter >= MaxRetryAfterHeader {
			after = "a day or more"
		}
		if e.Waited > 0 {
			after += fmt.Sprintf(", longer than the %s waited for", e.Waited)
		}
		s += " (Retry-After " + after + ")"
	}
	return s
}

// Auth reports a rejected or missing API key (401, 403).
func (e *APIError) Auth() bool {
	return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
}

// RateLimited reports a 429 reply.
func (e *APIError) RateLimited() bool { return e.StatusCode == http.StatusTooManyRequests }

// Quota reports a refusal for lack of credits or over an account limit:
// 402, or a 4xx whose message speaks of credits, quota or limits.
func (e *APIError) Quota() bool {
	if e.StatusCode == http.StatusPaymentRequired {
		return true
	}
	if e.StatusCode < 400 || e.StatusCode >= 500 || e.RateLimited() {
		return false
	}
	m := strings.ToLower(e.Detail + " " + strings.Join(e.Fields, " "))
	return strings.Contains(m, "credit") || strings.Contains(m, "quota") || strings.Contains(m, "limit")
}

// MalformedError is a successful reply whose body is not the JSON the API
// documents.
type MalformedError struct {
	Op         string
	StatusCode int
	Err        error
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("atlas %s: malformed reply (HTTP %d): %v", e.Op, e.StatusCode, e.Err)
}

func (e *MalformedError) Unwrap() error { return e.Err }

// request is one API call: the path below the base, query, body.
type request struct {
	op       string
	method   string
	path     string // e.g. "/api/v2/measurements/"
	query    url.Values
	body     []byte
	needsKey bool
	// retryAll5xx: the call is safe to repeat after any 5xx. A create is
	// repeated only after replies that mean nothing was done (429, 503).
	retryAll5xx bool
	// download: the reply is a results download, bounded by
	// DownloadTimeout as a whole.
	download bool
}

// send performs r with retries and returns the successful response; the
// caller closes its body.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	if r.needsKey && c.Key == "" {
		return nil, fmt.Errorf("atlas %s: %w", r.op, ErrNoKey)
	}
	base, err := c.base()
	if err != nil {
		return nil, err
	}
	u := *base
	u.Path = strings.TrimRight(base.Path, "/") + r.path
	u.RawQuery = r.query.Encode()
	hc := keepKeyHome(c.httpClient(), base, r.method)
	wait5xx := c.retryBase()
	attempts := c.maxAttempts()
	for attempt := 1; ; attempt++ {
		var body io.Reader
		if r.body != nil {
			body = bytes.NewReader(r.body)
		}
		rctx, cancel := context.WithCancel(ctx)
		var limit time.Duration
		if r.download {
			limit = c.downloadTimeout()
			rctx, cancel = context.WithTimeout(ctx, limit)
		}
		req, err := http.NewRequestWithContext(rctx, r.method, u.String(), body)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("atlas %s: %w", r.op, err)
		}
		req.Header.Set("Accept", "application/json")
		if r.body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.UserAgent != "" {
			req.Header.Set("User-Agent", c.UserAgent)
		}
		if c.Key != "" {
			req.Header.Set("Authorization", "Key "+string(c.Key))
		}
		resp, err := hc.Do(req)
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("atlas %s: %w", r.op, ctx.Err())
			}
			// The request may or may not have reached the API: only calls
			// that are safe to repeat are retried.
			if r.retryAll5xx && attempt < attempts {
				if err := wait.Sleep(ctx, wait5xx); err != nil {
					return nil, fmt.Errorf("atlas %s: %w", r.op, err)
				}
				wait5xx = min(2*wait5xx, 30*time.Second)
				continue
			}
			return nil, fmt.Errorf("atlas %s: %w", r.op, redactURL(err))
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			resp.Body = newGuardedBody(resp.Body, rctx, c.idleTimeout(), limit, cancel)
			return resp, nil
		}
		apiErr := readAPIError(r.op, resp)
		resp.Body.Close()
		cancel()
		var pause time.Duration
		switch {
		case apiErr.RateLimited():
			pause = apiErr.RetryAfter
			if pause <= 0 {
				pause = wait5xx
				wait5xx = min(2*wait5xx, 30*time.Second)
			}
			if pause > c.maxRetryAfter() {
				apiErr.Waited = c.maxRetryAfter()
				return nil, apiErr
			}
		case resp.StatusCode == http.StatusServiceUnavailable || (resp.StatusCode >= 500 && r.retryAll5xx):
			pause = wait5xx
			wait5xx = min(2*wait5xx, 30*time.Second)
		default:
			return nil, apiErr
		}
		if attempt >= attempts {
			return nil, apiErr
		}
		if err := wait.Sleep(ctx, pause); err != nil {
			return nil, fmt.Errorf("atlas %s: %w (after %v)", r.op, err, apiErr)
		}
	}
}

// keepKeyHome returns hc with a redirect policy that keeps the key (and
// whatever else a request carries) with the API: a redirect to another
// origin (scheme, host and port) than base goes there without the
// Authorization header, and only for a GET; a request that changes
// something (a creation, a stop) is not sent to another origin at all.
// Go's own policy strips the header only for another host name, so an
// https API redirecting to http on another port of the same host would
// get the key in clear text.
func keepKeyHome(hc *http.Client, base *url.URL, method string) *http.Client {
	home := origin(base)
	next := hc.CheckRedirect
	c := *hc
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if origin(req.URL) != home {
			if method != http.MethodGet {
				return fmt.Errorf("refused a redirect of %s to %s, outside the API at %s", method, req.URL.Redacted(), home)
			}
			req.Header.Del("Authorization")
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

// origin is u's scheme://host:port, lower case, with the scheme's default
// port written out.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// doJSON performs r and decodes a JSON reply into out (nil: no body wanted).
func (c *Client) doJSON(ctx context.Context, r request, out any) error {
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("atlas %s: %w", r.op, ctx.Err())
		}
		return &MalformedError{Op: r.op, StatusCode: resp.StatusCode, Err: err}
	}
	return nil
}

// guardedBody gives up a reply whose body brings less than MinProgress
// bytes in a window of idle (silent, or trickling: the window does not
// restart with every byte), or that is still coming when its context's
// deadline (the download's) passes: the timer cancels the request, and
// reads fail from then on, saying why.
type guardedBody struct {
	io.ReadCloser
	ctx    context.Context
	idle   time.Duration
	limit  time.Duration // the whole download's, 0 for none
	cancel context.CancelFunc
	timer  *time.Timer
	n      atomic.Int64 // bytes in the current window
	why    atomic.Pointer[string]
}

func newGuardedBody(rc io.ReadCloser, ctx context.Context, idle, limit time.Duration, cancel context.CancelFunc) *guardedBody {
	b := &guardedBody{ReadCloser: rc, ctx: ctx, idle: idle, limit: limit, cancel: cancel}
	b.timer = time.AfterFunc(idle, b.window)
	return b
}

// window ends one idle window: enough came, or the request is given up.
func (b *guardedBody) window() {
	n := b.n.Swap(0)
	if n >= MinProgress {
		b.timer.Reset(b.idle)
		return
	}
	why := fmt.Sprintf("no data for %s", b.idle)
	if n > 0 {
		why = fmt.Sprintf("only %d bytes in %s (at least %d KB expected)", n, b.idle, MinProgress>>10)
	}
	b.why.Store(&why)
	b.cancel()
}

func (b *guardedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	if gerr := b.Err(); gerr != nil {
		return n, gerr
	}
	return n, err
}

// Err says why the body was given up (too slow, or past the download's
// deadline); nil while it is not.
func (b *guardedBody) Err() error {
	if why := b.why.Load(); why != nil {
		return fmt.Errorf("%s: %w", *why, context.Canceled)
	}
	if b.limit > 0 && errors.Is(b.ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("download took longer than %s: %w", b.limit, context.DeadlineExceeded)
	}
	return nil
}

func (b *guardedBody) Close() error {
	b.timer.Stop()
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// RedactURL hides the user information of a URL (user:password@), whole,
// as "xxxxx@": an API base URL may carry credentials, and it is printed in
// commands to run later and in errors. It works on text that does not parse
// as a URL too.
func RedactURL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	auth := s[i+3:]
	if end := strings.IndexAny(auth, "/?#"); end >= 0 {
		auth = auth[:end]
	}
	at := strings.LastIndexByte(auth, '@')
	if at < 0 {
		return s
	}
	return s[:i+3] + "xxxxx" + s[i+3+at:]
}

// redactURL drops the URL from a transport error: the message stays about
// what failed (connection refused, timeout), not the query string.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// readAPIError builds the error of an unsuccessful reply from its body
// (the API's JSON error object, or text) and headers.
func readAPIError(op string, resp *http.Response) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := parseAPIError(body)
	e.Op = op
	e.StatusCode = resp.StatusCode
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}

// parseAPIError reads the API's error body: {"error":{"status","code",
// "detail","title","errors":[{"source":{"pointer"|"parameter"},"detail"}]}},
// the bare {"detail": "..."} form, or plain text. Remote text is cut to a
// sane length and stripped of control characters.
func parseAPIError(body []byte) *APIError {
	e := &APIError{}
	var wrapped struct {
		Error *errorBody `json:"error"`
	}
	var bare errorBody
	switch {
	case json.Unmarshal(body, &wrapped) == nil && wrapped.Error != nil:
		fillAPIError(e, wrapped.Error)
	case json.Unmarshal(body, &bare) == nil && (bare.Detail != "" || bare.Title != ""):
		fillAPIError(e, &bare)
	default:
		e.Detail = cleanText(string(body))
	}
	return e
}

type errorBody struct {
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Errors []struct {
		Source struct {
			Pointer   string `json:"pointer"`
			Parameter string `json:"parameter"`
		} `json:"source"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

func fillAPIError(e *APIError, b *errorBody) {
	e.Title = cleanText(b.Title)
	e.Detail = cleanText(b.Detail)
	for i, fe := range b.Errors {
		if i == 8 {
			e.Fields = append(e.Fields, fmt.Sprintf("%d more", len(b.Errors)-i))
			break
		}
		where := fe.Source.Pointer
		if where == "" {
			where = fe.Source.Parameter
		}
		s := cleanText(fe.Detail)
		if where != "" {
			s = cleanText(where) + ": " + s
		}
		e.Fields = append(e.Fields, s)
	}
}

// cleanText makes remote text fit one line of an error message: control
// characters become spaces, runs of space collapse, at most 300 runes.
func cleanText(s string) string {
	var b strings.Builder
	space := false
	n := 0
	for _, r := range strings.TrimSpace(s) {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		}
		if !unicode.IsPrint(r) {
			r = '?'
		}
		space = false
		b.WriteRune(r)
		if n++; n == 300 {
			b.WriteString("…")
			break
		}
	}
	return strings.TrimSpace(b.String())
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(min(n, int64(MaxRetryAfterHeader/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, MaxRetryAfterHeader).Round(time.Second)
		}
	}
	return 0
}
