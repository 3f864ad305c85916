package main

// Headless Chromium as a browser softphone: JsSIP or SIP.js in a test page,
// talking SIP over pbxd's WebSocket and WebRTC media, with a fake
// microphone that plays a tone from a WAV file.
//
// The Node side lives in testdata/browser (README.md there): the pages
// (jssip.html, sipjs.html) with a small window.phone API, esbuild's JsSIP
// bundle, and run.mjs, which serves the pages from 127.0.0.1, launches
// Debian's Chromium through playwright-core, runs a scenario's steps and
// prints one JSON result. Its node_modules are installed once per test
// binary with `npm ci` from the lockfile, and then only again when the
// lockfile changes (a stamp in node_modules says which one it was), so a
// machine that has run the tests once runs them offline.
//
// Every process is started here with its PID kept: run.mjs in a process
// group of its own (npm too), and Chromium, which playwright starts as the
// leader of yet another group, by the PID run.mjs reports on stderr. Each
// is stopped by that PID at the end of the test, or when its time is up.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"pbxd/media/tone"
)

// browserDir is the Node project of the browser tests.
const browserDir = "testdata/browser"

// browserToneHz is the tone of the browser's fake microphone: neither
// SIPp's caller tone nor its callee tone, so a test can tell who it hears.
const browserToneHz = 800

// browserWAVRate is the rate of the fake microphone's WAV file; Chromium
// captures at 48 kHz.
const browserWAVRate = 48000

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

// browserTools are the programs the browser tests run.
type browserTools struct {
	chromium, node, npm string
}

// needBrowser finds Chromium, Node.js and npm. Without them the test is
// skipped, except in CI and as root, where `make test` installs them
// (scripts/test-deps.sh: chromium, nodejs, npm) and a missing one fails.
func needBrowser(t *testing.T) browserTools {
	t.Helper()
	var tools browserTools
	var missing []string
	for _, x := range []struct {
		name string
		dst  *string
	}{{"chromium", &tools.chromium}, {"node", &tools.node}, {"npm", &tools.npm}} {
		p, err := exec.LookPath(x.name)
		if err != nil {
			missing = append(missing, x.name)
		}
		*x.dst = p
	}
	if len(missing) == 0 {
		// playwright-core 1.65 needs Node.js 20 or later.
		if major, err := nodeMajor(tools.node); err != nil || major < 20 {
			missing = append(missing, fmt.Sprintf("Node.js ≥ 20 (have %d, %v)", major, err))
		}
	}
	if len(missing) > 0 {
		if os.Getenv("CI") != "" || os.Getuid() == 0 {
			t.Fatalf("browser tests need %s; `make test` installs them (scripts/test-deps.sh)", strings.Join(missing, ", "))
		}
		t.Skipf("browser tests need %s", strings.Join(missing, ", "))
	}
	browserDeps(t, tools)
	return tools
}

var nodeVersion = regexp.MustCompile(`^v(\d+)\.`)

func nodeMajor(node string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return 0, err
	}
	m := nodeVersion.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("node --version said %q", out)
	}
	return strconv.Atoi(string(m[1]))
}

var (
	browserDepsOnce sync.Once
	browserDepsErr  error
)

// browserDeps installs testdata/browser/node_modules once per test
// binary: `npm ci` from the lockfile (with the scripts of the packages
// off: none is needed), unless the stamp left by the last install names
// the same package.json and lockfile.
func browserDeps(t *testing.T, tools browserTools) {
	t.Helper()
	browserDepsOnce.Do(func() { browserDepsErr = installBrowserDeps(tools) })
	if browserDepsErr != nil {
		t.Fatalf("installing the browser tests' node_modules: %v", browserDepsErr)
	}
}

func installBrowserDeps(tools browserTools) error {
	h := sha256.New()
	for _, f := range []string{"package.json", "package-lock.json"} {
		raw, err := os.ReadFile(filepath.Join(browserDir, f))
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(raw))
		h.Write(raw)
	}
	want := hex.EncodeToString(h.Sum(nil))
	stamp := filepath.Join(browserDir, "node_modules", ".pbxd-npm-ci")
	if got, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(got)) == want {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tools.npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = browserDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	began := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci in %s (%v): %w\n%s", browserDir, time.Since(began).Round(time.Millisecond), err, tail(out.String(), 3000))
	}
	return os.WriteFile(stamp, []byte(want+"\n"), 0o644)
}

