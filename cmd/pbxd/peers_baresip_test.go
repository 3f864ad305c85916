package main

// baresip (Debian baresip-core 1.0.0) as a real phone: headless, with its
// own configuration directory, a tone WAV as its microphone and the audio
// it hears recorded to a WAV, driven over ctrl_tcp.
//
// What baresip 1.0.0 needs for that, as found by trying:
//   - modules g711, uuid and account (module_tmp; uuid gives the Contact a
//     +sip.instance), aufile (audio source: a WAV file), aubridge (an audio
//     player to nowhere), sndfile (an audio filter that dumps what is sent
//     and what is decoded to snd_path as dump-<date-time>-enc.wav and
//     -dec.wav, 8 kHz mono), menu (it owns the dial, accept, hangup, hold,
//     resume, reginfo … commands) and ctrl_tcp (JSON in netstrings); no
//     stdio, as there is no terminal. baresip-core has no aufile player.
//   - aufile wants its WAV at exactly ausrc_srate and ausrc_channels, 16-bit;
//     8000 Hz mono matches G.711 and needs no resampling (ausine, by
//     contrast, only does 2 channels). At the end of the file the menu
//     module hangs the call up ("audio error"), so the WAV must outlast
//     the call (baresipOpts.Audio).
//   - net_interface 127.0.0.1 keeps the SDP and Contact on loopback (by
//     default it advertises the primary interface's address); sip_listen
//     binds UDP and TCP on the port and TLS on the port above it.
//   - rtp_ports with a range of two gives the call a known RTP port (the
//     even one; RTCP the odd one), so one call at a time per phone.
//   - ctrl_tcp: send {"command":"dial","params":"sip:…","token":"1"} as a
//     netstring ("len:json,"); it answers {"response":true,"ok":…,
//     "data":…,"token":"1"} and streams events {"event":true,"type":
//     "CALL_INCOMING"|"CALL_RINGING"|"CALL_PROGRESS"|"CALL_ESTABLISHED"|
//     "CALL_CLOSED"|"CALL_LOCAL_SDP"|"CALL_REMOTE_SDP"|"CALL_RTPESTAB"|
//     "CALL_RTCP"|"REGISTER_OK"|"REGISTER_FAIL"|…,"class":…,"accountaor":
//     …,"direction":…,"peeruri":…,"id":…,"param":…}. A re-INVITE shows as
//     CALL_REMOTE_SDP with param "offer" at the receiver; there is no hold
//     event. The first REGISTER_OK usually fires before the control
//     connection is up, so WaitRegistered also reads reginfo.
//   - Hold sends a=sendonly; peer to peer neither side sends RTP while held.
//   - libre's digest gives up on a 401 that also offers SHA-256 (see
//     baresipOpts.Registrar).

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// baresipOpts configures one phone.
type baresipOpts struct {
	// User is the SIP user (and digest username); default "baresip".
	User string
	// Password is the digest password for the registrar.
	Password string
	// Registrar, "127.0.0.1:port", makes the phone register there (and
	// route its calls there); empty means no registration and an AOR of
	// sip:User@127.0.0.1:<its own port>, for calls peer to peer. baresip
	// 1.0.0 (libre) gives up on a 401 that also offers SHA-256 ("Register:
	// Function not implemented"): start pbxd with --sip-auth-algorithms MD5.
	Registrar string
	// ToneHz is the tone it sends; default 700.
	ToneHz float64
	// AutoAnswer answers incoming calls at once; otherwise Answer does.
	AutoAnswer bool
	// Codecs are its audio codecs in order; default PCMU, PCMA.
	Codecs []string
	// Audio is how long its microphone lasts: baresip hangs a call up
	// when the WAV ends. Default 60s.
	Audio time.Duration
}

// baresipEvent is one event from ctrl_tcp.
type baresipEvent struct {
	Type       string `json:"type"`
	Class      string `json:"class"`
	AccountAOR string `json:"accountaor"`
	Direction  string `json:"direction"`
	PeerURI    string `json:"peeruri"`
	ID         string `json:"id"`
	Param      string `json:"param"`
	At         time.Time
}

