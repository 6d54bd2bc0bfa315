package report

import (
	"github.com/anycheck/anycheck/whois"
)

// OriginDTO is an address's routed origin on the wire.
type OriginDTO struct {
	Address string `json:"address"` // the address looked up
	// ASNs are the origin ASes of the most specific announced prefix
	// holding it (more than one for a prefix with several origins, as
	// anycast services have); empty when none.
	ASNs      []uint32 `json:"asns"`
	Prefix    string   `json:"prefix,omitempty"`    // that prefix
	ASName    string   `json:"as_name,omitempty"`   // the first origin AS's name (untrusted)
	Country   string   `json:"country,omitempty"`   // the registry's country code for the prefix
	Registry  string   `json:"registry,omitempty"`  // the registry that allocated it (arin, ripencc, …)
	Allocated string   `json:"allocated,omitempty"` // when, as the registry says
	// Source is where the answer came from: "cymru" (Team Cymru's
	// whois), "cymru-dns" (its DNS interface), "file" (--asn file:),
	// "special" (a special-purpose address, never looked up).
	Source      string `json:"source"`
	Cached      bool   `json:"cached"`            // the answer came from the local cache
	Special     string `json:"special,omitempty"` // "private", "loopback", ...: never looked up
	Unannounced bool   `json:"unannounced"`       // no prefix holding the address is announced
}

// WhoisResult is one address of `anycheck whois`.
type WhoisResult struct {
	Input  string     `json:"input"`              // the address or name as the user wrote it
	Target string     `json:"target" schema:"ip"` // the address looked up
	Name   string     `json:"name,omitempty"`     // reverse DNS name (untrusted)
	Origin *OriginDTO `json:"origin"`             // null when the source knows nothing
}

// FromOrigin converts one origin.
func FromOrigin(o whois.Origin) OriginDTO {
	d := OriginDTO{
		Address:     addrString(o.Addr),
		ASNs:        append([]uint32{}, o.ASNs...),
		ASName:      o.ASName,
		Country:     o.Country,
		Registry:    o.Registry,
		Allocated:   o.Allocated,
		Source:      o.Source,
		Cached:      o.Cached,
		Special:     o.Special,
		Unannounced: o.Unannounced,
	}
	if o.Prefix.IsValid() {
		d.Prefix = o.Prefix.String()
	}
	return d
}