// --- running a scenario ---

// browserRun is one run.mjs with its Chromium.
type browserRun struct {
	t        *testing.T
	sc       browserScenario
	tmp      string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	stdout   bytes.Buffer
	done     chan struct{}
	waitErr  error
	mu       sync.Mutex
	cond     *sync.Cond
	events   []browserEvent // and "waiting:<name>" for waitSignal steps
	exited   bool
	stderr   strings.Builder
	pid      int // Chromium's
	result   *browserResult
	stopOnce sync.Once
}

var notFileName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// runBrowser runs a scenario to its end and returns the result without
// judging it.
func runBrowser(t *testing.T, sc browserScenario) browserResult {
	t.Helper()
	return startBrowser(t, sc).Wait()
}

// startBrowser starts a scenario in the background: WaitEvent follows
// it, Wait collects the result. It is stopped at the end of the test.
func startBrowser(t *testing.T, sc browserScenario) *browserRun {
	t.Helper()
	tools := needBrowser(t)
	r := &browserRun{t: t, sc: sc, tmp: t.TempDir(), done: make(chan struct{})}
	r.cond = sync.NewCond(&r.mu)
	if r.sc.Name == "" {
		r.sc.Name = notFileName.ReplaceAllString(t.Name(), "_")
	}
	if r.sc.Chromium == "" {
		r.sc.Chromium = tools.chromium
	}
	if r.sc.Timeout == 0 {
		r.sc.Timeout = 60 * time.Second
	}
	if r.sc.StepTimeout == 0 {
		r.sc.StepTimeout = 20 * time.Second
	}
	if r.sc.Artifacts == "" {
		dir, err := filepath.Abs(filepath.Join("..", "..", "artifacts", "browser", r.sc.Name))
		if err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(dir) // what an earlier run left
		r.sc.Artifacts = dir
	}
	if r.sc.FakeAudio == "" {
		hz := r.sc.ToneHz
		if hz == 0 {
			hz = browserToneHz
		}
		// One second of a whole number of periods, so the loop is seamless.
		r.sc.FakeAudio = filepath.Join(r.tmp, "microphone.wav")
		if err := writeWAV(r.sc.FakeAudio, browserWAVRate, tone.Sine(hz, toneAmplitude, browserWAVRate, browserWAVRate)); err != nil {
			t.Fatal(err)
		}
	}
	doc := struct {
		browserScenario
		TimeoutMs     int `json:"timeoutMs"`
		StepTimeoutMs int `json:"stepTimeoutMs"`
	}{r.sc, int(r.sc.Timeout.Milliseconds()), int(r.sc.StepTimeout.Milliseconds())}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(r.tmp, "scenario.json")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(tools.node, "run.mjs", file)
	r.cmd.Dir = browserDir
	// Chromium's profile (playwright's fresh --user-data-dir) goes into the
	// test's own directory, which also tells its processes apart.
	r.cmd.Env = append(os.Environ(), "TMPDIR="+r.tmp)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.cmd.Stdout = &r.stdout
	if r.stdin, err = r.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("run.mjs: %v", err)
	}
	go r.follow(stderr)
	t.Cleanup(r.stop)
	// run.mjs has its own deadline; this one catches a driver that hangs.
	limit := time.AfterFunc(r.sc.Timeout+30*time.Second, func() {
		r.mu.Lock()
		r.stderr.WriteString("pbxd test: run.mjs overran its timeout, stopped\n")
		r.mu.Unlock()
		r.stop()
	})
	go func() {
		<-r.done
		limit.Stop()
	}()
	return r
}

// follow reads run.mjs's stderr: progress lines and anything else.
func (r *browserRun) follow(stderr io.Reader) {
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		line := sc.Text()
		var p struct {
			BrowserPid int           `json:"browserPid"`
			Event      *browserEvent `json:"event"`
			Step       *json.RawMessage
			Waiting    string `json:"waiting"`
		}
		r.mu.Lock()
		switch {
		case strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &p) == nil && (p.BrowserPid != 0 || p.Event != nil || p.Step != nil || p.Waiting != ""):
			if p.BrowserPid != 0 {
				r.pid = p.BrowserPid
			}
			if p.Event != nil {
				r.events = append(r.events, *p.Event)
			}
			if p.Waiting != "" {
				// A pseudo-event for WaitHeld.
				r.events = append(r.events, browserEvent{Type: "waiting:" + p.Waiting})
			}
		default:
			r.stderr.WriteString(line + "\n")
		}
		r.cond.Broadcast()
		r.mu.Unlock()
	}
	r.waitErr = r.cmd.Wait()
	r.mu.Lock()
	r.exited = true
	close(r.done)
	r.cond.Broadcast()
	r.mu.Unlock()
}