// baresip is one running phone.
type baresip struct {
	t    *testing.T
	opts baresipOpts
	// Port is its SIP port; URI its address for direct calls.
	Port int
	URI  string
	// RTPPort is the port it sends and receives audio on.
	RTPPort int
	// Dir is its configuration directory, where the recordings go.
	Dir string

	cmd    *exec.Cmd
	logs   *lockedBuffer
	exited chan struct{}
	conn   net.Conn
	reader sync.WaitGroup

	mu      sync.Mutex
	events  []baresipEvent
	seen    map[string]int // per event type: how many WaitEvent returned
	changed chan struct{}  // closed and replaced on each event
	replies map[string]chan baresipReply
	token   int
}

type baresipReply struct {
	OK   bool   `json:"ok"`
	Data string `json:"data"`
}

// needBaresip finds baresip; make test installs it (Debian baresip-core).
func needBaresip(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("baresip")
	if err != nil {
		if os.Getenv("CI") != "" || os.Getuid() == 0 {
			t.Fatal("baresip is missing; `make test` installs it (Debian package baresip-core)")
		}
		t.Skip("baresip not installed")
	}
	return p
}

// baresipModules is where Debian puts the modules.
const baresipModules = "/usr/lib/baresip/modules"

// startBaresip starts a phone on free loopback ports and returns once its
// control connection is up (and, with a registrar, without waiting for
// the registration: see WaitRegistered). It is stopped at the end of the
// test.
func startBaresip(t *testing.T, o baresipOpts) *baresip {
	t.Helper()
	bin := needBaresip(t)
	if o.User == "" {
		o.User = "baresip"
	}
	if o.ToneHz == 0 {
		o.ToneHz = 700
	}
	if len(o.Codecs) == 0 {
		o.Codecs = []string{"PCMU", "PCMA"}
	}
	if o.Audio == 0 {
		o.Audio = 60 * time.Second
	}
	b := &baresip{t: t, opts: o, Dir: t.TempDir(), logs: &lockedBuffer{}, exited: make(chan struct{}),
		seen: map[string]int{}, changed: make(chan struct{}), replies: map[string]chan baresipReply{}}
	mic := filepath.Join(b.Dir, "mic.wav")
	if err := writeWAV(mic, audioRate, toneSamples(o.ToneHz, toneAmplitude, int(o.Audio.Seconds()*audioRate))); err != nil {
		t.Fatal(err)
	}
	b.Port = freeSIPPort(t)
	b.RTPPort = freeUDPPortRange(t, 2)
	ctrl := freeTCPPort(t)
	config := strings.Join([]string{
		"poll_method epoll",
		"module_path " + baresipModules,
		"sip_listen 127.0.0.1:" + strconv.Itoa(b.Port),
		"net_interface 127.0.0.1",
		"dns_server 127.0.0.1:53",
		"call_local_timeout 120",
		"call_max_calls 4",
		"audio_source aufile," + mic,
		"audio_player aubridge,nil",
		"audio_alert aubridge,alert",
		"ausrc_srate 8000",
		"auplay_srate 8000",
		"ausrc_channels 1",
		"auplay_channels 1",
		"audio_level no",
		"rtp_ports " + strconv.Itoa(b.RTPPort) + "-" + strconv.Itoa(b.RTPPort+1),
		"rtcp_mux no",
		"jitter_buffer_delay 1-10",
		"rtp_stats no",
		"module g711.so",
		"module aufile.so",
		"module aubridge.so",
		"module sndfile.so",
		"module_tmp uuid.so",
		"module_tmp account.so",
		"module_app menu.so",
		"module_app ctrl_tcp.so",
		"ctrl_tcp_listen 127.0.0.1:" + strconv.Itoa(ctrl),
		"snd_path " + b.Dir,
		"statmode_default off",
		"ringback_disabled yes",
		"",
	}, "\n")
	answer := "manual"
	if o.AutoAnswer {
		answer = "auto"
	}
	params := fmt.Sprintf(";answermode=%s;audio_codecs=%s", answer, strings.ToLower(strings.Join(o.Codecs, ",")))
	var account string
	if o.Registrar != "" {
		account = fmt.Sprintf("<sip:%s@%s>;auth_user=%s;auth_pass=%s;regint=300%s", o.User, o.Registrar, o.User, o.Password, params)
		b.URI = fmt.Sprintf("sip:%s@%s", o.User, o.Registrar)
	} else {
		account = fmt.Sprintf("<sip:%s@127.0.0.1:%d>;regint=0%s", o.User, b.Port, params)
		b.URI = fmt.Sprintf("sip:%s@127.0.0.1:%d", o.User, b.Port)
	}
	for name, body := range map[string]string{"config": config, "accounts": account + "\n", "contacts": ""} {
		if err := os.WriteFile(filepath.Join(b.Dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b.cmd = exec.Command(bin, "-f", b.Dir)
	b.cmd.Dir = b.Dir
	b.cmd.Stdout = b.logs
	b.cmd.Stderr = b.logs
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("baresip: %v", err)
	}
	go func() {
		b.cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(b.stop)

	// The control port answers once baresip is up.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ctrl))
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			b.conn = c
			break
		}
		select {
		case <-b.exited:
			t.Fatalf("baresip exited at once:\n%s", b.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip control port not up after 15s:\n%s", b.Log())
		}
	}
	b.reader.Add(1)
	go b.read()
	return b
}

// stop closes the control connection, ends baresip (SIGTERM, then
// SIGKILL) and waits for both.
func (b *baresip) stop() {
	if b.conn != nil {
		b.conn.Close()
	}
	b.reader.Wait()
	select {
	case <-b.exited:
		return
	default:
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(3 * time.Second):
		b.cmd.Process.Signal(syscall.SIGKILL)
		<-b.exited
	}
}

// Log is what baresip printed.
func (b *baresip) Log() string { return b.logs.String() }

// read decodes the netstrings from ctrl_tcp until the connection closes.
func (b *baresip) read() {
	defer b.reader.Done()
	r := bufio.NewReader(b.conn)
	for {
		msg, err := readNetstring(r)
		if err != nil {
			return
		}
		var m struct {
			Event    bool   `json:"event"`
			Response bool   `json:"response"`
			Token    string `json:"token"`
			baresipReply
		}
		if json.Unmarshal(msg, &m) != nil {
			continue
		}
		switch {
		case m.Event:
			var e baresipEvent
			if json.Unmarshal(msg, &e) != nil {
				continue
			}
			e.At = time.Now()
			b.mu.Lock()
			b.events = append(b.events, e)
			close(b.changed)
			b.changed = make(chan struct{})
			b.mu.Unlock()
		case m.Response:
			b.mu.Lock()
			ch := b.replies[m.Token]
			delete(b.replies, m.Token)
			b.mu.Unlock()
			if ch != nil {
				ch <- m.baresipReply
			}
		}
	}
}

// readNetstring reads one "len:data," netstring (at most 1 MiB).
func readNetstring(r *bufio.Reader) ([]byte, error) {
	head, err := r.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[:len(head)-1]))
	if err != nil || n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("netstring: bad length %q", head)
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	if buf[n] != ',' {
		return nil, fmt.Errorf("netstring: no comma")
	}
	return buf[:n], nil
}

