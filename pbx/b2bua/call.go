package b2bua

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"pbxd/media"
	"pbxd/media/dtmf"
	"pbxd/media/rtpleg"
	"pbxd/media/sdp"
	"pbxd/media/webrtcleg"
	"pbxd/store"
)

// Why calls end, as recorded in workitems.
const (
	endCompleted    = "completed"
	endBusy         = "busy"
	endNoAnswer     = "no-answer"
	endCancelled    = "cancelled"
	endRejected     = "rejected"
	endNotFound     = "not-found"
	endUnavailable  = "unavailable"
	endMediaTimeout = "media-timeout"
	endFailed       = "failed"
	endShutdown     = "shutdown"
)

// leg is one SIP dialog of a call with its RTP endpoint: the caller's
// (pbxd is the UAS) or the callee's (pbxd is the UAC).
type leg struct {
	call *Call
	role string // "caller" or "callee"
	key  string
	uas  *sipgo.DialogServerSession
	uac  *sipgo.DialogClientSession
	// The leg's media: plain RTP with SDP written by pbxd (rtp), or a
	// browser's WebRTC connection whose SDP pion writes (web).
	rtp *rtpleg.Leg
	web *webrtcleg.Leg
	// answered is set once the browser's SDP answer was applied.
	webAnswered bool
	// SDP state of the leg: our origin and last description, their last
	// session, and what was negotiated.
	local  sdp.Local
	remote *sdp.Session
	codec  sdp.Codec
	te     uint8
	// ackAnswer is set when pbxd's 2xx carried the offer (the party sent
	// an INVITE without SDP): the answer comes in the ACK.
	ackAnswer ackAnswer
}

// media is the leg's endpoint for the bridge.
func (l *leg) media() media.Leg {
	if l.web != nil {
		return l.web
	}
	return l.rtp
}

// onTimeout arms the media timeout of the leg.
func (l *leg) onTimeout(fn func()) {
	if l.web != nil {
		l.web.OnTimeout(fn)
		return
	}
	l.rtp.OnTimeout(fn)
}

// closeMedia releases the leg's sockets or peer connection.
func (l *leg) closeMedia() {
	if l.web != nil {
		l.web.Close()
	}
	if l.rtp != nil {
		l.rtp.Close()
	}
}

func (l *leg) session() interface {
	Do(context.Context, *sip.Request) (*sip.Response, error)
	WriteRequest(*sip.Request) error
	Context() context.Context
} {
	if l.uas != nil {
		return l.uas
	}
	return l.uac
}

// remoteTarget is where in-dialog requests go (the party's Contact).
func (l *leg) remoteTarget() sip.Uri {
	if l.uas != nil {
		if c := l.uas.InviteRequest.Contact(); c != nil {
			return *c.Address.Clone()
		}
		return l.uas.InviteRequest.Recipient
	}
	if r := l.uac.InviteResponse; r != nil {
		if c := r.Contact(); c != nil {
			return *c.Address.Clone()
		}
	}
	return l.uac.InviteRequest.Recipient
}

func (l *leg) readAck(req *sip.Request, tx sip.ServerTransaction) {
	if l.uas != nil {
		_ = l.uas.ReadAck(req, tx)
	}
	l.call.takeAckAnswer(l, req.Body())
}

func (l *leg) readBye(req *sip.Request, tx sip.ServerTransaction) error {
	if l.uas != nil {
		return l.uas.ReadBye(req, tx)
	}
	return l.uac.ReadBye(req, tx)
}

func (l *leg) bye(ctx context.Context) error {
	if l.uas != nil {
		return l.uas.Bye(ctx)
	}
	return l.uac.Bye(ctx)
}

// applyMedia points the RTP leg at what the party's SDP says. ours is the
// direction of our own SDP towards the party; expect says whether the
// party should be sending now (answered and not on hold), which arms the
// media timeout.
func (l *leg) applyMedia(remote *sdp.Session, codec sdp.Codec, te uint8, ours sdp.Direction, expect bool) {
	l.remote, l.codec, l.te = remote, codec, te
	a := remote.Audio
	p := rtpleg.Params{Remote: a.Addr, RemoteRTCP: a.RTCP, Codec: mediaCodec(codec), EventPT: te,
		Send: ours.Sends() && !a.Addr.Addr().IsUnspecified(), Recv: expect && ours.Receives()}
	if a.RTCPMux {
		p.RemoteRTCP = a.Addr
	}
	l.rtp.Configure(p)
}

// sdpCodec names a media codec the way the SDP package does.
func sdpCodec(c media.Codec) sdp.Codec {
	if c.Name == media.PCMA.Name {
		return sdp.PCMA
	}
	return sdp.PCMU
}

func mediaCodec(c sdp.Codec) media.Codec {
	if c == sdp.PCMA {
		return media.PCMA
	}
	return media.PCMU
}