// WaitEvent waits for the page's first event of type typ and fails the
// test if the scenario ends or limit passes without one.
func (r *browserRun) WaitEvent(typ string, limit time.Duration) browserEvent {
	r.t.Helper()
	deadline := time.Now().Add(limit)
	wake := time.AfterFunc(limit, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer wake.Stop()
	r.mu.Lock()
	for !r.exited && time.Now().Before(deadline) {
		for _, e := range r.events {
			if e.Type == typ {
				r.mu.Unlock()
				return e
			}
		}
		r.cond.Wait()
	}
	exited, events := r.exited, slices.Clone(r.events)
	r.mu.Unlock()
	if exited {
		r.t.Fatalf("the browser scenario ended without a %s event:\n%v", typ, r.Wait())
	}
	r.t.Fatalf("no %s event from the browser in %v; events so far: %+v", typ, limit, events)
	return browserEvent{}
}

// WaitHeld waits until the scenario waits at its waitSignal step name.
func (r *browserRun) WaitHeld(name string, limit time.Duration) {
	r.t.Helper()
	r.WaitEvent("waiting:"+name, limit)
}

// Signal lets a waitSignal step called name go on.
func (r *browserRun) Signal(name string) {
	r.t.Helper()
	if _, err := io.WriteString(r.stdin, name+"\n"); err != nil {
		r.t.Errorf("signalling %s to the browser: %v", name, err)
	}
}

// Wait waits for run.mjs to exit and returns its result.
func (r *browserRun) Wait() browserResult {
	r.t.Helper()
	<-r.done
	if r.result != nil {
		return *r.result
	}
	r.stopBrowser()
	var res browserResult
	if err := json.Unmarshal(bytes.TrimSpace(r.stdout.Bytes()), &res); err != nil {
		res.Error = fmt.Sprintf("run.mjs printed no result (%v): %q", err, tail(r.stdout.String(), 2000))
	}
	r.mu.Lock()
	res.Stderr = r.stderr.String()
	r.mu.Unlock()
	var ee *exec.ExitError
	switch {
	case r.waitErr == nil:
	case errors.As(r.waitErr, &ee) && ee.Exited():
		res.ExitCode = ee.ExitCode()
	default:
		res.ExitCode = -1
	}
	if res.ExitCode == 2 || res.ExitCode == -1 {
		r.t.Fatalf("the browser harness failed:\n%v", res)
	}
	r.result = &res
	return res
}

// WaitAtMost is Wait, but it stops the scenario first if it is still
// running after limit.
func (r *browserRun) WaitAtMost(limit time.Duration) browserResult {
	r.t.Helper()
	select {
	case <-r.done:
	case <-time.After(limit):
		r.stop()
	}
	return r.Wait()
}

// stop ends run.mjs (SIGTERM: it hangs up, unregisters and closes the
// browser; SIGKILL to its group after 15s) and then Chromium.
func (r *browserRun) stop() {
	r.stopOnce.Do(func() {
		select {
		case <-r.done:
		default:
			pid := r.cmd.Process.Pid
			_ = syscall.Kill(pid, syscall.SIGTERM)
			select {
			case <-r.done:
			case <-time.After(15 * time.Second):
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				<-r.done
			}
		}
		r.stopBrowser()
	})
}

// stopBrowser kills Chromium's process group if it outlived run.mjs
// (which closes it itself unless it was killed). The PID is checked to
// still be this run's browser: its profile is in the run's directory.
func (r *browserRun) stopBrowser() {
	r.mu.Lock()
	pid := r.pid
	r.mu.Unlock()
	if pid == 0 {
		return
	}
	ours := func() bool {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return err == nil && bytes.Contains(cmdline, []byte(r.tmp))
	}
	deadline := time.Now().Add(10 * time.Second)
	for ours() && time.Now().Before(deadline) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		time.Sleep(50 * time.Millisecond)
	}
	if ours() {
		r.t.Errorf("Chromium (pid %d) did not go away", pid)
	}
}