// Command runs a ctrl_tcp command (a menu command: "dial", "accept",
// "hangup", "hold", "resume", "reginfo", "listcalls" …) and returns its
// output; it fails the test if baresip does not answer in 10s.
func (b *baresip) Command(cmd, params string) (ok bool, data string) {
	b.t.Helper()
	b.mu.Lock()
	b.token++
	tok := strconv.Itoa(b.token)
	ch := make(chan baresipReply, 1)
	b.replies[tok] = ch
	b.mu.Unlock()
	msg, _ := json.Marshal(map[string]string{"command": cmd, "params": params, "token": tok})
	b.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(b.conn, "%d:%s,", len(msg), msg); err != nil {
		b.t.Fatalf("baresip %s: %v", cmd, err)
	}
	select {
	case r := <-ch:
		return r.OK, r.Data
	case <-time.After(10 * time.Second):
		b.t.Fatalf("baresip %s %s: no answer in 10s\n%s", cmd, params, b.Log())
		return false, ""
	}
}

// must runs a command and fails the test unless baresip accepts it.
func (b *baresip) must(cmd, params string) string {
	b.t.Helper()
	ok, data := b.Command(cmd, params)
	if !ok {
		b.t.Fatalf("baresip %s %s failed: %s\n%s", cmd, params, data, b.Log())
	}
	return data
}

// Dial calls uri ("sip:101@127.0.0.1:5060").
func (b *baresip) Dial(uri string) { b.t.Helper(); b.must("dial", uri) }

// Answer accepts the incoming call.
func (b *baresip) Answer() { b.t.Helper(); b.must("accept", "") }

// Hangup ends (or rejects, or cancels) the current call.
func (b *baresip) Hangup() { b.t.Helper(); b.must("hangup", "") }

// Hold puts the current call on hold (a re-INVITE with a=sendonly).
func (b *baresip) Hold() { b.t.Helper(); b.must("hold", "") }

