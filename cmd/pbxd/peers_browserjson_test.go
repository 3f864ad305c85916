package main

// The driver's scenario and result formats (see
// testdata/browser/README.md).

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// browserScenario is what run.mjs runs (README.md in testdata/browser
// describes every field).
type browserScenario struct {
	// Name names the artifacts (screenshots, console log); default the
	// test's name.
	Name string `json:"name"`
	// Library is "jssip" or "sipjs".
	Library string `json:"library"`
	// WSURL is pbxd's SIP WebSocket ("ws://127.0.0.1:port").
	WSURL string `json:"wsUrl"`
	// URI is the account's address of record; User and Password its
	// digest credentials.
	URI      string `json:"uri"`
	User     string `json:"user"`
	Password string `json:"password"`
	// Expires is the registration's lifetime in seconds; default 600.
	Expires int `json:"expires,omitempty"`
	// Options are merged into the library's UA configuration.
	Options map[string]any `json:"options,omitempty"`
	// Debug turns the library's SIP logging on (in the console log).
	Debug bool `json:"debug,omitempty"`
	// FakeAudio is the WAV file the fake microphone plays (looped);
	// runBrowser writes one with ToneHz when it is empty.
	FakeAudio string `json:"fakeAudio,omitempty"`
	// ToneHz is that tone; default browserToneHz.
	ToneHz float64 `json:"-"`
	// Chromium is the browser binary; default the one needBrowser found.
	Chromium string `json:"chromium,omitempty"`
	// Artifacts is where screenshots and the console log go; default
	// artifacts/browser/<test> in the repository.
	Artifacts string `json:"artifacts,omitempty"`
	// Timeout bounds the whole scenario (default 60s), StepTimeout each
	// step that has none of its own (default 20s).
	Timeout     time.Duration `json:"-"`
	StepTimeout time.Duration `json:"-"`
	// Steps run in order; the first that fails ends the scenario (unless
	// it is Optional), which then hangs up, unregisters and closes the
	// browser.
	Steps []browserStep `json:"steps"`
	// PageURL, when set, opens that page (one pbxd serves, such as /phone)
	// instead of the library test pages; steps then drive its controls.
	PageURL string `json:"pageUrl,omitempty"`
}

// browserStep is one thing the page does. Do is one of register,
// unregister, call (Target), answer (waits for an incoming call), hangup,
// waitEnded (until the other side hangs up), dtmf (Tones, TransportType
// "RFC2833" or "INFO", Duration and InterToneGap in ms), wait (Ms),
// waitEvent (Event, Count), waitSignal (Name: until browserRun.Signal),
// stats (Label) and screenshot (Name).
type browserStep struct {
	Do            string `json:"do"`
	Target        string `json:"target,omitempty"`
	Tones         string `json:"tones,omitempty"`
	TransportType string `json:"transportType,omitempty"`
	Duration      int    `json:"duration,omitempty"`
	InterToneGap  int    `json:"interToneGap,omitempty"`
	Ms            int    `json:"ms,omitempty"`
	Event         string `json:"event,omitempty"`
	Count         int    `json:"count,omitempty"`
	Label         string `json:"label,omitempty"`
	Name          string `json:"name,omitempty"`
	TimeoutMs     int    `json:"timeoutMs,omitempty"`
	Optional      bool   `json:"optional,omitempty"`
	// For pages driven through their controls (PageURL): a CSS selector
	// to click, fill (with Value) or check, or a JavaScript expression to
	// wait for or evaluate (its result lands in the step's Value).
	Selector string `json:"selector,omitempty"`
	Value    string `json:"value,omitempty"`
	Expr     string `json:"expr,omitempty"`
}