// --- the harness's own far end ---

// browserPeer is a SIP-over-WebSocket server with a WebRTC peer (pion)
// behind it: the far end of TestBrowserHarness, which checks the pages,
// the driver and the assertions of the browser tests without pbxd. It
// accepts any REGISTER (echoing the Contact with expires, no
// challenge), answers INVITEs with a PCMU answer that sends a tone, takes
// BYE and INFO, and calls the registered browser itself (Invite, Bye).
// What it hears is decoded for tone checks, and RFC 4733 events are kept
// as digits.
type browserPeer struct {
	t      *testing.T
	ln     net.Listener
	api    *webrtc.API
	toneHz float64
	addr   string

	mu        sync.Mutex
	conn      net.Conn
	contact   string // the browser's registered Contact URI
	aor       string
	pc        *webrtc.PeerConnection
	stopTone  chan struct{}
	heard     []int16
	events    map[uint32]byte // RFC 4733 event by timestamp
	digits    []byte
	infos     []string
	responses chan browserPeerMsg
	wg        sync.WaitGroup
}

// browserPeerMsg is a parsed SIP message.
type browserPeerMsg struct {
	first string
	hdr   [][2]string // in order, names lower case
	body  string
}

func parseBrowserPeerMsg(s string) browserPeerMsg {
	head, body, _ := strings.Cut(s, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	m := browserPeerMsg{first: lines[0], body: body}
	for _, l := range lines[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m.hdr = append(m.hdr, [2]string{strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)})
		}
	}
	return m
}

func (m browserPeerMsg) get(name string) string {
	for _, h := range m.hdr {
		if h[0] == name {
			return h[1]
		}
	}
	return ""
}

func (m browserPeerMsg) all(name string) []string {
	var out []string
	for _, h := range m.hdr {
		if h[0] == name {
			out = append(out, h[1])
		}
	}
	return out
}

// uriOf is the URI inside <…> of a header value.
func uriOf(v string) string {
	if i := strings.Index(v, "<"); i >= 0 {
		if j := strings.Index(v[i:], ">"); j > 0 {
			return v[i+1 : i+j]
		}
	}
	return strings.TrimSpace(strings.Split(v, ";")[0])
}

func startBrowserPeer(t *testing.T, toneHz float64) *browserPeer {
	t.Helper()
	m := &webrtc.MediaEngine{}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 8000, SDPFmtpLine: "0-16"}, PayloadType: 101},
	} {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	var s webrtc.SettingEngine
	// Loopback only, like the pages.
	s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	s.SetIncludeLoopbackCandidate(true)
	s.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	s.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	// Chromium also checks its candidates on other interfaces against
	// ours; one socket that ignores every source off loopback keeps the
	// answers on loopback.
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: loopbackPackets{udp}})
	s.SetICEUDPMux(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		udp.Close()
		t.Fatal(err)
	}
	p := &browserPeer{t: t, ln: ln, api: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(s)), toneHz: toneHz,
		addr: ln.Addr().String(), events: map[uint32]byte{}, responses: make(chan browserPeerMsg, 16)}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		p.close()
		mux.Close()
	})
	return p
}

// loopbackPackets is a UDP socket that drops datagrams from sources off
// loopback.
type loopbackPackets struct{ c *net.UDPConn }

func (l loopbackPackets) ReadFrom(b []byte) (int, net.Addr, error) {
	for i := 0; ; i++ {
		n, a, err := l.c.ReadFromUDP(b)
		if err != nil || a.IP.IsLoopback() || i >= 10000 {
			return n, a, err
		}
	}
}
func (l loopbackPackets) WriteTo(b []byte, a net.Addr) (int, error) { return l.c.WriteTo(b, a) }
func (l loopbackPackets) Close() error                              { return l.c.Close() }
func (l loopbackPackets) LocalAddr() net.Addr                       { return l.c.LocalAddr() }
func (l loopbackPackets) SetDeadline(t time.Time) error             { return l.c.SetDeadline(t) }
func (l loopbackPackets) SetReadDeadline(t time.Time) error         { return l.c.SetReadDeadline(t) }
func (l loopbackPackets) SetWriteDeadline(t time.Time) error        { return l.c.SetWriteDeadline(t) }

