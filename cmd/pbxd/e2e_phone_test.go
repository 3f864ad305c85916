package main

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"pbxd/media/tone"
)

// TestPhonePage drives pbxd's own softphone page in headless Chromium: an
// agent signs in, connects this browser (pbxd rings it: the WebRTC offer
// comes over the event stream and the page answers), dials a SIPp phone,
// mutes (the phone stops hearing the browser's tone while the browser
// still hears the phone) and unmutes, hangs up (both legs end) and
// disconnects. Screenshots of each stage are saved as artifacts.
func TestPhonePage(t *testing.T) {
	t.Parallel()
	b := startCallBox(t)
	b.agentUser("webagent", "851")
	b.phoneUser("webcust", "852", nil)
	customer := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", Register: b.registration("webcust-dev"), Audio: 40 * time.Second, Timeout: 90 * time.Second})
	c := startRTPCapture(t, customer.MediaPort)

	wait := func(expr string, ms int) browserStep { return browserStep{Do: "waitFor", Expr: expr, TimeoutMs: ms} }
	res := runBrowser(t, browserScenario{
		PageURL: b.base + "/phone",
		Timeout: 90 * time.Second,
		Steps: []browserStep{
			{Do: "screenshot", Name: "sign-in"},
			{Do: "fill", Selector: "#username", Value: "webagent"},
			{Do: "fill", Selector: "#password", Value: "pw-webagent-123"},
			{Do: "click", Selector: "#login"},
			wait(`!document.getElementById("phone-panel").hidden`, 10000),
			{Do: "check", Selector: `input[name=target][value=browser]`},
			{Do: "click", Selector: "#connect"},
			wait(`window.pbxdPhone.connection === "connected"`, 20000),
			{Do: "screenshot", Name: "connected"},
			{Do: "fill", Selector: "#number", Value: "852"},
			{Do: "click", Selector: "#dial"},
			wait(`window.pbxdPhone.calls.length === 1 && window.pbxdPhone.calls[0].state === "talking"`, 20000),
			{Do: "wait", Ms: 2000},
			{Do: "evaluate", Expr: `window.pbxdPhone.stats()`, Name: "talking"},
			{Do: "screenshot", Name: "talking"},
			{Do: "click", Selector: "#mute", Name: "mute"},
			wait(`window.pbxdPhone.inMute === true`, 5000),
			{Do: "wait", Ms: 1500},
			{Do: "screenshot", Name: "muted"},
			{Do: "click", Selector: "#mute", Name: "unmute"},
			wait(`window.pbxdPhone.inMute === false`, 5000),
			{Do: "wait", Ms: 1500},
			{Do: "click", Selector: "#hangup", Name: "hangup"},
			wait(`window.pbxdPhone.calls.length === 0`, 10000),
			{Do: "screenshot", Name: "hung-up"},
			{Do: "click", Selector: "#disconnect"},
			wait(`window.pbxdPhone.connection === "disconnected"`, 10000),
			{Do: "screenshot", Name: "disconnected"},
		},
	})
	if !res.OK {
		t.Fatalf("the phone page: %v", res)
	}
	customer.Finish(5 * time.Second)
	c.Stop()

	// When the page clicked mute and unmute, in wall-clock time: a click's
	// start and the moment the browser reported it done (the page's API
	// request may already have been answered by then).
	type click struct{ started, done time.Time }
	clicks := map[string]click{}
	var stats struct {
		Inbound *struct {
			PacketsReceived int     `json:"packetsReceived"`
			AudioLevel      float64 `json:"audioLevel"`
		} `json:"inbound"`
		Outbound *struct {
			PacketsSent int `json:"packetsSent"`
		} `json:"outbound"`
	}
	for _, st := range res.Steps {
		var v struct {
			Started int64           `json:"started"`
			Wall    int64           `json:"wall"`
			Result  json.RawMessage `json:"result"`
		}
		_ = json.Unmarshal(st.Value, &v)
		switch st.Do {
		case "click":
			clicks[st.Name] = click{time.UnixMilli(v.Started), time.UnixMilli(v.Wall)}
		case "evaluate":
			_ = json.Unmarshal(v.Result, &stats)
		}
	}
	mute, unmute, hangup := clicks["mute"], clicks["unmute"], clicks["hangup"]
	if mute.started.IsZero() || unmute.started.IsZero() || hangup.started.IsZero() {
		t.Fatalf("clicks not timed: %v", clicks)
	}
	if stats.Inbound == nil || stats.Inbound.PacketsReceived < 50 || stats.Inbound.AudioLevel <= 0 || stats.Outbound == nil || stats.Outbound.PacketsSent < 50 {
		t.Errorf("the page's audio statistics: in %+v out %+v", stats.Inbound, stats.Outbound)
	}
	share := func(from, to time.Time) float64 {
		f := c.ToDuring(customer.MediaPort, from, to)
		return tone.Detect(f.Samples, audioRate, []float64{browserToneHz})[browserToneHz]
	}
	if s := share(mute.started.Add(-1500*time.Millisecond), mute.started); s < tone.PresentRatio {
		t.Errorf("before mute the phone heard the browser's tone at %.3f", s)
	}
	if s := share(mute.done.Add(300*time.Millisecond), unmute.started); s >= tone.AbsentRatio {
		t.Errorf("while muted the phone still heard the browser's tone at %.3f", s)
	}
	if s := share(unmute.done.Add(300*time.Millisecond), hangup.started); s < tone.PresentRatio {
		t.Errorf("after unmute the phone heard the browser's tone at only %.3f", s)
	}
	// Hanging up ended the phone's leg too.
	if got := customer.Wait().Requests(); !slices.Contains(got, "BYE") {
		t.Errorf("the phone got %v, want a BYE", got)
	}
	wantWorkitem(t, b.lastWorkitem(), map[string]any{"to": "852", "endReason": "completed", "hangupBy": "agent"})
	if len(res.Screenshots) < 6 {
		t.Errorf("screenshots: %v", res.Screenshots)
	}
}
