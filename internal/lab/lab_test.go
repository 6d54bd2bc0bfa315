package lab

import (
	"context"
	"testing"
	"time"
)

func TestLabAnycastCatchments(t *testing.T) {
	ac := StartAnycast(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	seen := map[string]string{}
	for _, client := range ac.Clients() {
		want, ok := ac.InstanceOf(client)
		if !ok {
			t.Fatalf("InstanceOf(%s): unreachable in a fresh lab", client)
		}
		for _, f := range []Family{IPv4, IPv6} {
			id, err := ac.IdentifyFrom(ctx, client, f)
			if err != nil {
				t.Fatalf("%s %v: %v", client, f, err)
			}
			if id.Hostname != want.Identity || id.NSID != want.NSID {
				t.Errorf("%s %v: dig says hostname.bind %q NSID %q, want instance %s (%q, %q)",
					client, f, id.Hostname, id.NSID, want.Name, want.Identity, want.NSID)
			}
			seen[client] = id.Hostname
		}
	}
	if seen["c1"] == seen["c2"] {
		t.Errorf("both clients reach %q: catchments are not split", seen["c1"])
	}
}