func (p *browserPeer) accept() {
	defer p.wg.Done()
	for i := 0; i < 16; i++ { // a test opens one or two pages
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u := ws.Upgrader{Protocol: func(b []byte) bool { return string(b) == "sip" }}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := u.Upgrade(c); err != nil {
			c.Close()
			continue
		}
		c.SetDeadline(time.Time{})
		p.mu.Lock()
		p.conn = c
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *browserPeer) serve(c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	for n := 0; n < 10000; n++ {
		raw, err := wsutil.ReadClientText(c)
		if err != nil {
			return
		}
		m := parseBrowserPeerMsg(string(raw))
		method, _, _ := strings.Cut(m.first, " ")
		switch method {
		case "SIP/2.0":
			select {
			case p.responses <- m:
			default:
			}
		case "REGISTER":
			contact := m.get("contact")
			p.mu.Lock()
			p.contact, p.aor = uriOf(contact), uriOf(m.get("to"))
			p.mu.Unlock()
			contact = regexp.MustCompile(`;expires=\d+`).ReplaceAllString(contact, "")
			expires := "600"
			if strings.Contains(m.get("contact"), "expires=0") || m.get("expires") == "0" {
				expires = "0"
			}
			p.respond(m, "200 OK", []string{"Contact: " + contact + ";expires=" + expires}, "")
		case "INVITE":
			sdp, err := p.answer(m.body)
			if err != nil {
				p.t.Errorf("browser peer: answering the browser's offer: %v", err)
				p.respond(m, "488 Not Acceptable Here", nil, "")
				continue
			}
			p.respond(m, "200 OK", []string{p.contactHeader(), "Content-Type: application/sdp"}, sdp)
		case "BYE":
			p.respond(m, "200 OK", nil, "")
			p.hangup()
		case "INFO":
			p.mu.Lock()
			p.infos = append(p.infos, m.body)
			p.mu.Unlock()
			p.respond(m, "200 OK", nil, "")
		case "ACK":
		default:
			p.respond(m, "405 Method Not Allowed", nil, "")
		}
	}
}

func (p *browserPeer) contactHeader() string {
	return "Contact: <sip:peer@" + p.addr + ";transport=ws>"
}

func (p *browserPeer) send(msg string) {
	p.mu.Lock()
	c := p.conn
	p.mu.Unlock()
	if c == nil {
		p.t.Errorf("browser peer: no WebSocket to send on")
		return
	}
	if err := wsutil.WriteServerText(c, []byte(msg)); err != nil {
		p.t.Errorf("browser peer: %v", err)
	}
}

func (p *browserPeer) respond(req browserPeerMsg, status string, extra []string, body string) {
	var b strings.Builder
	b.WriteString("SIP/2.0 " + status + "\r\n")
	for _, v := range req.all("via") {
		b.WriteString("Via: " + v + "\r\n")
	}
	to := req.get("to")
	if !strings.Contains(to, ";tag=") {
		to += ";tag=peer1"
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n", req.get("from"), to, req.get("call-id"), req.get("cseq"))
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	p.send(b.String())
}

// newPC makes the peer connection of a call: a PCMU track that sends
// the tone, and a reader of what the browser sends.
func (p *browserPeer) newPC() (*webrtc.PeerConnection, error) {
	pc, err := p.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", "peer")
	if err != nil {
		pc.Close()
		return nil, err
	}
	if _, err := pc.AddTrack(track); err != nil {
		pc.Close()
		return nil, err
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		errs := 0
		for i := 0; i < 100000; i++ { // 30 minutes of 20 ms packets at most
			n, _, err := tr.Read(buf)
			if err != nil {
				// A payload type the track did not expect yet is one bad
				// packet; a closed track ends the call.
				if errs++; errors.Is(err, io.EOF) || errs > 100 || pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
					return
				}
				continue
			}
			r, ok := parseRTP(buf[:n])
			if !ok {
				continue
			}
			p.mu.Lock()
			if pcm := g711Decode(r.PayloadType, r.Payload); pcm != nil {
				p.heard = append(p.heard, pcm...)
			} else if len(r.Payload) >= 4 {
				if _, seen := p.events[r.Timestamp]; !seen && r.Payload[0] < 16 {
					p.events[r.Timestamp] = r.Payload[0]
					p.digits = append(p.digits, "0123456789*#ABCD"[r.Payload[0]])
				}
			}
			p.mu.Unlock()
		}
	})
	stop := make(chan struct{})
	p.mu.Lock()
	if p.pc != nil {
		p.mu.Unlock()
		pc.Close()
		return nil, errors.New("a call is already up")
	}
	p.pc, p.stopTone = pc, stop
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		osc := tone.NewOscillator(audioRate, toneAmplitude, p.toneHz)
		frame := make([]int16, samplesPerPacket)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 90000; i++ { // 30 minutes at most
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			osc.Next(frame)
			data := make([]byte, len(frame))
			for j, s := range frame {
				data[j] = ulawEncode(s)
			}
			_ = track.WriteSample(pionmedia.Sample{Data: data, Duration: 20 * time.Millisecond})
		}
	}()
	return pc, nil
}

