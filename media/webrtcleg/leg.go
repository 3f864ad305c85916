package webrtcleg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"pbxd/media"
)

// The connection states OnState reports (pion's PeerConnectionState
// names). The call engine hangs up on StateFailed and StateClosed.
const (
	StateNew          = "new"
	StateConnecting   = "connecting"
	StateConnected    = "connected"
	StateDisconnected = "disconnected"
	StateFailed       = "failed"
	StateClosed       = "closed"
)

// Leg is one browser's media on the box: a pion PeerConnection with one
// audio transceiver. It implements media.Leg.
//
// Negotiate with Answer (the browser offered) or Offer then SetAnswer
// (pbxd calls the browser). Once that returns, Codec and EventPayloadType
// are set, and media flows as soon as ICE and DTLS are up.
type Leg struct {
	e   *Engine
	id  string
	pc  *webrtc.PeerConnection
	trk *track
	log *slog.Logger

	// sigMu serialises the negotiation calls; sender is set under it.
	sigMu  sync.Mutex
	sender *webrtc.RTPSender

	neg atomic.Pointer[negotiated]

	// The outgoing stream, under mu.
	mu  sync.Mutex
	seq *media.Sequencer
	hdr rtp.Header
	// A run is a stretch of frames of one Source; tsAdj lifts every
	// timestamp so that the run after a DTMF event starts after the
	// event's end (tsFloor), not within it.
	runSource  uint32
	runStarted bool
	tsAdj      uint32
	tsFloor    uint32
	floorSet   bool
	lastTS     uint32
	dtmfActive bool
	sent       uint64
	sentBytes  uint64
	remoteLoss float64
	remoteJit  float64

	// dtmfMu keeps SendDTMF digits one after the other.
	dtmfMu  sync.Mutex
	dtmfSrc uint32

	// The received stream.
	recv     atomic.Pointer[receiverBox]
	rxMu     sync.Mutex
	rs       recvStats
	received uint64
	recvB    uint64
	events   uint64
	lastRecv atomic.Int64 // unix nanos of the last RTP packet, or of when media became expected
	expect   atomic.Bool  // the browser should be sending
	hold     atomic.Bool  // the browser takes no media (it holds the call)
	timedOut atomic.Bool

	cbMu    sync.Mutex
	onState func(state string)
	onTO    func()

	// closeMu orders Close against goroutines being started.
	closeMu sync.Mutex
	closed  atomic.Bool
	done    chan struct{}
	wg      sync.WaitGroup
}

type receiverBox struct{ r media.Receiver }

var _ media.Leg = (*Leg)(nil)

