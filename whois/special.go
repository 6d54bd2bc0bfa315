package whois

import "net/netip"

// specialRange is one block of RFC 6890 special-purpose space that is never
// routed on the Internet, so asking a public service about it only leaks
// the operator's internal addressing.
type specialRange struct {
	prefix netip.Prefix
	label  string
}

// specialRanges is ordered most specific first where blocks nest (0.0.0.0/32
// inside 0.0.0.0/8). The documentation ranges (192.0.2.0/24, 198.51.100.0/24,
// 203.0.113.0/24, 2001:db8::/32) are deliberately absent: the labs announce
// them and look them up like public space.
var specialRanges = func() []specialRange {
	rows := []struct{ p, label string }{
		{"0.0.0.0/32", "unspecified"},
		{"0.0.0.0/8", "this-network"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "cgnat"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local"},
		{"172.16.0.0/12", "private"},
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "benchmarking"},
		{"224.0.0.0/4", "multicast"},
		{"255.255.255.255/32", "broadcast"},
		{"240.0.0.0/4", "reserved"},
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"100::/64", "discard"},
		{"64:ff9b:1::/48", "private"}, // RFC 8215 local-use NAT64
		{"2001:2::/48", "benchmarking"},
		{"fc00::/7", "ula"},
		{"fe80::/10", "link-local"},
		{"ff00::/8", "multicast"},
	}
	out := make([]specialRange, len(rows))
	for i, r := range rows {
		out[i] = specialRange{netip.MustParsePrefix(r.p), r.label}
	}
	return out
}()

// Special returns a label for addresses that are never sent to a lookup
// service ("private", "cgnat", "ula", "loopback", "link-local",
// "unspecified", "multicast", "this-network", "benchmarking", "reserved",
// "broadcast", "discard"), or "" for addresses that may be looked up.
// IPv4-mapped IPv6 addresses are classified as the IPv4 address they carry;
// an invalid address is "unspecified".
func Special(a netip.Addr) string {
	if !a.IsValid() {
		return "unspecified"
	}
	a = a.Unmap().WithZone("")
	for _, r := range specialRanges {
		if r.prefix.Contains(a) {
			return r.label
		}
	}
	return ""
}
