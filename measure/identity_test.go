package measure

import "testing"

func TestDecodeNSID(t *testing.T) {
	tests := []struct {
		desc string
		in   []byte
		want string
	}{
		{"nil", nil, ""},
		{"empty", []byte{}, ""},
		{"host name", []byte("k3.ams-ix.k.ripe.net"), "k3.ams-ix.k.ripe.net"},
		{"with spaces", []byte("gpdns-fra 12"), "gpdns-fra 12"},
		{"UTF-8 letters", []byte("zürich-1"), "zürich-1"},
		{"binary", []byte{0x00, 0xff, 0x10}, ""},
		{"invalid UTF-8", []byte("abc\xff"), ""},
		{"terminal escape", []byte("a\x1b[2Jb"), ""},
		{"newline", []byte("a\nb"), ""},
		{"NUL at the end", []byte("abc\x00"), ""},
		{"bidi override", []byte("a\u202eb"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := DecodeNSID(tt.in); got != tt.want {
				t.Errorf("DecodeNSID(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSummarise(t *testing.T) {
	answered := func(name string, nsid []byte, txt ...string) Answer {
		return Answer{Name: name, Status: StatusAnswered, TXT: txt, NSID: nsid}
	}
	tests := []struct {
		desc    string
		answers []Answer
		want    Identity
	}{
		{
			desc: "NSID names the instance, hostname.bind disagrees",
			answers: []Answer{
				answered(NameHostnameBind, []byte("g1-fra-1"), "g1.fra"),
				answered(NameIDServer, []byte("g1-fra-1"), "g1.fra.example"),
				answered(NameVersionBind, []byte("g1-fra-1"), "NSD 4.8.0"),
				answered(NameVersionServer, nil, "NSD 4.8.0 (server)"),
			},
			want: Identity{
				Instance: "g1-fra-1", Source: "nsid", NSID: "g1-fra-1", NSIDHex: "67312d6672612d31",
				HostnameBind: "g1.fra", IDServer: "g1.fra.example", VersionBind: "NSD 4.8.0", VersionServer: "NSD 4.8.0 (server)",
				Disagree: true,
			},
		},
		{
			desc: "NSID equal to hostname.bind (case aside) agrees",
			answers: []Answer{
				answered(NameHostnameBind, []byte("NS1.example"), "ns1.example"),
			},
			want: Identity{Instance: "NS1.example", Source: "nsid", NSID: "NS1.example", NSIDHex: "4e53312e6578616d706c65", HostnameBind: "ns1.example"},
		},
		{
			desc: "no NSID: hostname.bind",
			answers: []Answer{
				answered(NameHostnameBind, nil, "ns1.fi-hel.k.ripe.net"),
				answered(NameIDServer, nil, "other"),
			},
			want: Identity{Instance: "ns1.fi-hel.k.ripe.net", Source: "hostname.bind", HostnameBind: "ns1.fi-hel.k.ripe.net", IDServer: "other"},
		},
		{
			desc: "hostname.bind refused: id.server",
			answers: []Answer{
				{Name: NameHostnameBind, Status: StatusRefused, Rcode: 5},
				answered(NameIDServer, nil, "res300.vie.rrdns.pch.net"),
			},
			want: Identity{Instance: "res300.vie.rrdns.pch.net", Source: "id.server", IDServer: "res300.vie.rrdns.pch.net"},
		},
		{
			desc: "binary NSID: hex only, hostname.bind names the instance and disagrees",
			answers: []Answer{
				answered(NameHostnameBind, []byte{0xde, 0xad, 0x00}, "b1"),
			},
			want: Identity{Instance: "b1", Source: "hostname.bind", NSIDHex: "dead00", HostnameBind: "b1", Disagree: true},
		},
		{
			desc: "NSID from a refused answer still counts; first TXT string; names compared without case",
			answers: []Answer{
				{Name: "HOSTNAME.BIND", Status: StatusAnswered, TXT: []string{"first", "second"}},
				{Name: NameVersionBind, Status: StatusRefused, Rcode: 5, NSID: []byte("n1")},
			},
			want: Identity{Instance: "n1", Source: "nsid", NSID: "n1", NSIDHex: "6e31", HostnameBind: "first", Disagree: true},
		},
		{
			desc: "malformed and timed-out answers are not evidence",
			answers: []Answer{
				{Name: NameHostnameBind, Status: StatusMalformed, Rcode: -1, NSID: []byte("spoof")},
				{Name: NameIDServer, Status: StatusTimeout, Rcode: -1},
			},
			want: Identity{},
		},
		{
			desc: "empty answers name nothing",
			answers: []Answer{
				{Name: NameHostnameBind, Status: StatusEmpty},
				{Name: NameVersionBind, Status: StatusEmpty},
			},
			want: Identity{},
		},
		{desc: "no answers", want: Identity{}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := Summarise(tt.answers); got != tt.want {
				t.Errorf("Summarise:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
