package main

// SIPp as a real SIP peer for call tests: a UAS that a call can reach and
// a UAC that places calls, each with audio (a tone, so a test can tell who
// it hears). The scenarios are in testdata/sipp; each run gets its own
// directory with a copy of the scenario, the audio it plays (pcmu.pcap,
// pcma.pcap: 20 ms G.711 packets of its tone, written by writeRTPPcap),
// the injection file and SIPp's logs.
//
// Callees (no injection file; they answer with the first of PCMU/PCMA in
// the offer and play the matching pcap):
//   - uas_answer.xml: 180, 200 with SDP, ACK, audio; answers any number
//     of re-INVITEs (sendonly→recvonly, recvonly→sendonly,
//     inactive→inactive, else sendrecv) until the BYE.
//   - uas_answer_bye.xml: the same, but it hangs up after Talk.
//   - uas_busy.xml: 486, ACK.
//   - uas_ring_noanswer.xml: 180, then 200 for the CANCEL, 487, ACK.
//
// Callers (one injection line per call, built by sippInjection from
// sippOpts: caller;callee;formats;rtpmap1;rtpmap2;[authentication
// username=U password=P];holdms; a 407 is answered with ACK and a second
// INVITE carrying the credentials; 100/180/183 are optional):
//   - uac_call.xml: 200, ACK, audio for Talk, BYE.
//   - uac_call_wait_bye.xml: 200, ACK, audio until the other side's BYE.
//   - uac_reinvite_hold.xml: Talk, re-INVITE a=sendonly (the 200 must say
//     recvonly or inactive), Hold, re-INVITE a=sendrecv (the 200 must not
//     hold), Talk, BYE.
//   - uac_update_hold.xml: the same hold and resume by UPDATE.
//   - uac_reinvite_nosdp.xml: Talk, a re-INVITE without SDP (the 200 must
//     offer), the answer in the ACK, Talk, BYE.
//   - uac_call_delayed.xml: INVITEs without SDP (delayed offer), pbxd's
//     offer in the 200, the answer in the ACK, audio for Talk, BYE.
//   - uac_call_delayed_noanswer.xml: the same with an ACK without an
//     answer; waits for pbxd's BYE.
//   - uac_cancel.xml: 180, Talk of ringing, CANCEL, 200 and 487 in either
//     order, ACK.
//   - uac_rejected.xml: a final 403/404/408/480/486/487/488/500/503/603,
//     ACK; sippResult.Responses tells which.
//
// Every run uses free loopback ports: its SIP port, a media port (SIPp
// binds it and the port two above it, plays audio from it and receives
// there) and its control port. SIPp runs under a context with a deadline,
// as -timeout does not stop it while calls are open, and is killed at the
// end of the test if it is still running. Audio needs root (SIPp sends it
// through a raw socket).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Default tones: callers and callees send different ones, so a test can
// tell the two directions apart.
const (
	sippCallerHz = 600
	sippCalleeHz = 1000
)

// sippOpts configures one SIPp run. Fields marked UAC apply to the calling
// scenarios (uac_*.xml) only.
type sippOpts struct {
	// Scenario is a file in testdata/sipp, e.g. "uas_answer.xml".
	Scenario string
	// Calls is the number of calls (-m) before SIPp exits; default 1.
	Calls int
	// Talk is SIPp's -d: how long uac_call talks before its BYE (and
	// uac_reinvite_hold before and after the hold), how long uac_cancel
	// lets it ring before the CANCEL, and how long uas_answer_bye talks
	// before its BYE. Default 2s.
	Talk time.Duration
	// ToneHz is the tone of the audio it sends; default sippCallerHz for
	// UACs and sippCalleeHz for UASs.
	ToneHz float64
	// Audio is the length of the audio it can send in one call; default
	// 2×Talk+Hold+5s for UACs and 30s for UASs (the UAS's audio then stops).
	Audio time.Duration
	// Timeout bounds the run; SIPp is killed after it. Default 60s.
	Timeout time.Duration
	// Extra are more SIPp arguments.
	Extra []string

	// Target is where a UAC sends its INVITE ("127.0.0.1:5060").
	Target string
	// From and To are the user parts of the caller and of the Request-URI
	// (UAC); defaults "sipp-caller" and "sipp-callee".
	From, To string
	// Username and Password answer a 407 challenge (UAC); Username
	// defaults to From. Without a challenge they are not used.
	Username, Password string
	// Codecs are offered in this order (UAC): "PCMU", "PCMA"; default both,
	// PCMU first. The UAC then sends the codec the answer puts first.
	Codecs []string
	// Hold is how long uac_reinvite_hold holds the call; default 1s.
	Hold time.Duration
	// Register makes a UAS register its address first (register.xml, from
	// its own SIP port), so that a registrar routes calls for the device
	// to it; the binding is removed at the end of the test
	// (unregister.xml).
	Register *sippRegistration
	// SIPPort is its SIP port; default a free one. A test that must name
	// the port beforehand (a carrier's address in a trunk) picks it with
	// freeUDPPort.
	SIPPort int
	// MediaPort is the media port to use, e.g. one from
	// freeUDPPortRange(t, 4) that an RTP capture already watches (start
	// the capture before the caller, or it misses the first packets);
	// default a free one.
	MediaPort int
}

