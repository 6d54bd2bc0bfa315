package report

import (
	"github.com/anycheck/anycheck/whois"
)

// OriginDTO is an address's routed origin on the wire.
type OriginDTO struct {
	Address     string   `json:"address"`
	ASNs        []uint32 `json:"asns"`
	Prefix      string   `json:"prefix,omitempty"`
	ASName      string   `json:"as_name,omitempty"`
	Country     string   `json:"country,omitempty"`
	Registry    string   `json:"registry,omitempty"`
	Allocated   string   `json:"allocated,omitempty"`
	Source      string   `json:"source"`
	Cached      bool     `json:"cached"`
	Special     string   `json:"special,omitempty"` // "private", "loopback", ...: never looked up
	Unannounced bool     `json:"unannounced"`
}

// WhoisResult is one address of `anycheck whois`.
type WhoisResult struct {
	Input  string     `json:"input"`
	Name   string     `json:"name,omitempty"` // reverse DNS name (untrusted)
	Origin *OriginDTO `json:"origin"`         // null when the source knows nothing
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