// Open creates a leg with its peer connection; it does nothing on the
// network until Answer or Offer.
func (e *Engine) Open(id string) (*Leg, error) {
	select {
	case <-e.stop:
		return nil, ErrEngineClosed
	default:
	}
	pc, err := e.api.NewPeerConnection(webrtc.Configuration{
		// Browsers bundle everything on one transport and multiplex RTCP
		// with RTP; so do we, and we insist.
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
	if err != nil {
		return nil, fmt.Errorf("webrtc leg %s: %w", id, err)
	}
	l := &Leg{e: e, id: id, pc: pc, log: e.log.With("leg", id), seq: media.NewSequencer(8000), done: make(chan struct{})}
	l.dtmfSrc = l.seq.SSRC() ^ 0x5a5a5a5a
	l.trk = &track{id: "audio", stream: "pbxd", onBind: func(n *negotiated) { l.neg.Store(n) }}
	pc.OnTrack(l.onTrack)
	pc.OnConnectionStateChange(l.onConnState)
	if err := e.add(l); err != nil {
		_ = pc.Close()
		return nil, err
	}
	return l, nil
}

// ID names the leg.
func (l *Leg) ID() string { return l.id }

// Codec is the negotiated audio codec the leg sends (zero before
// negotiation). The browser may send the other G.711 codec if it was
// offered both; received frames carry their own codec.
func (l *Leg) Codec() media.Codec {
	if n := l.neg.Load(); n != nil {
		return n.codec
	}
	return media.Codec{}
}

// EventPayloadType is the negotiated telephone-event payload type, 0
// without one.
func (l *Leg) EventPayloadType() uint8 {
	if n := l.neg.Load(); n != nil {
		return n.eventPT
	}
	return 0
}

// SetReceiver routes the browser's frames to r; nil drops them.
func (l *Leg) SetReceiver(r media.Receiver) {
	if r == nil {
		l.recv.Store(nil)
		return
	}
	l.recv.Store(&receiverBox{r})
}

// OnState sets what is told about every change of the connection's state
// (StateConnecting, StateConnected, StateFailed …). fn runs on a goroutine
// of its own per change and may call Close; it is not called once Close
// has been called.
func (l *Leg) OnState(fn func(state string)) {
	l.cbMu.Lock()
	defer l.cbMu.Unlock()
	l.onState = fn
}

// OnTimeout sets what happens when the browser should be sending but has
// sent no RTP for the engine's MediaTimeout; fn runs once, on its own
// goroutine.
func (l *Leg) OnTimeout(fn func()) {
	l.cbMu.Lock()
	defer l.cbMu.Unlock()
	l.onTO = fn
}

// State is the connection's current state.
func (l *Leg) State() string { return l.pc.ConnectionState().String() }

// Answer takes the browser's offer (the body of its INVITE, or the /phone
// page's offer) and returns pbxd's answer with every ICE candidate in it
// (SIP has no trickle ICE). The answer carries exactly one audio codec,
// the first PCMU or PCMA of the offer, plus telephone-event/8000 if
// offered; an offer without G.711 is refused with ErrNoCodec before
// anything changes. A later call answers a re-offer (keeping the codec if
// it is still offered): hold (sendonly or
// inactive, when nothing is sent to the browser and no media timeout
// runs) and resume. After any other error, or if ctx ends first, the leg
// is left half-negotiated: close it.
//
// Two of pion's answers to hold offers are mended here, in the SDP text:
// pion v4.2.20 answers sendonly with sendrecv (RFC 3264 wants recvonly),
// so the answer's direction is rewritten; and it stops a transceiver for
// good when a re-offer says inactive, so that after resuming the browser
// would never hear pbxd again — pion is given such an offer as sendonly,
// and the browser still gets inactive.
func (l *Leg) Answer(ctx context.Context, offer []byte) ([]byte, error) {
	l.sigMu.Lock()
	defer l.sigMu.Unlock()
	if l.closed.Load() {
		return nil, media.ErrClosed
	}
	ra, ok, err := parseRemote(offer)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNoCodec
	}
	if l.pc.SignalingState() != webrtc.SignalingStateStable {
		return nil, ErrState
	}
	forPion := offer
	if ra.dir == dirInactive {
		forPion = setDirection(offer, dirSendonly)
	}
	if err := l.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(forPion)}); err != nil {
		return nil, fmt.Errorf("webrtc leg %s: offer: %w", l.id, err)
	}
	if l.sender == nil {
		// The transceiver pion made for the offer's audio section takes
		// our track and becomes sendrecv.
		s, err := l.pc.AddTrack(l.trk)
		if err != nil {
			return nil, fmt.Errorf("webrtc leg %s: %w", l.id, err)
		}
		l.startSender(s)
	}
	// One G.711 codec: the offer's first, or on a re-offer the one the
	// leg sends already (pion binds the track once).
	prefs := []webrtc.RTPCodecParameters{ra.choose(l.Codec().Name)}
	if ra.hasEvent {
		prefs = append(prefs, ra.event)
	}
	for _, tr := range l.pc.GetTransceivers() {
		if tr.Sender() == l.sender {
			if err := tr.SetCodecPreferences(prefs); err != nil {
				return nil, fmt.Errorf("webrtc leg %s: %w", l.id, err)
			}
		}
	}
	answer, err := l.pc.CreateAnswer(nil)
	if err != nil {
		return nil, fmt.Errorf("webrtc leg %s: answer: %w", l.id, err)
	}
	sdp, err := l.setLocal(ctx, answer)
	if err != nil {
		return nil, err
	}
	if ra.dir != dirSendrecv {
		sdp = setDirection(sdp, answerDirection(ra.dir))
	}
	l.negotiated(ra)
	return sdp, nil
}