// browserResult is what run.mjs printed.
type browserResult struct {
	OK          bool                `json:"ok"`
	Error       string              `json:"error"`
	Name        string              `json:"name"`
	Library     string              `json:"library"`
	Version     string              `json:"version"`
	Browser     string              `json:"browser"`
	Origin      string              `json:"origin"`
	ElapsedMs   int                 `json:"elapsedMs"`
	Steps       []browserStepResult `json:"steps"`
	Events      []browserEvent      `json:"events"`
	Stats       []browserStats      `json:"stats"`
	SIP         []browserSIP        `json:"sip"`
	Screenshots []string            `json:"screenshots"`
	ConsoleLog  string              `json:"consoleLog"`
	PageErrors  []string            `json:"pageErrors"`
	// Stderr is what run.mjs printed besides its progress lines.
	Stderr string `json:"-"`
	// ExitCode is run.mjs's: 0 passed, 1 a step failed, 2 the harness
	// failed, -1 killed.
	ExitCode int `json:"-"`
}

// browserStepResult is one step's outcome; Value is what the page's
// method returned.
type browserStepResult struct {
	Do    string          `json:"do"`
	Name  string          `json:"name"`
	OK    bool            `json:"ok"`
	Ms    int             `json:"ms"`
	At    int             `json:"at"`
	Error string          `json:"error"`
	Value json.RawMessage `json:"value"`
}

// browserEvent is an event of the page: registered, unregistered,
// registrationFailed (Cause, Status), connected, disconnected, incoming
// (From), progress and accepted (Status), established (Direction,
// LocalSDP, RemoteSDP), ended and failed (Originator, Cause, Status),
// ice (State), microphone, remotePlaying, dtmf (received), dtmfSent,
// error (Where, Message). T is ms since the page loaded, At since run.mjs
// started.
type browserEvent struct {
	Type       string `json:"type"`
	T          int    `json:"t"`
	At         int    `json:"at"`
	Status     int    `json:"status"`
	Cause      string `json:"cause"`
	Contact    string `json:"contact"`
	From       string `json:"from"`
	Direction  string `json:"direction"`
	Originator string `json:"originator"`
	State      string `json:"state"`
	Tone       string `json:"tone"`
	Transport  string `json:"transport"`
	Where      string `json:"where"`
	Message    string `json:"message"`
	LocalSDP   string `json:"localSdp"`
	RemoteSDP  string `json:"remoteSdp"`
}

// browserStats is the page's getStats summary of the call.
type browserStats struct {
	Label              string `json:"label"`
	At                 int    `json:"at"`
	ConnectionState    string `json:"connectionState"`
	IceConnectionState string `json:"iceConnectionState"`
	DTLSState          string `json:"dtlsState"`
	Inbound            *struct {
		PacketsReceived      int     `json:"packetsReceived"`
		PacketsLost          int     `json:"packetsLost"`
		BytesReceived        int     `json:"bytesReceived"`
		Jitter               float64 `json:"jitter"`
		AudioLevel           float64 `json:"audioLevel"`
		TotalAudioEnergy     float64 `json:"totalAudioEnergy"`
		TotalSamplesReceived int     `json:"totalSamplesReceived"`
		ConcealedSamples     int     `json:"concealedSamples"`
	} `json:"inbound"`
	Outbound *struct {
		PacketsSent int `json:"packetsSent"`
		BytesSent   int `json:"bytesSent"`
	} `json:"outbound"`
	Source *struct {
		AudioLevel float64 `json:"audioLevel"`
	} `json:"source"`
	Codec         string `json:"codec"`
	InboundCodec  string `json:"inboundCodec"`
	OutboundCodec string `json:"outboundCodec"`
	SelectedPair  *struct {
		Local  string `json:"local"`
		Remote string `json:"remote"`
		State  string `json:"state"`
	} `json:"selectedPair"`
	// RemotePeak is the loudest frequency (over 100 Hz) of what the page
	// hears, from a Web Audio analyser on the remote track.
	RemotePeak *struct {
		Hz float64 `json:"hz"`
		DB float64 `json:"db"`
	} `json:"remotePeak"`
	RemoteAudio *struct {
		Paused      bool    `json:"paused"`
		CurrentTime float64 `json:"currentTime"`
	} `json:"remoteAudio"`
}

