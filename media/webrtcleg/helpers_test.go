package webrtcleg

import (
	"context"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"pbxd/media"
	"pbxd/media/dtmf"
	"pbxd/media/g711"
	"pbxd/media/tone"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// testLogger shows pion's and the engine's warnings in the test output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// checkGoroutines fails the test if goroutines started during it are still
// running once its cleanups (registered after this call) have run.
func checkGoroutines(t testing.TB) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > base {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines left (baseline %d):\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
	})
}

// newEngine starts an engine on loopback with a free port.
func newEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	if !cfg.BindIP.IsValid() && len(cfg.PublicIPs) == 0 && !cfg.Loopback {
		cfg.BindIP = loopback
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// A browser's codecs in Chromium's order: opus, G.711, telephone-event at
// 48 and 8 kHz.
var browserCodecs = []webrtc.RTPCodecParameters{
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, PayloadType: 0},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000, Channels: 1}, PayloadType: 8},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mimeTelephoneEvent, ClockRate: 48000, Channels: 1, SDPFmtpLine: "0-15"}, PayloadType: 110},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mimeTelephoneEvent, ClockRate: 8000, Channels: 1, SDPFmtpLine: "0-15"}, PayloadType: 126},
}

// browser is a pion PeerConnection playing Chromium on loopback: full ICE,
// DTLS actpass, the codecs above, its own RTP writer so that it can send
// G.711 and telephone-events on one SSRC.
type browser struct {
	t   testing.TB
	pc  *webrtc.PeerConnection
	out *rawTrack

	mu   sync.Mutex
	pkts []*rtp.Packet

	connected chan struct{}
	connOnce  sync.Once
	wg        sync.WaitGroup

	// The browser's outgoing stream: one run of sequence numbers and
	// timestamps across tones and digits, as a real one.
	seq   uint16
	ts    uint32
	start time.Time
}

// clock moves the browser's timestamp to real time, as a microphone's
// stream does across a pause.
func (b *browser) clock() {
	if b.start.IsZero() {
		b.start = time.Now()
	}
	b.ts = 5000 + uint32(time.Since(b.start)*8000/time.Second)
}

func newBrowser(t testing.TB, codecs []webrtc.RTPCodecParameters) *browser {
	t.Helper()
	if codecs == nil {
		codecs = browserCodecs
	}
	me := &webrtc.MediaEngine{}
	for _, c := range codecs {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	reg := &interceptor.Registry{}
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.LoggerFactory = pionLogs{log: testLogger(t).With("side", "browser")}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle, RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire})
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, pc: pc, out: &rawTrack{}, connected: make(chan struct{}), seq: 1000, ts: 5000}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			b.connOnce.Do(func() { close(b.connected) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		b.wg.Add(1)
		defer b.wg.Done()
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := r.Read(buf); err != nil {
					return
				}
			}
		}()
		for {
			buf := make([]byte, 1500)
			n, _, err := tr.Read(buf)
			if n == 0 && err != nil {
				return
			}
			p := &rtp.Packet{}
			if p.Unmarshal(buf[:n]) != nil {
				continue
			}
			b.mu.Lock()
			b.pkts = append(b.pkts, p)
			b.mu.Unlock()
		}
	})
	t.Cleanup(b.close)
	return b
}

func (b *browser) close() {
	_ = b.pc.GracefulClose()
	b.wg.Wait()
}

// offer makes the browser's offer, all candidates gathered, as JsSIP does.
func (b *browser) offer() []byte {
	b.t.Helper()
	if _, err := b.pc.AddTransceiverFromTrack(b.out, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		b.t.Fatal(err)
	}
	o, err := b.pc.CreateOffer(nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.setLocal(o)
}

func (b *browser) setLocal(d webrtc.SessionDescription) []byte {
	b.t.Helper()
	g := webrtc.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(d); err != nil {
		b.t.Fatal(err)
	}
	<-g
	return []byte(b.pc.LocalDescription().SDP)
}

func (b *browser) setAnswer(sdp []byte) {
	b.t.Helper()
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(sdp)}); err != nil {
		b.t.Fatal(err)
	}
}

// answer answers pbxd's offer.
func (b *browser) answer(offer []byte) []byte {
	b.t.Helper()
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
		b.t.Fatal(err)
	}
	if _, err := b.pc.AddTrack(b.out); err != nil {
		b.t.Fatal(err)
	}
	a, err := b.pc.CreateAnswer(nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.setLocal(a)
}

func (b *browser) waitConnected() {
	b.t.Helper()
	select {
	case <-b.connected:
	case <-time.After(10 * time.Second):
		b.t.Fatalf("browser not connected: %s", b.pc.ConnectionState())
	}
}

// received returns a copy of the packets received so far.
func (b *browser) received() []*rtp.Packet {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*rtp.Packet(nil), b.pkts...)
}

