package measure

import (
	"encoding/hex"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/miekg/dns"
)

// Summarise reduces the answers of one flow to the identity of the instance
// that gave them. The instance is named by NSID when it is text (operators
// set it per server, and it rides on every answer), else by hostname.bind,
// else by id.server.
func Summarise(answers []Answer) Identity {
	var id Identity
	var nsid []byte
	for _, a := range answers {
		if !a.Replied() {
			// Not a reply to our query: nothing in it is evidence.
			continue
		}
		if nsid == nil && len(a.NSID) > 0 {
			nsid = a.NSID
		}
		if a.Status != StatusAnswered || len(a.TXT) == 0 {
			continue
		}
		var dst *string
		switch strings.ToLower(dns.Fqdn(a.Name)) {
		case NameHostnameBind:
			dst = &id.HostnameBind
		case NameIDServer:
			dst = &id.IDServer
		case NameVersionBind:
			dst = &id.VersionBind
		case NameVersionServer:
			dst = &id.VersionServer
		default:
			continue
		}
		if *dst == "" {
			*dst = a.TXT[0]
		}
	}
	if nsid != nil {
		id.NSID = DecodeNSID(nsid)
		id.NSIDHex = hex.EncodeToString(nsid)
	}
	switch {
	case id.NSID != "":
		id.Instance, id.Source = id.NSID, SourceNSID
	case id.HostnameBind != "":
		id.Instance, id.Source = id.HostnameBind, SourceHostnameBind
	case id.IDServer != "":
		id.Instance, id.Source = id.IDServer, SourceIDServer
	}
	// Compare the raw NSID bytes, not the decoded text: a binary NSID next
	// to a hostname.bind is still two different names for the instance.
	id.Disagree = nsid != nil && id.HostnameBind != "" && !strings.EqualFold(string(nsid), id.HostnameBind)
	return id
}

// DecodeNSID returns the NSID payload as text when it is printable UTF-8,
// else "" (callers keep the hex). RFC 5001 leaves the payload opaque; most
// operators put a host name or site code there.
func DecodeNSID(b []byte) string {
	if len(b) == 0 || !utf8.Valid(b) {
		return ""
	}
	s := string(b)
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return ""
		}
	}
	return s
}