// Call is one call through the box: the caller's leg, the callee's once
// answered, the forks still ringing, the media bridge and the record.
type Call struct {
	e   *Engine
	id  string
	log *slog.Logger

	mu         sync.Mutex
	w          store.Workitem
	a, b       *leg
	forks      []*fork
	bridge     *media.Bridge
	answered   bool
	ended      bool
	endCh      chan struct{}
	reinviting bool

	// Setup state, used by the caller's INVITE goroutine: the callee-side
	// legs on offer (bLegs; sharedB is the plain RTP one all phone forks
	// share, with its offer).
	bLegs       []*leg
	sharedB     *leg
	sharedOffer []byte
	events      chan forkEvent
	setupDone   chan struct{}
	setupOnce   sync.Once
	earlyMedia  bool
	answerBody  []byte

	dtmfMu sync.Mutex
	dtmf   map[media.Leg]*dtmf.Detector

	// calleeRole names the leg pbxd places ("callee"; an agent's own
	// connection says "agent"). cancelled ends the setup early: the
	// caller's CANCEL, or the originator's context.
	calleeRole string
	cancelled  <-chan struct{}
	// For calls pbxd originates (no caller leg): ask the phone to answer
	// by itself, report ringing, be told when the answered call ends, and
	// whether to keep a record at all.
	autoAnswer bool
	onProgress func(code int)
	onEnd      func(reason string)
	noRecord   bool
}

// record queues the current state of the workitem; c.mu is held.
func (c *Call) record() {
	if !c.noRecord {
		c.e.rec.save(&c.w)
	}
}

// hangup ends the call once: it cancels forks still ringing, sends BYE to
// every answered leg but the one that hung up (from), releases the media
// and writes the final record. by is caller, callee or system.
func (c *Call) hangup(reason, by string, from *leg) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	close(c.endCh)
	now := c.e.cfg.Now()
	c.w.State, c.w.EndedAt = store.WorkitemEnded, now
	if c.answered {
		c.w.DurationMs = now.Sub(c.w.AnsweredAt).Milliseconds()
		c.w.HangupBy = by
		if reason == endCompleted {
			c.w.EndStatus = 200
		}
	}
	if c.w.EndReason == "" {
		c.w.EndReason = reason
	}
	legs := []*leg{}
	for _, l := range []*leg{c.a, c.b} {
		if l != nil {
			legs = append(legs, l)
			c.w.Media = append(c.w.Media, legMedia(l))
		}
	}
	for _, l := range c.bLegs {
		if l != c.b {
			// Callee legs that never answered (they may have carried
			// early media).
			legs = append(legs, l)
		}
	}
	forks, answered := c.forks, c.answered
	c.record()
	c.mu.Unlock()

	for _, f := range forks {
		f.cancel()
	}
	if c.bridge != nil {
		c.bridge.Close()
	}
	for _, l := range legs {
		if l.key != "" {
			c.e.removeDialog(l)
		}
		if l != from && answered && (l.uas != nil || l.uac != nil) {
			c.e.goTracked(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := l.bye(ctx); err != nil {
					c.log.Debug("BYE not confirmed", "leg", l.role, "err", err)
				}
			})
		}
		l.closeMedia()
	}
	c.e.mu.Lock()
	delete(c.e.calls, c.id)
	c.e.mu.Unlock()
	c.log.Info("call ended", "reason", c.w.EndReason, "by", by, "duration_ms", c.w.DurationMs)
	if c.onEnd != nil && answered {
		c.onEnd(c.w.EndReason)
	}
}

func legMedia(l *leg) store.LegMedia {
	st := l.media().Stats()
	return store.LegMedia{Leg: l.role, Codec: st.Codec, PacketsReceived: st.PacketsReceived, PacketsSent: st.PacketsSent,
		PacketsLost: st.PacketsLost, JitterMs: st.JitterMs, RemoteFractionLost: st.RemoteFractionLost,
		RemoteJitterMs: st.RemoteJitterMs, EventsReceived: st.EventsReceived}
}

// onMediaTimeout hangs up a call whose party stopped sending RTP.
func (c *Call) onMediaTimeout() {
	c.mu.Lock()
	if c.w.EndReason == "" {
		c.w.EndReason = endMediaTimeout
	}
	c.mu.Unlock()
	c.hangup(endMediaTimeout, "system", nil)
}

// onEvent turns the RFC 4733 packets a party sends (the bridge passes
// them on as they are) into digits, each reported once. It runs on the
// sending leg's receive goroutine; each leg has its own detector.
func (c *Call) onEvent(from media.Leg, f *media.Frame) {
	c.dtmfMu.Lock()
	if c.dtmf == nil {
		c.dtmf = map[media.Leg]*dtmf.Detector{}
	}
	det := c.dtmf[from]
	if det == nil {
		det = &dtmf.Detector{}
		c.dtmf[from] = det
	}
	rep, ok, err := det.Packet(f.Timestamp, f.Marker, f.Payload)
	c.dtmfMu.Unlock()
	if err != nil || !ok || !rep.Start {
		return
	}
	c.log.Info("DTMF", "leg", from.ID(), "digit", string(rep.Digit))
	if fn := c.e.cfg.OnDTMF; fn != nil {
		fn(c.id, from.ID(), rep.Digit)
	}
}