// local sets d and returns the local description once gathering is done.
func (p *browserPeer) local(pc *webrtc.PeerConnection, d webrtc.SessionDescription) (string, error) {
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(d); err != nil {
		return "", err
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		return "", errors.New("ICE gathering did not complete in 5s")
	}
	return pc.LocalDescription().SDP, nil
}

func (p *browserPeer) answer(offer string) (string, error) {
	pc, err := p.newPC()
	if err != nil {
		return "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		p.hangup()
		return "", err
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		p.hangup()
		return "", err
	}
	return p.local(pc, ans)
}

// hangup ends the call's media.
func (p *browserPeer) hangup() {
	p.mu.Lock()
	pc, stop := p.pc, p.stopTone
	p.pc, p.stopTone = nil, nil
	p.mu.Unlock()
	if stop != nil {
		close(stop)
	}
	if pc != nil {
		pc.Close()
	}
}

// browserPeerCall is a call the peer placed to the browser.
type browserPeerCall struct {
	callID, toTag, target string
}

// Invite calls the registered browser (INVITE to its Contact over its
// WebSocket, with the peer's offer) and returns once it has answered and
// the ACK is sent.
func (p *browserPeer) Invite(limit time.Duration) browserPeerCall {
	p.t.Helper()
	p.mu.Lock()
	contact, aor := p.contact, p.aor
	p.mu.Unlock()
	if contact == "" {
		p.t.Fatal("browser peer: nobody registered")
	}
	pc, err := p.newPC()
	if err != nil {
		p.t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	sdp, err := p.local(pc, offer)
	if err != nil {
		p.t.Fatal(err)
	}
	call := browserPeerCall{callID: fmt.Sprintf("peer-%d", time.Now().UnixNano()), target: contact}
	p.send(fmt.Sprintf("INVITE %s SIP/2.0\r\nVia: SIP/2.0/WS peer.invalid;branch=z9hG4bK%d\r\nMax-Forwards: 70\r\nFrom: <sip:peer@127.0.0.1>;tag=peerfrom\r\nTo: <%s>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\n%s\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		contact, time.Now().UnixNano(), aor, call.callID, p.contactHeader(), len(sdp), sdp))
	deadline := time.After(limit)
	for {
		select {
		case <-deadline:
			p.t.Fatalf("browser peer: no answer to the INVITE in %v", limit)
		case m := <-p.responses:
			code := strings.Fields(m.first)[1]
			if m.get("call-id") != call.callID || code[0] == '1' {
				continue
			}
			if code != "200" {
				p.t.Fatalf("browser peer: the browser answered %s", m.first)
			}
			if t := regexp.MustCompile(`;tag=([^;>\s]+)`).FindStringSubmatch(m.get("to")); t != nil {
				call.toTag = t[1]
			}
			if c := uriOf(m.get("contact")); c != "" {
				call.target = c
			}
			if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.body}); err != nil {
				p.t.Fatalf("browser peer: the browser's answer: %v\n%s", err, m.body)
			}
			p.send(p.inDialog("ACK", 1, call, aor))
			return call
		}
	}
}

func (p *browserPeer) inDialog(method string, cseq int, call browserPeerCall, aor string) string {
	return fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/WS peer.invalid;branch=z9hG4bK%d\r\nMax-Forwards: 70\r\nFrom: <sip:peer@127.0.0.1>;tag=peerfrom\r\nTo: <%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContent-Length: 0\r\n\r\n",
		method, call.target, time.Now().UnixNano(), aor, call.toTag, call.callID, cseq, method)
}