// Resume takes the current call off hold.
func (b *baresip) Resume() { b.t.Helper(); b.must("resume", "") }

// Events is every event so far.
func (b *baresip) Events() []baresipEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.events)
}

// WaitEvent returns the next event of type typ that no earlier WaitEvent
// for typ returned (so waiting twice for CALL_CLOSED waits for two calls
// to end), and fails the test after timeout. Waiting for
// REGISTER_OK fails at once on REGISTER_FAIL.
func (b *baresip) WaitEvent(typ string, timeout time.Duration) baresipEvent {
	b.t.Helper()
	deadline := time.After(timeout)
	for {
		b.mu.Lock()
		n := 0
		for _, e := range b.events {
			if e.Type == typ {
				if n == b.seen[typ] {
					b.seen[typ]++
					b.mu.Unlock()
					return e
				}
				n++
			}
			if typ == "REGISTER_OK" && e.Type == "REGISTER_FAIL" {
				b.mu.Unlock()
				b.t.Fatalf("baresip %s: registration failed: %s\n%s", b.opts.User, e.Param, b.Log())
			}
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-b.exited:
			b.t.Fatalf("baresip %s exited while waiting for %s:\n%s", b.opts.User, typ, b.Log())
		case <-deadline:
			b.t.Fatalf("baresip %s: no %s in %v; events %v\n%s", b.opts.User, typ, timeout, b.eventTypes(), tail(b.Log(), 4000))
		}
	}
}

func (b *baresip) eventTypes() []string {
	var out []string
	for _, e := range b.Events() {
		out = append(out, e.Type)
	}
	return out
}

// WaitRegistered waits for the registration to succeed, and fails the
// test on REGISTER_FAIL or after timeout. The first registration often
// completes before the control connection is up, so it also asks reginfo.
func (b *baresip) WaitRegistered(timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, e := range b.Events() {
			switch e.Type {
			case "REGISTER_OK":
				return
			case "REGISTER_FAIL":
				b.t.Fatalf("baresip %s: registration failed: %s\n%s", b.opts.User, e.Param, b.Log())
			}
		}
		if _, info := b.Command("reginfo", ""); strings.Contains(stripANSI(info), " OK ") {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("baresip %s: not registered after %v\n%s", b.opts.User, timeout, tail(b.Log(), 4000))
		}
		select {
		case <-b.exited:
			b.t.Fatalf("baresip %s exited:\n%s", b.opts.User, b.Log())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stripANSI drops terminal colour sequences (ESC [ … m).
func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && s[j] != 'm' {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// recording returns the newest sndfile dump ending in suffix, once
// libsndfile has finished it (the call is over) or after 2s.
func (b *baresip) recording(suffix string) []int16 {
	b.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(b.Dir, "dump-*-"+suffix+".wav"))
		sort.Strings(files)
		if len(files) > 0 {
			f := files[len(files)-1]
			raw, err := os.ReadFile(f)
			// A finished WAV's RIFF size covers the whole file.
			done := err == nil && len(raw) >= 8 && int(binary.LittleEndian.Uint32(raw[4:])) == len(raw)-8
			if done || time.Now().After(deadline) {
				rate, ch, s, err := readWAV(f)
				if err != nil {
					b.t.Fatalf("baresip recording: %v", err)
				}
				if rate != audioRate || ch != 1 {
					b.t.Fatalf("baresip recording %s: %d Hz, %d channels", f, rate, ch)
				}
				return s
			}
		} else if time.Now().After(deadline) {
			b.t.Fatalf("baresip %s: no %s recording in %s", b.opts.User, suffix, b.Dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Received is what the phone heard in its last call: the decoded audio
// (8 kHz mono) as its speaker would have played it. Call it after
// CALL_CLOSED.
func (b *baresip) Received() []int16 { b.t.Helper(); return b.recording("dec") }

// Sent is what the phone sent in its last call, before encoding.
func (b *baresip) Sent() []int16 { b.t.Helper(); return b.recording("enc") }

// freeTCPPort returns a loopback TCP port that was free a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freeSIPPort returns a port p where UDP p, TCP p and TCP p+1 (baresip's
// TLS listener) were free a moment ago.
func freeSIPPort(t *testing.T) int {
	t.Helper()
	return retryPort(t, "no free SIP port for baresip", func() (int, bool) {
		p := freeUDPPort(t)
		return p, p < 65535 && portsFree("tcp4", p, 2)
	})
}