// sippRegistration is a device account on a registrar.
type sippRegistration struct {
	Registrar          string // "127.0.0.1:port"
	Username, Password string
}

// sippProc is one SIPp run.
type sippProc struct {
	t    *testing.T
	opts sippOpts
	// Addr is SIPp's SIP address, "127.0.0.1:port"; Port its port.
	Addr string
	Port int
	// MediaPort is where it sends audio from and receives audio.
	MediaPort int
	// Dir holds the run's files (scenario copy, pcaps, logs).
	Dir string

	cancel context.CancelFunc
	cmd    *exec.Cmd
	out    *lockedBuffer
	done   chan struct{}
	waited error
	result *sippResult
}

// sippResult is what a finished SIPp run reports.
type sippResult struct {
	Scenario string
	// ExitCode is SIPp's: 0 all calls succeeded, 1 some failed, 97 exit
	// on an internal command, 99 no call was processed, 255 a fatal
	// error, 254 a port could not be bound; -1 if it was killed.
	ExitCode int
	// Successful and Failed are the call counters of its last screen.
	Successful, Failed int
	// Output is what SIPp printed (its screens); Errors its error file.
	Output, Errors string
	// Messages are the SIP messages it sent and received, in order.
	Messages []sippMessage
	// Err is nil when SIPp exited with 0.
	Err error
}

// sippMessage is one SIP message in SIPp's message trace.
type sippMessage struct {
	Sent bool
	Text string
}

// FirstLine is the request or status line.
func (m sippMessage) FirstLine() string {
	line, _, _ := strings.Cut(m.Text, "\n")
	return strings.TrimSpace(line)
}

