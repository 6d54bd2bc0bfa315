package lab

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLabChromiumSendsNothing: the browser of the HTML tests still renders
// a page and runs its scripts, and what the page asks of the network —
// an image and a fetch from a server on this host's loopback, a STUN
// request to an address literal (WebRTC, which no --host-resolver-rules
// stops) — never leaves chromium's namespace: the servers see nothing.
func TestLabChromiumSendsNothing(t *testing.T) {
	Require(t, "chromium")
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Write([]byte("reached"))
	}))
	defer srv.Close()
	stun, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stun.Close()
	var stunned atomic.Int32
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := stun.ReadFrom(buf); err != nil {
				return
			}
			stunned.Add(1)
		}
	}()
	page := `<!DOCTYPE html>
<html><head><title>offline</title></head><body>
<p id="p">rendered</p>
<img src="` + srv.URL + `/pixel.png">
<pre id="harness"></pre>
<script>
const pc = new RTCPeerConnection({iceServers: [{urls: "stun:` + stun.LocalAddr().String() + `"}]});
pc.createDataChannel("x");
pc.createOffer().then(o => pc.setLocalDescription(o));
fetch("` + srv.URL + `/fetch").then(r => r.text(), e => "failed").then(v => {
  document.getElementById("harness").textContent = JSON.stringify({
    Text: document.getElementById("p").textContent, Width: document.body.getBoundingClientRect().width, Fetch: v});
});
</script></body></html>`
	dir := t.TempDir()
	file := filepath.Join(dir, "page.html")
	if err := os.WriteFile(file, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, stderr := ChromiumDump(t, ctx, dir, file, 5*time.Second)
	var got struct {
		Text  string
		Width float64
		Fetch string
	}
	if err := json.Unmarshal([]byte(res), &got); err != nil {
		t.Fatalf("harness output %q: %v\nchromium stderr:\n%s", res, err, stderr)
	}
	if got.Text != "rendered" || got.Width <= 0 || strings.Contains(stderr, "Uncaught") {
		t.Errorf("page not rendered: %+v\n%s", got, stderr)
	}
	if n, s := asked.Load(), stunned.Load(); n != 0 || s != 0 || got.Fetch != "failed" {
		t.Errorf("the servers on the host's loopback got %d HTTP requests and %d STUN packets, the page's fetch %q: chromium reached the network", n, s, got.Fetch)
	}
}
