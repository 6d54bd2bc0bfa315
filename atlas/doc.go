// Package atlas works with RIPE Atlas: it reads measurement results into
// anycheck's catchment model, and (client files) talks to the Atlas API.
//
// # Result reader
//
// NewReader streams a result file — a JSON array, one result per line (any
// sequence of JSON objects), either gzip-compressed, told from the content
// — one Result at a time, never the whole file: Next returns each result,
// a *ResultError for one bad result (the caller warns and goes on), or an
// error that ends the file (truncated JSON), naming the result index.
// ParseResult is the pure parser of one result (fuzzed). The reader frames
// each value in a byte window (strings and brackets tracked, nothing
// decoded), parses it once with fastjson and decodes the fields it needs
// from that tree — no reflection, no second pass — which keeps reading
// 10,000 traceroutes well ahead of jq. In a file of one result per line, a
// broken line costs that result only: reading goes on at the next line
// that starts with '{'.
//
// Traceroute results (UDP, ICMP, TCP; paris_id; {"x":"*"} timeouts; late
// replies without RTT; "err" unreachable codes; hop-level "error"; icmpext
// MPLS label stacks; the final "hop 255" probe; ittl and edst) and DNS
// results (abuf decoded with miekg/dns and classified like anycheck's own
// answers, NSID from the OPT record; the probe-parsed "answers" form
// without abuf, RDATA as a string or a list; resultset[]; error
// {"timeout": N}; firmware 4400 field names) are read. Other types (ping,
// http, …) are a ResultError naming the type.
//
// Result.Observations turns a result into catchment observations keyed by
// the probe ("atlas:<prb_id>"), so DNS and traceroute results of one probe
// and target join into one catchment-table line (catchment.Collector keeps
// the latest of each and counts changes in periodic measurements).
//
// The reader prints nothing, keeps no globals and does no I/O beyond the
// reader it is given.
package atlas