// Status is the response code, or 0 for a request.
func (m sippMessage) Status() int {
	f := strings.Fields(m.FirstLine())
	if len(f) < 2 || !strings.HasPrefix(f[0], "SIP/") {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// Method is the request method, or "" for a response.
func (m sippMessage) Method() string {
	f := strings.Fields(m.FirstLine())
	if len(f) == 0 || strings.HasPrefix(f[0], "SIP/") {
		return ""
	}
	return f[0]
}

// Responses lists the status codes SIPp received, in order.
func (r sippResult) Responses() []int {
	var out []int
	for _, m := range r.Messages {
		if !m.Sent && m.Status() != 0 {
			out = append(out, m.Status())
		}
	}
	return out
}

// Requests lists the methods of the requests SIPp received, in order.
func (r sippResult) Requests() []string {
	var out []string
	for _, m := range r.Messages {
		if !m.Sent && m.Method() != "" {
			out = append(out, m.Method())
		}
	}
	return out
}

// Trace is the message flow as one line per message, for failure output.
func (r sippResult) Trace() string {
	var b strings.Builder
	for _, m := range r.Messages {
		dir := "<-"
		if m.Sent {
			dir = "->"
		}
		fmt.Fprintf(&b, "%s %s\n", dir, m.FirstLine())
	}
	return b.String()
}

func (r sippResult) String() string {
	return fmt.Sprintf("sipp %s: exit %d, %d successful, %d failed\nmessages:\n%s\nerrors:\n%s\noutput:\n%s",
		r.Scenario, r.ExitCode, r.Successful, r.Failed, r.Trace(), tail(r.Errors, 3000), tail(r.Output, 3000))
}

// startSIPpUAS starts a SIPp callee on free ports and returns once its SIP
// and media sockets are bound.
func startSIPpUAS(t *testing.T, o sippOpts) *sippProc {
	t.Helper()
	if o.ToneHz == 0 {
		o.ToneHz = sippCalleeHz
	}
	if o.Audio == 0 {
		o.Audio = 30 * time.Second
	}
	return startSIPp(t, o, false)
}

// startSIPpUAC starts a SIPp caller towards o.Target in the background;
// Wait or WaitOK collect the result.
func startSIPpUAC(t *testing.T, o sippOpts) *sippProc {
	t.Helper()
	if o.Target == "" {
		t.Fatal("startSIPpUAC: no Target")
	}
	if o.ToneHz == 0 {
		o.ToneHz = sippCallerHz
	}
	return startSIPp(t, o, true)
}

// runSIPpUAC places the calls of a UAC scenario and returns the result
// without judging it; most tests want runSIPpUACOK.
func runSIPpUAC(t *testing.T, o sippOpts) sippResult {
	t.Helper()
	return startSIPpUAC(t, o).Wait()
}

// runSIPpUACOK places the calls and fails the test unless all succeed.
func runSIPpUACOK(t *testing.T, o sippOpts) sippResult {
	t.Helper()
	return startSIPpUAC(t, o).WaitOK()
}

func startSIPp(t *testing.T, o sippOpts, uac bool) *sippProc {
	t.Helper()
	bin := needSIPpAudio(t)
	if o.Calls == 0 {
		o.Calls = 1
	}
	if o.Talk == 0 {
		o.Talk = 2 * time.Second
	}
	if o.Hold == 0 {
		o.Hold = time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Audio == 0 {
		o.Audio = 2*o.Talk + o.Hold + 5*time.Second
	}
	src, err := os.ReadFile(filepath.Join("testdata", "sipp", o.Scenario))
	if err != nil {
		t.Fatalf("scenario: %v", err)
	}
	p := &sippProc{t: t, opts: o, Dir: t.TempDir(), out: &lockedBuffer{}, done: make(chan struct{})}
	// The scenario's audio files are looked up next to it.
	sf := filepath.Join(p.Dir, o.Scenario)
	if err := os.WriteFile(sf, src, 0o644); err != nil {
		t.Fatal(err)
	}
	tone := toneSamples(o.ToneHz, toneAmplitude, int(o.Audio.Seconds()*audioRate))
	for name, pt := range map[string]uint8{"pcmu.pcap": 0, "pcma.pcap": 8} {
		if err := writeRTPPcap(filepath.Join(p.Dir, name), pt, tone); err != nil {
			t.Fatal(err)
		}
	}
	p.Port = o.SIPPort
	if p.Port == 0 {
		p.Port = freeUDPPort(t)
	}
	p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port))
	p.MediaPort = o.MediaPort
	if p.MediaPort == 0 {
		p.MediaPort = freeUDPPortRange(t, 4)
	}
	if o.Register != nil && !uac {
		sippRegister(t, *o.Register, p.Port)
	}
	args := []string{"-sf", sf, "-i", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-t", "u1",
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(p.MediaPort),
		"-ci", "127.0.0.1", "-cp", strconv.Itoa(sippControlPort(t)),
		"-m", strconv.Itoa(o.Calls), "-d", strconv.FormatInt(o.Talk.Milliseconds(), 10),
		"-aa", "-nostdin",
		"-timeout", strconv.Itoa(int(o.Timeout.Seconds())) + "s", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(p.Dir, "errors.log"),
		"-trace_msg", "-message_file", filepath.Join(p.Dir, "messages.log")}
	if uac {
		inf := filepath.Join(p.Dir, "inject.csv")
		if err := os.WriteFile(inf, []byte(sippInjection(t, o)), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{o.Target}, append(args, "-inf", inf)...)
	}
	args = append(args, o.Extra...)
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout+10*time.Second)
	p.cancel = cancel
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.Dir = p.Dir
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("sipp: %v", err)
	}
	go func() {
		p.waited = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.Stop)
	if !uac {
		// A UAS must be listening before anyone calls it.
		deadline := time.Now().Add(10 * time.Second)
		for !udpBound(p.Port) || !udpBound(p.MediaPort) {
			select {
			case <-p.done:
				t.Fatalf("sipp %s exited at once: %v", o.Scenario, p.collect())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				p.Stop()
				t.Fatalf("sipp %s did not bind its ports in 10s: %v", o.Scenario, p.collect())
			}
		}
	}
	return p
}

// sippRegister registers r's device with Contact 127.0.0.1:port, sending
// from that port, and fails the test unless the registrar accepts it. At
// the end of the test (after the UAS on that port has stopped) it removes
// the binding again, so that later calls to the device in the same pbxd
// are not forked to a port nobody answers on.
func sippRegister(t *testing.T, r sippRegistration, port int) {
	t.Helper()
	if err := sippRegistrar(t, r, port, "register.xml"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sippRegistrar(t, r, port, "unregister.xml"); err != nil {
			t.Logf("removing the binding (the registrar may be gone): %v", err)
		}
	})
}