// Offer returns pbxd's offer for calling a browser: PCMU, PCMA and
// telephone-event/8000, with every ICE candidate. Pass the browser's
// answer to SetAnswer.
func (l *Leg) Offer(ctx context.Context) ([]byte, error) {
	l.sigMu.Lock()
	defer l.sigMu.Unlock()
	if l.closed.Load() {
		return nil, media.ErrClosed
	}
	if l.pc.SignalingState() != webrtc.SignalingStateStable {
		return nil, ErrState
	}
	if l.sender == nil {
		tr, err := l.pc.AddTransceiverFromTrack(l.trk, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
		if err != nil {
			return nil, fmt.Errorf("webrtc leg %s: %w", l.id, err)
		}
		l.startSender(tr.Sender())
	}
	offer, err := l.pc.CreateOffer(nil)
	if err != nil {
		return nil, fmt.Errorf("webrtc leg %s: offer: %w", l.id, err)
	}
	return l.setLocal(ctx, offer)
}

// SetAnswer applies the browser's answer to the last Offer.
func (l *Leg) SetAnswer(answer []byte) error {
	l.sigMu.Lock()
	defer l.sigMu.Unlock()
	if l.closed.Load() {
		return media.ErrClosed
	}
	if l.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		return ErrState
	}
	ra, ok, err := parseRemote(answer)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNoCodec
	}
	if err := l.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		return fmt.Errorf("webrtc leg %s: answer: %w", l.id, err)
	}
	l.negotiated(ra)
	return nil
}