// waitPackets waits until keep has accepted n received packets.
func (b *browser) waitPackets(n int, keep func(*rtp.Packet) bool) []*rtp.Packet {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []*rtp.Packet
		for _, p := range b.received() {
			if keep == nil || keep(p) {
				got = append(got, p)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("browser got %d packets, want %d", len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendTone sends n packets of a freq Hz tone in pt (0 PCMU, 8 PCMA) at the
// 20 ms pace; it returns when done.
func (b *browser) sendTone(freq float64, pt uint8, n int) {
	osc := tone.NewOscillator(8000, tone.AmplitudeDBFS(-12), freq)
	pcm := make([]int16, media.FrameSamples)
	tick := time.NewTicker(media.FrameDuration)
	defer tick.Stop()
	b.clock()
	for i := range n {
		osc.Next(pcm)
		var payload []byte
		if pt == 8 {
			payload = g711.EncodeAlawTo(nil, pcm)
		} else {
			payload = g711.EncodeUlawTo(nil, pcm)
		}
		b.out.write(pt, b.seq, b.ts, i == 0, payload)
		b.seq++
		b.ts += media.FrameSamples
		<-tick.C
	}
}

// sendDigit sends an RFC 4733 event as Chromium does, on telephone-event
// payload type pt.
func (b *browser) sendDigit(digit rune, pt uint8) {
	pkts, err := dtmf.Generate(digit, 800, 160, 10)
	if err != nil {
		b.t.Fatal(err)
	}
	b.clock()
	for _, p := range pkts {
		b.out.write(pt, b.seq, b.ts, p.Marker, p.Payload)
		b.seq++
		time.Sleep(media.FrameDuration)
	}
}

// rawTrack is the browser's sending track: whole RTP headers of its own.
type rawTrack struct {
	mu   sync.Mutex
	w    webrtc.TrackLocalWriter
	ssrc uint32
}

func (r *rawTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.w, r.ssrc = ctx.WriteStream(), uint32(ctx.SSRC())
	for _, c := range ctx.CodecParameters() {
		if !strings.Contains(c.MimeType, "telephone-event") {
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

func (r *rawTrack) Unbind(webrtc.TrackLocalContext) error { return nil }
func (r *rawTrack) ID() string                            { return "mic" }
func (r *rawTrack) RID() string                           { return "" }
func (r *rawTrack) StreamID() string                      { return "browser" }
func (r *rawTrack) Kind() webrtc.RTPCodecType             { return webrtc.RTPCodecTypeAudio }

func (r *rawTrack) write(pt uint8, seq uint16, ts uint32, marker bool, payload []byte) {
	r.mu.Lock()
	w, ssrc := r.w, r.ssrc
	r.mu.Unlock()
	if w == nil {
		return
	}
	_, _ = w.WriteRTP(&rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc, Marker: marker}, payload)
}

// sink is a media.Receiver keeping copies of the frames it is given.
type sink struct {
	mu     sync.Mutex
	frames []media.Frame
}

func (s *sink) Receive(_ media.Leg, f *media.Frame) {
	g := *f
	g.Payload = append([]byte(nil), f.Payload...)
	s.mu.Lock()
	s.frames = append(s.frames, g)
	s.mu.Unlock()
}

func (s *sink) get(kind media.Kind) []media.Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []media.Frame
	for _, f := range s.frames {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

func (s *sink) wait(t testing.TB, kind media.Kind, n int) []media.Frame {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := s.get(kind)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("leg received %d frames of kind %d, want %d", len(got), kind, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// decode turns G.711 payloads into linear samples.
func decode(codec string, payloads ...[]byte) []int16 {
	var pcm []int16
	for _, p := range payloads {
		if codec == "PCMA" {
			pcm = g711.DecodeAlawTo(pcm, p)
		} else {
			pcm = g711.DecodeUlawTo(pcm, p)
		}
	}
	return pcm
}

// assertTone checks that freq is present in pcm and every other of the
// test's tones absent.
func assertTone(t testing.TB, what string, pcm []int16, freq float64) {
	t.Helper()
	freqs := []float64{400, 700, 1000, 1300}
	r := tone.Detect(pcm, 8000, freqs)
	for _, f := range freqs {
		switch {
		case f == freq && r[f] < tone.PresentRatio:
			t.Errorf("%s: %v Hz missing (ratios %v)", what, f, r)
		case f != freq && r[f] > tone.AbsentRatio:
			t.Errorf("%s: %v Hz present, want only %v Hz (ratios %v)", what, f, freq, r)
		}
	}
}

// toneSender plays a tone into a leg with Send at the 20 ms pace from its
// own goroutine until stopped.
type toneSender struct {
	stop chan struct{}
	done chan struct{}
}

func sendTone(l media.Leg, freq float64, codec media.Codec, source uint32) *toneSender {
	ts := &toneSender{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ts.done)
		osc := tone.NewOscillator(8000, tone.AmplitudeDBFS(-12), freq)
		pcm := make([]int16, media.FrameSamples)
		buf := make([]byte, 0, media.FrameSamples)
		f := media.Frame{Kind: media.KindAudio, Codec: codec, Source: source, Seq: 7, Timestamp: 123456}
		tick := time.NewTicker(media.FrameDuration)
		defer tick.Stop()
		for {
			osc.Next(pcm)
			if codec.Name == "PCMA" {
				f.Payload = g711.EncodeAlawTo(buf[:0], pcm)
			} else {
				f.Payload = g711.EncodeUlawTo(buf[:0], pcm)
			}
			_ = l.Send(&f)
			f.Seq++
			f.Timestamp += media.FrameSamples
			select {
			case <-ts.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return ts
}

func (ts *toneSender) Stop() {
	close(ts.stop)
	<-ts.done
}

// connect negotiates leg and browser with the browser offering, and waits
// for the connection.
func connect(t testing.TB, l *Leg, b *browser) (offer, answer []byte) {
	t.Helper()
	offer = b.offer()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	answer, err := l.Answer(ctx, offer)
	if err != nil {
		t.Fatal(err)
	}
	b.setAnswer(answer)
	b.waitConnected()
	return offer, answer
}
