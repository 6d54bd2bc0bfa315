package report

import (
	"os"
	"strings"
	"testing"
)

func TestReadCensusFile(t *testing.T) {
	for _, tc := range []struct {
		name, in, format string
		replies, sent    int
		err              string
	}{
		{"jsonl", `{"schema":"anycheck/v1","kind":"census-listen","type":"reply","reply":{"site":"a","census":"000000000000002a","sender":"a","target":"198.51.100.10","from":"198.51.100.10","seq":0,"ttl":61,"sent":"2026-12-01T10:00:00Z","received":"2026-12-01T10:00:00.001Z","elapsed_ms":1}}
{"schema":"anycheck/v1","kind":"census-listen","type":"end","tool":{"name":"anycheck","version":"x"},"started":"2026-12-01T10:00:00Z","vantage":{"sources":[]}}
`, CensusFileJSONL, 1, 0, ""},
		{"csv of a sender", "census,site,seq,target,at,error\n000000000000002a,a,0,198.51.100.10,2026-12-01T10:00:00Z,\n", CensusFileCSV, 0, 1, ""},
		{"verfploeter", "task_id,client_id,transmit_time,receive_time,send_receive_time_diff,source_address\n1,fra,1,2,1,198.51.100.1\n", CensusFileVerfploeter, 1, 0, ""},
		{"another kind", `{"schema":"anycheck/v1","kind":"id","type":"end"}`, CensusFileJSONL, 0, 0, `a "id" document`},
		{"bad address", "census,site,seq,target,at,error\n000000000000002a,a,0,nope,2026-12-01T10:00:00Z,\n", CensusFileCSV, 0, 0, "line 2: target"},
		{"bad site", "task_id,client_id,transmit_time,receive_time,send_receive_time_diff,source_address\n1,a b,1,2,1,198.51.100.1\n", CensusFileVerfploeter, 0, 0, "client_id"},
		{"not census", "hello\n", "", 0, 0, "not a census file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			replies, sent := 0, 0
			format, err := ReadCensusFile(strings.NewReader(tc.in), func(r CensusRecord) error {
				if r.Reply != nil {
					replies++
				}
				if r.Sent != nil {
					sent++
				}
				return nil
			})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || format != tc.format || replies != tc.replies || sent != tc.sent {
				t.Errorf("format %q, %d replies, %d sent, %v", format, replies, sent, err)
			}
		})
	}
}

func FuzzReadCensusFile(f *testing.F) {
	if b, err := os.ReadFile("../../testdata/census/verfploeter.csv"); err == nil {
		f.Add(string(b))
	}
	f.Add(`{"schema":"anycheck/v1","kind":"census-send","type":"sent","sent":{"census":"000000000000002a","site":"a","seq":0,"target":"198.51.100.10","at":"2026-12-01T10:00:00Z","error":null}}`)
	f.Add("site,census,sender,target,from,seq,ttl,sent,received,elapsed_ms\na,000000000000002a,a,198.51.100.10,198.51.100.10,1,61,2026-12-01T10:00:00Z,2026-12-01T10:00:00Z,0\n")
	f.Fuzz(func(t *testing.T, in string) {
		ReadCensusFile(strings.NewReader(in), func(r CensusRecord) error {
			if r.Reply != nil && (!r.Reply.Target.IsValid() || r.Reply.Site == "") {
				t.Fatalf("reply %+v", r.Reply)
			}
			if r.Sent != nil && !r.Sent.Target.IsValid() {
				t.Fatalf("sent %+v", r.Sent)
			}
			return nil
		})
	})
}