// sippRegistrar runs register.xml or unregister.xml for r from port.
func sippRegistrar(t *testing.T, r sippRegistration, port int, scenario string) error {
	t.Helper()
	bin := needSIPp(t)
	dir := t.TempDir()
	inf := filepath.Join(dir, "inject.csv")
	line := fmt.Sprintf("SEQUENTIAL\n%s;[authentication username=%s password=%s]\n", r.Username, r.Username, r.Password)
	if err := os.WriteFile(inf, []byte(line), 0o600); err != nil {
		return err
	}
	sf, err := filepath.Abs(filepath.Join("testdata", "sipp", scenario))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, r.Registrar, "-sf", sf, "-inf", inf,
		"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-t", "u1", "-m", "1",
		"-ci", "127.0.0.1", "-cp", strconv.Itoa(sippControlPort(t)),
		"-timeout", "10s", "-timeout_error", "-nostdin",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"))
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
		return fmt.Errorf("%s for %s from port %d: %w\n%s\n%s", scenario, r.Username, port, err, tail(string(out), 2000), errs)
	}
	return nil
}

// capturedCall runs uac to its end against callee, a SIPp UAS already
// started, on a fresh media port and with the RTP of both captured; the
// callee then gets 5 s to finish.
func capturedCall(t *testing.T, callee *sippProc, uac *sippOpts) (sippResult, *rtpCapture) {
	t.Helper()
	uac.MediaPort = freeUDPPortRange(t, 4)
	c := startRTPCapture(t, callee.MediaPort, uac.MediaPort)
	res := runSIPpUACOK(t, *uac)
	callee.Finish(5 * time.Second)
	c.Stop()
	return res, c
}

// sippInjection is the injection file of the uac_*.xml scenarios:
// caller;callee;formats;rtpmap1;rtpmap2;[authentication …];holdms.
func sippInjection(t *testing.T, o sippOpts) string {
	t.Helper()
	from, to := o.From, o.To
	if from == "" {
		from = "sipp-caller"
	}
	if to == "" {
		to = "sipp-callee"
	}
	user, pass := o.Username, o.Password
	if user == "" {
		user = from
	}
	if pass == "" {
		pass = "no-password"
	}
	codecs := o.Codecs
	if len(codecs) == 0 {
		codecs = []string{"PCMU", "PCMA"}
	}
	if len(codecs) > 2 {
		t.Fatalf("sipp: at most two codecs, got %v", codecs)
	}
	var formats []string
	rtpmaps := []string{"ptime:20", "ptime:20"}
	for i, c := range codecs {
		pt, ok := codecPT(c)
		if !ok {
			t.Fatalf("sipp: codec %q is not PCMU or PCMA", c)
		}
		formats = append(formats, strconv.Itoa(int(pt)))
		rtpmaps[i] = fmt.Sprintf("rtpmap:%d %s/8000", pt, strings.ToUpper(c))
	}
	for _, f := range []string{from, to, user, pass} {
		if strings.ContainsAny(f, "; \n]") {
			t.Fatalf("sipp: %q cannot go into an injection file", f)
		}
	}
	line := []string{from, to, strings.Join(formats, " "), rtpmaps[0], rtpmaps[1],
		fmt.Sprintf("[authentication username=%s password=%s]", user, pass),
		strconv.FormatInt(o.Hold.Milliseconds(), 10)}
	return "SEQUENTIAL\n" + strings.Join(line, ";") + "\n"
}

// Wait waits for SIPp to exit (killing it after its timeout) and returns
// the result; it does not judge it.
func (p *sippProc) Wait() sippResult {
	p.t.Helper()
	<-p.done
	return p.collect()
}

// WaitOK waits for SIPp and fails the test unless every call succeeded.
func (p *sippProc) WaitOK() sippResult {
	p.t.Helper()
	r := p.Wait()
	if r.Err != nil || r.Failed > 0 {
		p.t.Fatalf("%v", r)
	}
	return r
}

// Stop kills SIPp if it is still running; it is called at the end of the
// test.
func (p *sippProc) Stop() {
	p.cancel() // kills the process if it has not exited
	<-p.done
}

// Finish gives SIPp up to limit to end by itself (a callee ends after the
// BYE pbxd relays, which may trail the caller's own end), then stops it.
func (p *sippProc) Finish(limit time.Duration) {
	select {
	case <-p.done:
	case <-time.After(limit):
	}
	p.Stop()
}

