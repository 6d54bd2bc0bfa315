package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/anycheck/anycheck/atlas"
	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/internal/render"
	"github.com/anycheck/anycheck/internal/report"
	"github.com/anycheck/anycheck/whois"
)

// atlasCommon are the flags of every atlas subcommand.
type atlasCommon struct {
	apiURL  string
	keyFile string
	save    string
	sites   string
	all     bool
	lines   bool
	e       enrichOptions
	// download bounds each measurement's results download as a whole.
	download time.Duration
}

func (c *atlasCommon) register(f *pflag.FlagSet) {
	f.StringVar(&c.apiURL, "atlas-url", atlas.DefaultBaseURL, "RIPE Atlas API base URL (a mirror, a test server)")
	f.StringVar(&c.keyFile, "key-file", "", "file holding the RIPE Atlas API key (default: $ATLAS_API_KEY)")
	durationVarP(f, &c.download, "download-timeout", "", 30*time.Minute, "longest a measurement's results may take to download (narrow a long one with --start/--stop)")
	f.StringVar(&c.save, "save", "", "keep the raw result files and the probes' metadata in this directory (anycheck compare reads it)")
	f.StringVar(&c.sites, "sites", "", "site-hint FILE: extra naming patterns, checked before the built-in ones")
	f.BoolVar(&c.all, "all", false, "list every line of the catchment table in text output (by default only up to 50)")
	f.BoolVar(&c.lines, "lines", false, "-o svg|html: draw a line from each vantage point to its site")
	// The report's ASN flags are compare's: --asn is the ASN source in
	// every command (probes in an AS are --from-asn).
	c.e.register(f)
}

func (c *atlasCommon) validate() error {
	u, err := url.Parse(c.apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return usageErr("--atlas-url %q: want http(s)://host[:port]", atlas.RedactURL(c.apiURL))
	}
	if c.download <= 0 {
		return usageErr("--download-timeout %s: want a duration above 0", c.download)
	}
	return nil
}

// key reads the API key from --key-file, else $ATLAS_API_KEY. It is never
// shown: errors name the file or the variable, not the value.
func (c *atlasCommon) key(d *deps) (atlas.Key, string, error) {
	if c.keyFile != "" {
		b, err := readKeyFile(c.keyFile)
		if err != nil {
			return "", "", usageErr("--key-file %s: %v", c.keyFile, err)
		}
		k, err := checkKey(string(b))
		if err != nil {
			return "", "", usageErr("--key-file %s: %v", c.keyFile, err)
		}
		var warning string
		if st, err := os.Stat(c.keyFile); err == nil && st.Mode().Perm()&0o077 != 0 {
			warning = fmt.Sprintf("key file %s can be read by other users (mode %04o); chmod 600 it", c.keyFile, st.Mode().Perm())
		}
		return k, warning, nil
	}
	if v := d.getenv("ATLAS_API_KEY"); v != "" {
		k, err := checkKey(v)
		if err != nil {
			return "", "", usageErr("ATLAS_API_KEY: %v", err)
		}
		return k, "", nil
	}
	return "", "", nil
}

// maxKeyFile is the most read of --key-file: an API key is a UUID.
const maxKeyFile = 4 << 10

// readKeyFile reads a key file, at most maxKeyFile of it (a FIFO from
// process substitution works; /dev/zero is refused, not read for ever).
func readKeyFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, errors.Unwrap(err) // the name is said once, by the caller
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("larger than %d KB: not an API key", maxKeyFile>>10)
	}
	return b, nil
}

// checkKey accepts one printable token (a UUID for Atlas keys): a key with
// spaces or line breaks inside would corrupt the Authorization header.
func checkKey(s string) (atlas.Key, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty")
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f {
			return "", errors.New("not an API key (it holds spaces, line breaks or non-ASCII characters)")
		}
	}
	return atlas.Key(s), nil
}

func (c *atlasCommon) client(key atlas.Key, d *deps) *atlas.Client {
	return &atlas.Client{BaseURL: c.apiURL, Key: key, UserAgent: "anycheck/" + buildVersion(), RetryBase: d.atlasPause, DownloadTimeout: c.download}
}