// Bye hangs up a call the peer placed and waits for the 200.
func (p *browserPeer) Bye(call browserPeerCall) {
	p.t.Helper()
	p.mu.Lock()
	aor := p.aor
	p.mu.Unlock()
	p.send(p.inDialog("BYE", 2, call, aor))
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-deadline:
			p.t.Errorf("browser peer: no answer to the BYE")
			p.hangup()
			return
		case m := <-p.responses:
			if m.get("call-id") == call.callID && strings.Contains(m.get("cseq"), "BYE") {
				p.hangup()
				return
			}
		}
	}
}

// Heard returns the audio the peer received and clears it, with the
// RFC 4733 digits and the INFO bodies.
func (p *browserPeer) Heard() (pcm []int16, digits string, infos []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pcm, digits, infos = p.heard, string(p.digits), p.infos
	p.heard, p.digits, p.infos = nil, nil, nil
	p.events = map[uint32]byte{}
	return pcm, digits, infos
}

func (p *browserPeer) close() {
	p.ln.Close()
	p.mu.Lock()
	c := p.conn
	p.mu.Unlock()
	if c != nil {
		c.Close()
	}
	p.hangup()
	p.wg.Wait()
}

// TestBrowserHarness checks the browser harness against its own far end
// (browserPeer), without pbxd: each library registers, calls the peer,
// hears its tone, is heard, sends DTMF as RFC 4733 events and as INFO,
// hangs up, and then answers a call from the peer, which hangs up. The
// same checks guard the pbxd browser tests (e2e_browser_test.go), so
// they fail there only because of pbxd.
func TestBrowserHarness(t *testing.T) {
	t.Parallel()
	const peerHz = 1200
	for _, lib := range browserLibraries {
		t.Run(lib, func(t *testing.T) {
			t.Parallel()
			p := startBrowserPeer(t, peerHz)
			run := startBrowser(t, browserScenario{Library: lib, WSURL: "ws://" + p.addr, URI: "sip:harness@127.0.0.1", User: "harness", Password: "unused",
				Steps: []browserStep{
					{Do: "register"},
					{Do: "call", Target: "sip:peer@127.0.0.1"},
					{Do: "wait", Ms: 2000},
					{Do: "stats", Label: "calling"},
					{Do: "screenshot", Name: "calling"},
					{Do: "dtmf", Tones: "1234#", TransportType: "RFC2833"},
					{Do: "dtmf", Tones: "5", TransportType: "INFO"},
					{Do: "waitSignal", Name: "heard"},
					{Do: "hangup"},
					{Do: "answer"},
					{Do: "wait", Ms: 2000},
					{Do: "stats", Label: "answered"},
					{Do: "waitEnded"},
					{Do: "unregister"},
				}})
			run.WaitHeld("heard", 30*time.Second)
			out, digits, infos := p.Heard()
			run.Signal("heard")
			run.WaitEvent("ended", 10*time.Second)
			call := p.Invite(20 * time.Second)
			time.Sleep(2500 * time.Millisecond)
			in, _, _ := p.Heard()
			p.Bye(call)
			res := run.Wait()
			if !res.OK {
				t.Fatalf("%v", res)
			}
			wantRegistered(t, res)
			if len(res.Stats) != 2 {
				t.Fatalf("stats: %+v", res.Stats)
			}
			for i, what := range []string{"calling", "answered"} {
				r := res
				r.Stats = res.Stats[i : i+1]
				t.Run(what, func(t *testing.T) { wantBrowserHeard(t, r, peerHz) })
			}
			for what, pcm := range map[string][]int16{"calling": out, "answered": in} {
				if r := tone.Detect(pcm, audioRate, []float64{browserToneHz, peerHz}); len(pcm) < audioRate || r[browserToneHz] < tone.PresentRatio || r[peerHz] > tone.AbsentRatio {
					t.Errorf("%s: the peer heard %d samples, tone ratios %v", what, len(pcm), r)
				}
			}
			if digits != "1234#" {
				t.Errorf("the peer got RFC 4733 digits %q, want 1234#", digits)
			}
			if len(infos) != 1 || !strings.Contains(infos[0], "Signal=5") {
				t.Errorf("the peer got INFO bodies %q, want one for 5", infos)
			}
			for _, s := range res.Stats {
				if s.SelectedPair == nil || !strings.Contains(s.SelectedPair.Local, " 127.0.0.1:") || !strings.Contains(s.SelectedPair.Remote, " 127.0.0.1:") {
					t.Errorf("%s: the media left loopback: %+v", s.Label, s.SelectedPair)
				}
			}
		})
	}
}