// setLocal applies our description and waits for ICE gathering to end
// (host candidates on the mux port: immediate), then returns the SDP with
// the candidates in it.
func (l *Leg) setLocal(ctx context.Context, desc webrtc.SessionDescription) ([]byte, error) {
	gathered := webrtc.GatheringCompletePromise(l.pc)
	if err := l.pc.SetLocalDescription(desc); err != nil {
		return nil, fmt.Errorf("webrtc leg %s: %w", l.id, err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.done:
		return nil, media.ErrClosed
	}
	sdp := []byte(l.pc.LocalDescription().SDP)
	if !bytes.Contains(sdp, []byte("a=candidate:")) {
		// pion leaves candidates out silently when every address was
		// filtered (a loopback address without the loopback setting).
		return nil, ErrNoCandidates
	}
	return sdp, nil
}

// negotiated records whether the browser is to send media now (the media
// timeout counts from here) and whether it takes media.
func (l *Leg) negotiated(ra remoteAudio) {
	if ra.sends() && !l.expect.Load() {
		l.lastRecv.Store(time.Now().UnixNano())
	}
	l.expect.Store(ra.sends())
	l.hold.Store(!ra.receives())
	if n := l.neg.Load(); n != nil {
		l.log.Debug("webrtc leg negotiated", "codec", n.codec.Name, "pt", n.codec.PayloadType, "eventPT", n.eventPT)
	}
}

// startSender drains the RTCP the browser sends about our stream (its
// receiver reports), which also keeps pion's interceptors running.
func (l *Leg) startSender(s *webrtc.RTPSender) {
	l.sender = s
	if !l.goStart(1) {
		return
	}
	go l.readSenderRTCP(s)
}

// goStart accounts n goroutines about to start; false once closed.
func (l *Leg) goStart(n int) bool {
	l.closeMu.Lock()
	defer l.closeMu.Unlock()
	if l.closed.Load() {
		return false
	}
	l.wg.Add(n)
	return true
}

func (l *Leg) onConnState(s webrtc.PeerConnectionState) {
	if l.closed.Load() {
		return
	}
	l.log.Debug("webrtc connection state", "state", s.String())
	l.cbMu.Lock()
	fn := l.onState
	l.cbMu.Unlock()
	if fn != nil {
		fn(s.String()) // pion runs this handler on a goroutine of its own
	}
}

// Send writes f towards the browser in the leg's own continuous stream:
// audio (in the leg's codec) with the negotiated G.711 payload type,
// events with the negotiated telephone-event type. Frames are dropped
// while SendDTMF plays a digit, while the browser holds the call, and
// before DTLS is up.
func (l *Leg) Send(f *media.Frame) error {
	if l.closed.Load() {
		return media.ErrClosed
	}
	if l.hold.Load() {
		return nil
	}
	n := l.neg.Load()
	if n == nil {
		return media.ErrNoRemote
	}
	var pt uint8
	switch f.Kind {
	case media.KindAudio:
		if f.Codec.Name != n.codec.Name {
			return media.ErrCodec
		}
		pt = n.codec.PayloadType
	case media.KindEvent:
		if n.eventPT == 0 {
			return nil
		}
		pt = n.eventPT
	default:
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dtmfActive {
		return nil
	}
	return l.write(f, pt, time.Now())
}

// write sends one frame; l.mu is held.
func (l *Leg) write(f *media.Frame, pt uint8, now time.Time) error {
	w, ssrc := l.trk.bound()
	if w == nil {
		return media.ErrNoRemote
	}
	seq, ts, marker := l.seq.Next(f, now)
	if !l.runStarted || f.Source != l.runSource {
		l.runStarted, l.runSource = true, f.Source
		if l.floorSet {
			if d := int32(l.tsFloor - (ts + l.tsAdj)); d > 0 {
				l.tsAdj += uint32(d)
			}
			l.floorSet = false
		}
	}
	ts += l.tsAdj
	l.hdr = rtp.Header{Version: 2, Marker: marker, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc}
	n, err := w.WriteRTP(&l.hdr, f.Payload)
	if err != nil {
		return err
	}
	l.lastTS = ts
	if n > 0 {
		l.sent++
		l.sentBytes += uint64(len(f.Payload))
	}
	return nil
}

// Stats reports the leg's counters.
func (l *Leg) Stats() media.Stats {
	l.rxMu.Lock()
	st := media.Stats{
		PacketsReceived: l.received,
		BytesReceived:   l.recvB,
		PacketsLost:     l.rs.lost(),
		JitterMs:        l.rs.jitter / 8,
		EventsReceived:  l.events,
	}
	l.rxMu.Unlock()
	l.mu.Lock()
	st.PacketsSent, st.BytesSent = l.sent, l.sentBytes
	st.RemoteFractionLost, st.RemoteJitterMs = l.remoteLoss, l.remoteJit
	l.mu.Unlock()
	st.Codec = l.Codec().Name
	return st
}

// Close ends the peer connection (the browser sees DTLS close_notify and
// the ICE agent stop) and waits for every goroutine the leg and pion
// started for it. It is idempotent.
func (l *Leg) Close() error {
	l.closeMu.Lock()
	if l.closed.Swap(true) {
		l.closeMu.Unlock()
		return nil
	}
	close(l.done)
	l.closeMu.Unlock()
	l.recv.Store(nil)
	err := l.pc.GracefulClose()
	l.wg.Wait()
	l.e.forget(l)
	if err != nil && !errors.Is(err, webrtc.ErrConnectionClosed) {
		return fmt.Errorf("webrtc leg %s: close: %w", l.id, err)
	}
	return nil
}

// idle reports how long the browser has been silent, if it should be
// sending at all.
func (l *Leg) idle(now time.Time) (time.Duration, bool) {
	if l.closed.Load() || !l.expect.Load() {
		return 0, false
	}
	return now.Sub(time.Unix(0, l.lastRecv.Load())), true
}

func (l *Leg) fireTimeout(after time.Duration) {
	if !l.timedOut.CompareAndSwap(false, true) {
		return
	}
	l.log.Info("media timeout: no RTP from the browser", "for", after.String())
	l.cbMu.Lock()
	fn := l.onTO
	l.cbMu.Unlock()
	if fn != nil {
		go fn()
	}
}