// Exited reports whether SIPp has exited.
func (p *sippProc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

var (
	sippSuccessful = regexp.MustCompile(`Successful call\s*\|\s*\d+\s*\|\s*(\d+)`)
	sippFailed     = regexp.MustCompile(`Failed call\s*\|\s*\d+\s*\|\s*(\d+)`)
)

// collect reads the logs of a finished run.
func (p *sippProc) collect() sippResult {
	if p.result != nil {
		return *p.result
	}
	<-p.done
	r := sippResult{Scenario: p.opts.Scenario, Output: p.out.String(), Err: p.waited}
	var ee *exec.ExitError
	switch {
	case p.waited == nil:
	case errors.As(p.waited, &ee) && ee.Exited():
		r.ExitCode = ee.ExitCode()
	default:
		r.ExitCode = -1
		r.Err = fmt.Errorf("sipp killed (timeout %v): %w", p.opts.Timeout, p.waited)
	}
	if m := sippSuccessful.FindAllStringSubmatch(r.Output, -1); m != nil {
		r.Successful, _ = strconv.Atoi(m[len(m)-1][1])
	}
	if m := sippFailed.FindAllStringSubmatch(r.Output, -1); m != nil {
		r.Failed, _ = strconv.Atoi(m[len(m)-1][1])
	}
	errs, _ := os.ReadFile(filepath.Join(p.Dir, "errors.log"))
	r.Errors = string(errs)
	r.Messages = readSIPpMessages(filepath.Join(p.Dir, "messages.log"))
	p.result = &r
	return r
}

// readSIPpMessages parses SIPp's -message_file: each message follows a
// "UDP message sent (N bytes):" or "UDP message received [N] bytes :" line
// and a blank line.
func readSIPpMessages(path string) []sippMessage {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []sippMessage
	var cur *sippMessage
	var body strings.Builder
	flush := func() {
		if cur != nil {
			cur.Text = strings.TrimSpace(body.String())
			out = append(out, *cur)
		}
		cur = nil
		body.Reset()
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, "-----------------------------------------------"):
			flush()
		case cur == nil && strings.Contains(line, " message sent "):
			cur = &sippMessage{Sent: true}
		case cur == nil && strings.Contains(line, " message received "):
			cur = &sippMessage{}
		case cur != nil:
			body.WriteString(line + "\n")
		}
	}
	flush()
	return out
}

// --- ports ---

// needSIPpAudio is needSIPp for calls with audio: play_pcap_audio sends
// through a raw socket, which needs root.
func needSIPpAudio(t *testing.T) string {
	t.Helper()
	p := needSIPp(t)
	if os.Getuid() != 0 {
		t.Skip("SIPp calls with audio need root")
	}
	return p
}

// freeUDPPortRange returns an even loopback UDP port p such that p … p+n-1
// were all free a moment ago (RTP wants an even port, RTCP the next one).
func freeUDPPortRange(t *testing.T, n int) int {
	t.Helper()
	return retryPort(t, fmt.Sprintf("no %d free UDP ports in a row", n), func() (int, bool) {
		base := freeUDPPort(t) &^ 1
		return base, base+n <= 65535 && portsFree("udp4", base, n)
	})
}

// retryPort returns the first port try finds (ok true) in 100 tries, or
// fails the test with why.
func retryPort(t *testing.T, why string, try func() (port int, ok bool)) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		if p, ok := try(); ok {
			return p
		}
	}
	t.Fatal(why)
	return 0
}

// portsFree reports whether the n ports from first on could all be bound
// on 127.0.0.1 a moment ago, for network "udp4" or "tcp4"; it closes what
// it bound.
func portsFree(network string, first, n int) bool {
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for p := first; p < first+n; p++ {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		var c io.Closer
		var err error
		if strings.HasPrefix(network, "udp") {
			c, err = net.ListenPacket(network, addr)
		} else {
			c, err = net.Listen(network, addr)
		}
		if err != nil {
			return false
		}
		held = append(held, c)
	}
	return true
}

// udpBound reports whether some socket is bound to UDP port on 127.0.0.1
// or the wildcard address, from /proc/net/udp; unlike a test bind it
// cannot steal the port from the process that is about to bind it.
func udpBound(port int) bool {
	raw, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return false
	}
	want := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(raw), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		addr := f[1] // local address, hex IP:port
		if strings.HasSuffix(addr, want) && (strings.HasPrefix(addr, "0100007F:") || strings.HasPrefix(addr, "00000000:")) {
			return true
		}
	}
	return false
}