// renderAtlas downloads the measurements' results (saving them with
// --save), reads them as they arrive, fetches the probes' metadata and
// writes the catchment report, as anycheck compare would over the saved
// files. partial marks a run whose measurements did not all finish.
func renderAtlas(ctx context.Context, c *atlas.Client, ms []atlasMsm, q atlas.ResultsQuery, o *atlasCommon, rs *reportSources, g *globalOptions, s *streams, d *deps, partial bool) error {
	sites, resolver := rs.sites, rs.resolver
	out := newRunOutput(s, g, d, report.KindCompare)
	prog := newReadProgress(s)
	defer prog.done()
	side := &compareSide{collector: catchment.NewCollector(), notAfter: d.now().Add(clockSlack)}
	failed := 0
	if partial {
		failed++
	}
	errs := c.DownloadAll(ctx, ms, q, o.save, func(name string, r io.Reader) {
		readInput(ctx, name, r, side, out, prog)
	})
	prog.done()
	interrupted := ctx.Err() != nil
	for _, err := range errs {
		if err == nil {
			continue
		}
		err = downloadError(err)
		if side.read == 0 && !interrupted {
			return err // nothing read: the first error is the run's
		}
		failed++
		out.problem(report.Problem{Stage: "download", Message: err.Error()})
	}
	failed += side.skipped
	var ids []int
	for _, ob := range side.collector.Observations() {
		if id := ob.Vantage.ProbeID; id != 0 && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	switch {
	case len(ids) == 0 && !interrupted:
		failed++
		out.problem(report.Problem{Stage: "download", Message: fmt.Sprintf("measurements %s returned no results", joinIDs(msmIDs(ms)))})
	case len(ids) > 0 && !interrupted:
		probes, err := c.Probes(ctx, ids)
		if err != nil {
			out.problem(report.Problem{Stage: "probes", Message: atlasError(err).Error() + " (the report goes on without the probes' AS and country)"})
			break
		}
		side.addProbes(probes)
		if o.save != "" {
			name, err := atlas.SaveProbes(o.save, probes)
			if err != nil {
				return downloadError(err)
			}
			side.inputs = append(side.inputs, report.CompareInput{Name: name, Format: "atlas probes"})
		}
	}
	return writeCatchment(ctx, g, resolver, sites, []*compareSide{side}, out, failed, interrupted, render.CompareOptions{All: o.all, Lines: o.lines})
}

// reportSources are what the report needs besides the results: site hints
// and the ASN source.
type reportSources struct {
	sites    *catchment.Sites
	resolver whois.Resolver
}

// prepare checks everything the report will need — the --sites file, the
// ASN source, the --save directory — before anything is created on Atlas:
// a typo must not cost credits.
func (c *atlasCommon) prepare(g *globalOptions, d *deps) (*reportSources, error) {
	sites, resolver, err := catchmentSources(c.sites, &c.e, g, d)
	if err != nil {
		return nil, err
	}
	if err := prepareSave(c.save); err != nil {
		return nil, err
	}
	return &reportSources{sites: sites, resolver: resolver}, nil
}

func newAtlasCmd(g *globalOptions, s *streams, d *deps) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "atlas",
		Short: "Measure from RIPE Atlas probes: identity and traceroute from many vantage points",
		Long: `Drive RIPE Atlas (https://atlas.ripe.net) instead of a fleet of your own:
"atlas run" creates one-off DNS identity and traceroute measurements on the
same probes and renders the catchment report; "atlas fetch" renders existing
measurements. The API key comes from $ATLAS_API_KEY or --key-file only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newAtlasRunCmd(g, s, d, nil), newAtlasFetchCmd(g, s, d, nil))
	return cmd
}

type atlasRunOptions struct {
	g      *globalOptions
	cmdIO  // its streams and dependencies
	common atlasCommon
	target string
	af     string // "4", "6", "both" ("" = from -4/-6, else the target literal, else 4)

	probes    int
	area      string
	country   string
	asn       string
	prefix    string
	probeIDs  string
	probesSet bool

	qname  string
	tcp    bool
	proto  string
	port   int
	portOK bool // --port was given
	wait   time.Duration
	dryRun bool

	// filled by validate
	families  []int
	selection atlas.ProbeSelection
}

func newAtlasRunCmd(g *globalOptions, s *streams, d *deps, runF func(context.Context, *atlasRunOptions) error) *cobra.Command {
	o := &atlasRunOptions{g: g, cmdIO: cmdIO{s, d}}
	cmd := &cobra.Command{
		Use:   "run TARGET",
		Short: "Create one-off DNS identity and traceroute measurements on RIPE Atlas probes",
		Long: `Create, in one request per address family, a one-off DNS measurement (CHAOS TXT
hostname.bind with NSID, sent to TARGET, not to the probe's resolver) and a
one-off Paris traceroute to TARGET: RIPE Atlas gives all the measurements of
one request the same probes. With --af both the IPv6 pair reuses the probes
of the IPv4 pair. anycheck then waits for the results (--wait), downloads
them with the probes' metadata and renders the catchment report.

Atlas's UDP traceroutes go to port 33434+paris_id whatever is asked (probe
firmware); -P tcp --port 53 traces to the DNS port itself.`,
		Example: `  ATLAS_API_KEY=... anycheck atlas run 192.0.2.53
  anycheck atlas run --key-file ~/.atlas-key --probes 200 --from-country NL --af both ns.example.net
  anycheck atlas run --from-probes 6001,6002,6003 -P tcp --save results/ 2001:db8:53::53
  anycheck atlas run --dry-run --from-asn 64500 192.0.2.53`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.target = args[0]
			o.probesSet = cmd.Flags().Changed("probes")
			o.portOK = cmd.Flags().Changed("port")
			if err := o.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runFailed(runAtlasRun(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	o.common.register(f)
	enumVarP(f, &o.af, "af", "", "", "address family: 4, 6 or both (two pairs of measurements on the same probes); default -4/-6, else the target's", "4", "6", "both")
	// Probe selection as ripe-atlas-tools names it.
	f.IntVar(&o.probes, "probes", 50, "number of probes")
	f.StringVar(&o.area, "from-area", "", "probes from an area: WW, West, North-Central, South-Central, North-East, South-East (default WW)")
	f.StringVar(&o.country, "from-country", "", "probes from a country (ISO 3166 code, e.g. NL)")
	f.StringVar(&o.asn, "from-asn", "", "probes in an AS (e.g. 64500 or AS64500)")
	f.StringVar(&o.prefix, "from-prefix", "", "probes in an address prefix")
	f.StringVar(&o.probeIDs, "from-probes", "", "these probes (comma-separated ids)")
	f.StringVar(&o.qname, "qname", "hostname.bind", "CHAOS TXT name of the DNS measurement")
	f.BoolVar(&o.tcp, "tcp", false, "DNS over TCP (default UDP)")
	protocolVar(f, &o.proto, "traceroute protocol: udp, tcp or icmp")
	f.IntVar(&o.port, "port", 53, "traceroute destination port (tcp only)")
	durationVarP(f, &o.wait, "wait", "", 10*time.Minute, "longest wait for the measurements to finish")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the JSON bodies that would be sent and exit")
	outputVar(cmd, g, formatText, compareFormats...)
	return cmd
}

func (o *atlasRunOptions) validate() error {
	if err := o.common.validate(); err != nil {
		return err
	}
	lit, err := netip.ParseAddr(o.target)
	if err == nil {
		if lit.Zone() != "" {
			return usageErr("target %q: a scoped address cannot be measured from Atlas", o.target)
		}
		lit = lit.Unmap()
		if !lit.IsGlobalUnicast() || lit.IsPrivate() {
			// Documentation ranges pass (tests, examples); private,
			// loopback and link-local addresses are never reachable from
			// probes on the Internet.
			return usageErr("target %s: not a global unicast address", lit)
		}
		o.target = lit.String()
	} else if !validHostname(o.target) {
		return usageErr("target %q: not an IP address or host name", o.target)
	}
	fam := 0
	switch {
	case o.g.v4:
		fam = 4
	case o.g.v6:
		fam = 6
	}
	switch o.af {
	case "":
		switch {
		case fam != 0:
			o.families = []int{fam}
		case lit.Is6():
			o.families = []int{6}
		default:
			o.families = []int{4}
		}
	case "4", "6":
		n, _ := strconv.Atoi(o.af)
		if fam != 0 && fam != n {
			return usageErr("--af %s with -%d: choose one family", o.af, fam)
		}
		o.families = []int{n}
	case "both":
		if fam != 0 {
			return usageErr("--af both with -%d: choose one", fam)
		}
		o.families = []int{4, 6}
	default:
		return usageErr("--af %q: must be 4, 6 or both", o.af)
	}
	if lit.IsValid() {
		for _, f := range o.families {
			if (f == 4) != lit.Is4() {
				return usageErr("target %s is not an IPv%d address (--af, -4, -6)", lit, f)
			}
		}
	}
	if err := o.validateSelection(); err != nil {
		return err
	}
	if !isDNSName(o.qname) {
		return usageErr("--qname %q: not a valid DNS name", o.qname)
	}
	if o.portOK && o.proto != "tcp" {
		return usageErr("--port %d with -P %s: RIPE Atlas probes send %s traceroutes to a port of their own choosing (udp: 33434+paris_id); use -P tcp --port %d", o.port, o.proto, o.proto, o.port)
	}
	if err := portFlag("port", o.port); err != nil {
		return err
	}
	if o.wait <= 0 || o.wait > 24*time.Hour {
		return usageErr("--wait %s: must be above 0 and at most 24h", o.wait)
	}
	return nil
}

func (o *atlasRunOptions) validateSelection() error {
	given := 0
	for _, v := range []string{o.area, o.country, o.asn, o.prefix, o.probeIDs} {
		if v != "" {
			given++
		}
	}
	if given > 1 {
		return usageErr("--from-area, --from-country, --from-asn, --from-prefix, --from-probes: choose one probe selection")
	}
	if o.probes < 1 || o.probes > 10000 {
		return usageErr("--probes %d: must be between 1 and 10000", o.probes)
	}
	sel := atlas.ProbeSelection{Requested: o.probes}
	switch {
	case o.probeIDs != "":
		if o.probesSet {
			return usageErr("--probes with --from-probes: the list sets the number of probes")
		}
		var ids []int
		for _, f := range strings.Split(o.probeIDs, ",") {
			id, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || id < 1 {
				return usageErr("--from-probes %q: %q is not a probe id", o.probeIDs, f)
			}
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		sel = atlas.ProbeSelection{Requested: len(ids), Type: atlas.SelectProbes, Value: joinIDs(ids)}
	case o.country != "":
		cc := strings.ToUpper(o.country)
		if len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' {
			return usageErr("--from-country %q: want a two-letter ISO 3166 code (NL, DE, US)", o.country)
		}
		sel.Type, sel.Value = atlas.SelectCountry, cc
	case o.asn != "":
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToUpper(o.asn), "AS"), 10, 32)
		if err != nil || n == 0 {
			return usageErr("--from-asn %q: not an AS number", o.asn)
		}
		sel.Type, sel.Value = atlas.SelectASN, n
	case o.prefix != "":
		p, err := netip.ParsePrefix(o.prefix)
		if err != nil {
			return usageErr("--from-prefix %q: not an address prefix", o.prefix)
		}
		sel.Type, sel.Value = atlas.SelectPrefix, p.Masked().String()
	default:
		area := "WW"
		if o.area != "" {
			i := slices.IndexFunc(atlas.Areas, func(a string) bool { return strings.EqualFold(a, o.area) })
			if i < 0 {
				return usageErr("--from-area %q: must be one of %s", o.area, strings.Join(atlas.Areas, ", "))
			}
			area = atlas.Areas[i]
		}
		sel.Type, sel.Value = atlas.SelectArea, area
	}
	o.selection = sel
	return nil
}

func joinIDs(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, ",")
}

// requests are the creation requests of a run, one per family. A second
// family reuses the first's probes (its selection is filled in once the
// first request has created its measurements), unless explicit probe ids
// make both selections the same anyway.
func (o *atlasRunOptions) requests() []atlas.CreateRequest {
	out := make([]atlas.CreateRequest, 0, len(o.families))
	for i, af := range o.families {
		dnsProto := "UDP"
		if o.tcp {
			dnsProto = "TCP"
		}
		tr := atlas.TracerouteDefinition{AF: af, Target: o.target, Protocol: strings.ToUpper(o.proto), Paris: 16,
			Description: fmt.Sprintf("anycheck: Paris traceroute (%s) to %s", o.proto, o.target)}
		if o.proto == "tcp" {
			tr.Port = o.port
			tr.Description = fmt.Sprintf("anycheck: Paris traceroute (tcp/%d) to %s", o.port, o.target)
		}
		sel := o.selection
		if i > 0 && sel.Type != atlas.SelectProbes {
			sel = atlas.SameProbesAs(0, o.selection.Requested) // the msm id is known after the first request
		}
		out = append(out, atlas.CreateRequest{
			Definitions: []atlas.Definition{
				atlas.DNSDefinition{AF: af, Target: o.target, QueryClass: "CHAOS", QueryType: "TXT", QueryArgument: o.qname,
					Protocol: dnsProto, SetNSIDBit: true, IncludeABuf: true,
					Description: fmt.Sprintf("anycheck: CHAOS TXT %s (NSID) to %s", o.qname, o.target)},
				tr,
			},
			Probes:   []atlas.ProbeSelection{sel},
			IsOneoff: true,
		})
	}
	return out
}

// atlasMsm is one created or fetched measurement.
type atlasMsm = atlas.Created

func msmIDs(ms []atlasMsm) []int {
	ids := make([]int, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

func fetchCommand(ms []atlasMsm, common *atlasCommon) string {
	var b strings.Builder
	b.WriteString("anycheck atlas fetch")
	if common.apiURL != atlas.DefaultBaseURL {
		b.WriteString(" --atlas-url " + atlas.RedactURL(common.apiURL))
	}
	for _, m := range ms {
		b.WriteString(" " + strconv.Itoa(m.ID))
	}
	return b.String()
}

func runAtlasRun(ctx context.Context, o *atlasRunOptions) error {
	s, d := o.s, o.d
	reqs := o.requests()
	if o.dryRun {
		return printDryRun(s, o, reqs)
	}
	rs, err := o.common.prepare(o.g, d)
	if err != nil {
		return err
	}
	key, warning, err := o.common.key(d)
	if err != nil {
		return err
	}
	if warning != "" {
		warn(s, "%s", warning)
	}
	if key == "" {
		return usageErr("creating measurements needs a RIPE Atlas API key: set ATLAS_API_KEY or use --key-file FILE")
	}
	c := o.common.client(key, d)
	ms, err := createAll(ctx, c, reqs, s)
	if err != nil {
		return err
	}
	warn(s, "created measurements %s; results later with: %s", strings.Join(msmStrings(ms), ", "), fetchCommand(ms, &o.common))
	states, err := waitAll(ctx, c, ms, o.wait, s, d)
	partial := false
	switch {
	case ctx.Err() != nil:
		warn(s, "interrupted while waiting; the measurements go on running on RIPE Atlas: get their results with: %s", fetchCommand(ms, &o.common))
		// Nothing was downloaded: the report is empty, and says so.
		side := &compareSide{collector: catchment.NewCollector()}
		return writeCatchment(ctx, o.g, nil, rs.sites, []*compareSide{side}, newRunOutput(s, o.g, d, report.KindCompare), 0, true, render.CompareOptions{})
	case errors.Is(err, context.DeadlineExceeded):
		warn(s, "measurements still running after --wait %s; rendering the results so far (all of them later with: %s)", o.wait, fetchCommand(ms, &o.common))
		partial = true
	case err != nil:
		return err
	}
	noProbes := 0
	for _, st := range states {
		switch st.Status.ID {
		case atlas.StatusNoSuitableProbe:
			noProbes++
			warn(s, "measurement %d: no suitable probes (status %q)", st.ID, st.Status.Name)
			partial = true
		case atlas.StatusFailed, atlas.StatusForcedToStop:
			warn(s, "measurement %d ended %q; its results may be incomplete", st.ID, st.Status.Name)
			partial = true
		}
	}
	if noProbes == len(states) {
		return fmt.Errorf("no suitable probes for %s: RIPE Atlas found no connected probe to run measurements %s", describeSelection(o.selection), joinIDs(msmIDs(ms)))
	}
	return renderAtlas(ctx, c, ms, atlas.ResultsQuery{}, &o.common, rs, o.g, s, d, partial)
}

func msmStrings(ms []atlasMsm) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}

func describeSelection(sel atlas.ProbeSelection) string {
	switch sel.Type {
	case atlas.SelectProbes:
		return "--from-probes " + fmt.Sprint(sel.Value)
	case atlas.SelectMsm:
		return fmt.Sprintf("the probes of measurement %v", sel.Value)
	}
	return fmt.Sprintf("--from-%s %v", sel.Type, sel.Value)
}

// printDryRun writes the creation requests' bodies, indented, one JSON
// document each. The second family's selection names the first request's
// DNS measurement, which does not exist yet: its value is null here.
func printDryRun(s *streams, o *atlasRunOptions, reqs []atlas.CreateRequest) error {
	for i, r := range reqs {
		if r.Probes[0].Type == atlas.SelectMsm {
			r.Probes = []atlas.ProbeSelection{{Requested: r.Probes[0].Requested, Type: atlas.SelectMsm, Value: nil}}
			warn(s, "request %d reuses the probes of request 1's DNS measurement: its \"value\" is that measurement's id once created", i+1)
		}
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		warn(s, "dry run: would POST %s/api/v2/measurements/", atlas.RedactURL(strings.TrimRight(o.common.apiURL, "/")))
		if _, err := fmt.Fprintf(s.out, "%s\n", b); err != nil {
			return err
		}
	}
	return nil
}

// createAll creates the campaign's requests (atlas.CreateAll stops what
// it made when a later request fails) and says each measurement it could
// not stop.
func createAll(ctx context.Context, c *atlas.Client, reqs []atlas.CreateRequest, s *streams) ([]atlasMsm, error) {
	made, err := c.CreateAll(ctx, reqs)
	var ce *atlas.CreateError
	switch {
	case errors.As(err, &ce):
		for _, e := range ce.StopErrs {
			warn(s, "%v", e)
		}
		return nil, &exitError{code: ExitError, err: err, hint: hintOf(atlasError(ce.Err))}
	case err != nil:
		return nil, atlasError(err)
	}
	return made, nil
}

// atlasError gives an API error its exit code and a hint.
func atlasError(err error) error {
	var ae *atlas.APIError
	switch {
	case errors.Is(err, atlas.ErrNoKey):
		return usageErr("%v: set ATLAS_API_KEY or use --key-file FILE", err)
	case errors.As(err, &ae) && ae.Auth():
		return &exitError{code: ExitError, err: err, hint: "check the API key (ATLAS_API_KEY or --key-file): it must exist and be allowed to create measurements"}
	case errors.As(err, &ae) && ae.RateLimited():
		return &exitError{code: ExitError, err: err, hint: "RIPE Atlas is rate limiting this key; try again later"}
	case errors.As(err, &ae) && ae.Quota():
		return &exitError{code: ExitError, err: err, hint: "the account's credits or measurement limits are used up; see https://atlas.ripe.net/docs/getting-started/credits/"}
	}
	return err
}

// waitAll polls the measurements until they are done, --wait passes, or
// the run is interrupted, showing progress on a terminal stderr.
func waitAll(ctx context.Context, c *atlas.Client, ms []atlasMsm, wait time.Duration, s *streams, d *deps) ([]atlas.Measurement, error) {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	p := &atlasProgress{s: s}
	defer p.done()
	states, err := c.Wait(wctx, msmIDs(ms), atlas.WaitOptions{Poll: d.atlasPause, OnPoll: p.update})
	if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
		return states, atlasError(err)
	}
	return states, err
}

// atlasProgress is the live line on a terminal stderr.
type atlasProgress struct {
	s *streams
}

func (p *atlasProgress) update(ms []atlas.Measurement) {
	if !p.s.errTTY {
		return
	}
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("%d %s: %s, %d of %d probes reporting", m.ID, m.Type, m.Status.Name, m.Participants, m.ProbesScheduled))
	}
	p.s.status("%s", render.Escape(strings.Join(parts, " · ")))
}

func (p *atlasProgress) done() { p.s.clearStatus() }

type atlasFetchOptions struct {
	g           *globalOptions
	cmdIO       // its streams and dependencies
	common      atlasCommon
	ids         []int
	start, stop string
	from, until time.Time
}

func newAtlasFetchCmd(g *globalOptions, s *streams, d *deps, runF func(context.Context, *atlasFetchOptions) error) *cobra.Command {
	o := &atlasFetchOptions{g: g, cmdIO: cmdIO{s, d}}
	cmd := &cobra.Command{
		Use:   "fetch MSM_ID...",
		Short: "Render existing RIPE Atlas DNS and traceroute measurements as a catchment report",
		Long: `Download the results of existing RIPE Atlas measurements (public ones need
no key; $ATLAS_API_KEY or --key-file is sent when set) with the probes'
metadata, and render them like anycheck compare: DNS and traceroute results
of one probe join into one line per target and family. A periodic
measurement holds many results per probe: the table uses the latest, and
--start/--stop pick a time window (RFC 3339, a date, or UNIX seconds).`,
		Example: `  anycheck atlas fetch 70000001 70000002
  anycheck atlas fetch --start 2026-01-01 --stop 2026-01-02T12:00:00Z -o json 1001 1002
  anycheck atlas fetch --save results/ 70000001`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				id, err := strconv.Atoi(a)
				if err != nil || id < 1 {
					return usageErr("measurement id %q: not a number", a)
				}
				if !slices.Contains(o.ids, id) {
					o.ids = append(o.ids, id)
				}
			}
			if err := o.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runFailed(runAtlasFetch(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	o.common.register(f)
	f.StringVar(&o.start, "start", "", "only results from this time on (RFC 3339, YYYY-MM-DD or UNIX seconds)")
	f.StringVar(&o.stop, "stop", "", "only results up to this time")
	outputVar(cmd, g, formatText, compareFormats...)
	return cmd
}

func (o *atlasFetchOptions) validate() error {
	if err := o.common.validate(); err != nil {
		return err
	}
	var err error
	if o.from, err = parseWhen("--start", o.start); err != nil {
		return err
	}
	if o.until, err = parseWhen("--stop", o.stop); err != nil {
		return err
	}
	if !o.from.IsZero() && !o.until.IsZero() && o.until.Before(o.from) {
		return usageErr("--stop %s is before --start %s", o.stop, o.start)
	}
	return nil
}

// parseWhen reads a time: RFC 3339, a date (midnight UTC), or UNIX seconds.
func parseWhen(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.Unix(n, 0).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usageErr("%s %q: want RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02) or UNIX seconds", flag, v)
}

func runAtlasFetch(ctx context.Context, o *atlasFetchOptions) error {
	s, d := o.s, o.d
	rs, err := o.common.prepare(o.g, d)
	if err != nil {
		return err
	}
	key, warning, err := o.common.key(d)
	if err != nil {
		return err
	}
	if warning != "" {
		warn(s, "%s", warning)
	}
	c := o.common.client(key, d)
	ms := make([]atlasMsm, 0, len(o.ids))
	for _, id := range o.ids {
		m, err := c.Measurement(ctx, id)
		if err != nil {
			return atlasError(err)
		}
		if m.Type != "dns" && m.Type != "traceroute" {
			return usageErr("measurement %d is a %s measurement: anycheck reads dns and traceroute results", id, render.Escape(m.Type))
		}
		ms = append(ms, atlasMsm{ID: id, Type: m.Type, AF: m.AF, Target: m.Target})
	}
	return renderAtlas(ctx, c, ms, atlas.ResultsQuery{Start: o.from, Stop: o.until}, &o.common, rs, o.g, s, d, false)
}

// downloadError says an Atlas download's error as the command does: a
// failed save names --save.
func downloadError(err error) error {
	if errors.Is(err, atlas.ErrSave) {
		return fmt.Errorf("--%w", err) // "--save: …"
	}
	return atlasError(err)
}

// prepareSave makes the --save directory.
func prepareSave(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return usageErr("--save %s: %v", dir, err)
	}
	return nil
}
