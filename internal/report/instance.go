package report

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/anycheck/anycheck/catchment"
	"github.com/anycheck/anycheck/measure"
)

// TimeLayout is how every time in the contract is written: RFC 3339, UTC,
// with fixed millisecond precision, so jq's fromdate reads it after one
// documented sub("\\.[0-9]+"; "").
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Time writes t in TimeLayout; "" for the zero time.
func Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

// ParseTime reads a time of the contract (either version's precision).
func ParseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

// OptString is a string written as JSON null when it is empty: a field
// that is there in every object, null where there is nothing to say.
type OptString string

// MarshalJSON writes null for "".
func (s OptString) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(s))
}

// InstanceDTO is what a set of answers says about the instance: one
// object, at one path in every command (.results[].flows[].instance).
type InstanceDTO struct {
	// Name is the instance: the NSID when it is text, else hostname.bind,
	// else id.server; null when the answers named none.
	Name OptString `json:"name"`
	// Source says which answer Name is: "nsid", "hostname.bind",
	// "id.server" ("census" in compare for a census line), or "" when
	// there is no name.
	Source        string    `json:"source"`
	NSID          OptString `json:"nsid"`           // the NSID as text; null when absent or not printable
	NSIDHex       OptString `json:"nsid_hex"`       // the NSID as lower-case hex; null when absent
	HostnameBind  OptString `json:"hostname_bind"`  // the first TXT string of hostname.bind; null when none
	IDServer      OptString `json:"id_server"`      // the first TXT string of id.server; null when none
	VersionBind   OptString `json:"version_bind"`   // version.bind, when asked (id --version); null otherwise
	VersionServer OptString `json:"version_server"` // version.server, when asked; null otherwise
	// Disagree is set when the NSID and hostname.bind both name the
	// instance and differ.
	Disagree bool `json:"nsid_hostname_disagree"`
	// Site is where the instance is, from its name (the site-hint table);
	// null when the name places no site.
	Site *SiteDTO `json:"site"`
}

// FromIdentity converts an identity and the site its name places (the
// zero hint for none).
func FromIdentity(id measure.Identity, site catchment.SiteHint) InstanceDTO {
	return InstanceDTO{
		Name: OptString(id.Instance), Source: id.Source, NSID: OptString(id.NSID), NSIDHex: OptString(id.NSIDHex),
		HostnameBind: OptString(id.HostnameBind), IDServer: OptString(id.IDServer),
		VersionBind: OptString(id.VersionBind), VersionServer: OptString(id.VersionServer),
		Disagree: id.Disagree, Site: siteDTO(site),
	}
}

// InstanceOf is FromIdentity with the site the table gives the identity
// at target (nil sites: none).
func InstanceOf(id measure.Identity, target netip.Addr, sites *catchment.Sites) InstanceDTO {
	h, _ := sites.HintFor(target, id.Instance)
	return FromIdentity(id, h)
}

// Identity is the instance in the model's vocabulary.
func (in InstanceDTO) Identity() measure.Identity {
	return measure.Identity{Instance: string(in.Name), Source: in.Source, NSID: string(in.NSID), NSIDHex: string(in.NSIDHex),
		HostnameBind: string(in.HostnameBind), IDServer: string(in.IDServer), VersionBind: string(in.VersionBind),
		VersionServer: string(in.VersionServer), Disagree: in.Disagree}
}

// FlowDTO is a flow's fixed 5-tuple (with TOS and IPv6 flow label for a
// traced flow).
type FlowDTO struct {
	Protocol string `json:"protocol" schema:"enum=udp|tcp|icmp|"` // "udp", "tcp" or "icmp"; "" when the input does not say
	// Src is the bound source address (never 0.0.0.0 or ::); null when
	// no socket was opened or the result does not say.
	Src OptString `json:"src" schema:"ip"`
	// Sport is the source port (ICMP: the echo identifier); 0 when
	// unknown (RIPE Atlas results do not say).
	Sport     int    `json:"sport" schema:"min=0,max=65535"`
	Dst       string `json:"dst" schema:"ip"`                // the destination address: the target
	Dport     int    `json:"dport" schema:"min=0,max=65535"` // the destination port; 0 for ICMP or when unknown
	TOS       int    `json:"tos"`                            // IPv4 TOS / IPv6 traffic class
	FlowLabel int    `json:"flow_label"`                     // IPv6 flow label
}

// flowOf is the DTO of a local flow: its bound source (an unspecified
// address, what a socket bound to "any" reports, is left out) and its
// destination.
func flowOf(proto string, src, dst netip.AddrPort) FlowDTO {
	f := FlowDTO{Protocol: proto, Sport: int(src.Port()), Dst: addrString(dst.Addr()), Dport: int(dst.Port())}
	if a := src.Addr(); a.IsValid() && !a.IsUnspecified() {
		f.Src = OptString(a.Unmap().String())
	}
	return f
}