// browserSIP is one WebSocket frame the page sent ("out") or received.
type browserSIP struct {
	T    int    `json:"t"`
	Dir  string `json:"dir"`
	Text string `json:"text"`
}

// FirstLine is the frame's request or status line.
func (m browserSIP) FirstLine() string {
	line, _, _ := strings.Cut(m.Text, "\n")
	return strings.TrimSpace(line)
}

// Event returns the first event of type typ.
func (r browserResult) Event(typ string) (browserEvent, bool) {
	for _, e := range r.Events {
		if e.Type == typ {
			return e, true
		}
	}
	return browserEvent{}, false
}

// EventsOf returns the events of type typ, in order.
func (r browserResult) EventsOf(typ string) []browserEvent {
	var out []browserEvent
	for _, e := range r.Events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// Step returns the first step that did do.
func (r browserResult) Step(do string) (browserStepResult, bool) {
	for _, s := range r.Steps {
		if s.Do == do {
			return s, true
		}
	}
	return browserStepResult{}, false
}

// LastStats is the last getStats summary (zero if there was none).
func (r browserResult) LastStats() browserStats {
	if len(r.Stats) == 0 {
		return browserStats{}
	}
	return r.Stats[len(r.Stats)-1]
}

// SIPTrace is the SIP flow over the WebSocket, one line per message.
func (r browserResult) SIPTrace() string {
	var b strings.Builder
	for _, m := range r.SIP {
		dir := "<-"
		if m.Dir == "out" {
			dir = "->"
		}
		fmt.Fprintf(&b, "%6.2fs %s %s\n", float64(m.T)/1000, dir, m.FirstLine())
	}
	return b.String()
}

// SIPFirst returns the first frame in direction dir whose first line
// starts with prefix ("REGISTER", "SIP/2.0 200", "INVITE").
func (r browserResult) SIPFirst(dir, prefix string) (browserSIP, bool) {
	for _, m := range r.SIP {
		if m.Dir == dir && strings.HasPrefix(m.FirstLine(), prefix) {
			return m, true
		}
	}
	return browserSIP{}, false
}

// emptyJSONField matches a field left at its zero value, to shorten the
// events in failure output.
var emptyJSONField = regexp.MustCompile(`,?"[a-zA-Z]+":(""|0)`)

func (r browserResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "browser %s (%s %s, Chromium %s): ok=%v exit %d in %dms: %s\n", r.Name, r.Library, r.Version, r.Browser, r.OK, r.ExitCode, r.ElapsedMs, r.Error)
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "  step %s ok=%v %dms %s %s\n", s.Do, s.OK, s.Ms, s.Error, tail(string(s.Value), 300))
	}
	for _, e := range r.Events {
		e.LocalSDP, e.RemoteSDP = "", ""
		raw, _ := json.Marshal(e)
		fmt.Fprintf(&b, "  event %s\n", emptyJSONField.ReplaceAll(raw, nil))
	}
	fmt.Fprintf(&b, "SIP over the WebSocket:\n%s", r.SIPTrace())
	if !r.OK && len(r.SIP) > 0 {
		// The last messages in full, where it went wrong.
		var full strings.Builder
		for _, m := range r.SIP[max(0, len(r.SIP)-4):] {
			fmt.Fprintf(&full, "--- %s\n%s\n", m.Dir, strings.TrimSpace(m.Text))
		}
		b.WriteString(tail(full.String(), 6000))
	}
	if len(r.PageErrors) > 0 {
		fmt.Fprintf(&b, "page errors: %q\n", r.PageErrors)
	}
	fmt.Fprintf(&b, "screenshots %v, console log %s\n", r.Screenshots, r.ConsoleLog)
	if r.Stderr != "" {
		fmt.Fprintf(&b, "stderr:\n%s\n", tail(r.Stderr, 3000))
	}
	return b.String()
}

// --- prerequisites ---
