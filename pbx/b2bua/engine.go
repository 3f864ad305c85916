// Package b2bua is pbxd's call engine: a back-to-back user agent that
// answers every call itself and places a new call towards the callee, so
// both dialogs and all media are anchored on the box. It authenticates
// devices (407), routes to extensions (forking to every registered contact)
// and trunks, relays ringing, CANCEL, BYE and hold re-INVITEs, bridges the
// two RTP legs and leaves a workitem for every call.
package b2bua

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"pbxd/media"
	"pbxd/media/rtpleg"
	"pbxd/media/webrtcleg"
	"pbxd/pbx/sipauth"
	"pbxd/store"
)

// Config wires the engine.
type Config struct {
	Store *store.Store
	// Auth checks device credentials on INVITEs (407 challenges).
	Auth *sipauth.Devices
	// Media opens the RTP legs; WebRTC the browsers' (nil: browsers
	// cannot call or be called).
	Media  *rtpleg.Engine
	WebRTC *webrtcleg.Engine
	// MixClock drives every bridge that mixes (conferences, monitoring)
	// on one ticker; nil gives each such bridge its own.
	MixClock *media.MixClock
	// UDP sends from the SIP listening port; TCP opens or reuses stream
	// connections. Both are required.
	UDP, TCP *sipgo.Client
	// Host and Port are pbxd's advertised SIP address, for Contact headers;
	// TLSPort, WSPort and WSSPort are those of the other transports (0 when
	// off).
	Host                     string
	Port                     int
	TLSPort, WSPort, WSSPort int
	// RingTimeout ends an unanswered call with 480 (default 60 s).
	RingTimeout time.Duration
	// Trunks routes to and from carriers; nil means no trunks.
	Trunks Trunks
	// OnDTMF, when set, hears every digit a party sends (RFC 4733), with
	// the call's workitem id and the leg ("<workitem>/caller" or
	// "<workitem>/callee"). It must not block.
	OnDTMF func(workitemID, leg string, digit rune)
	Logger *slog.Logger
	Now    func() time.Time
}

// Trunks is what the engine needs from the trunk manager.
type Trunks interface {
	// Inbound reports whether req comes from a carrier, and for which
	// extension (from the trunk's DID map; empty when the DID is unknown).
	Inbound(req *sip.Request) (TrunkInbound, bool)
	// Outbound picks the trunk for a number that is not an extension.
	Outbound(number string) (TrunkOutbound, bool)
}

// TrunkInbound is a call arriving from a carrier.
type TrunkInbound struct {
	TrunkID   string
	DID       string
	Extension string
}

// TrunkOutbound says how to send a call out through a trunk.
type TrunkOutbound struct {
	TrunkID string
	// Target is the Request-URI (the dial string at the carrier).
	Target sip.Uri
	// Transport is UDP, TCP or TLS; Destination, when set, is where to send
	// (host:port) instead of resolving Target.
	Transport, Destination string
	// FromUser, FromHost and FromName make the From header (caller ID).
	FromUser, FromHost, FromName string
	// Username and Password answer the carrier's 401/407 challenges.
	Username, Password string
}

// Engine runs calls.
type Engine struct {
	cfg Config
	log *slog.Logger
	rec *recorder
	uas map[string]*sipgo.DialogUA // by transport

	mu      sync.Mutex
	calls   map[string]*Call
	dialogs map[string]*leg // call-id + local tag → leg
	closed  bool
	wg      sync.WaitGroup
}

// New returns an engine; Close ends its calls.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.Auth == nil || cfg.Media == nil || cfg.UDP == nil || cfg.TCP == nil {
		return nil, errors.New("b2bua: store, auth, media and both clients are required")
	}
	if cfg.RingTimeout <= 0 {
		cfg.RingTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, calls: map[string]*Call{}, dialogs: map[string]*leg{}}
	e.uas = map[string]*sipgo.DialogUA{
		"UDP": {Client: cfg.UDP, ContactHDR: e.contact("UDP"), RewriteContact: true},
		"TCP": {Client: cfg.TCP, ContactHDR: e.contact("TCP"), RewriteContact: true},
		"TLS": {Client: cfg.TCP, ContactHDR: e.contact("TLS"), RewriteContact: true},
		"WS":  {Client: cfg.TCP, ContactHDR: e.contact("WS"), RewriteContact: true},
		"WSS": {Client: cfg.TCP, ContactHDR: e.contact("WSS"), RewriteContact: true},
	}
	e.rec = newRecorder(cfg.Store, cfg.Logger)
	if err := e.closeInterrupted(); err != nil {
		e.rec.close()
		return nil, err
	}
	return e, nil
}

// contact is pbxd's Contact header for a transport.
func (e *Engine) contact(transport string) sip.ContactHeader {
	u := sip.Uri{Scheme: "sip", User: "pbxd", Host: e.cfg.Host, Port: e.cfg.Port}
	switch {
	case transport == "TLS" && e.cfg.TLSPort != 0:
		u.Port = e.cfg.TLSPort
	case transport == "WS" && e.cfg.WSPort != 0:
		u.Port = e.cfg.WSPort
	case transport == "WSS" && e.cfg.WSSPort != 0:
		u.Port = e.cfg.WSSPort
	}
	if transport != "UDP" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", strings.ToLower(transport))
	}
	return sip.ContactHeader{Address: u}
}

// dialogUA is the dialog user agent for a transport name as sipgo spells
// it (UDP, TCP, TLS); unknown ones fall back to UDP.
func (e *Engine) dialogUA(transport string) *sipgo.DialogUA {
	if ua, ok := e.uas[strings.ToUpper(transport)]; ok {
		return ua
	}
	return e.uas["UDP"]
}

// closeInterrupted ends the records of calls that were up when pbxd last
// stopped without hanging them up (a crash or power loss).
func (e *Engine) closeInterrupted() error {
	now := e.cfg.Now()
	return e.cfg.Store.Update(func(tx *store.Tx) error {
		open, err := tx.OpenWorkitems()
		if err != nil {
			return err
		}
		for _, w := range open {
			if !strings.HasSuffix(w.Type, "Call") {
				continue
			}
			w.State, w.EndedAt, w.EndReason = store.WorkitemEnded, now, "interrupted"
			if !w.AnsweredAt.IsZero() {
				w.DurationMs = now.Sub(w.AnsweredAt).Milliseconds()
			}
			if err := tx.PutWorkitem(w); err != nil {
				return err
			}
		}
		if len(open) > 0 {
			e.log.Warn("closed the records of calls cut off by the last stop", "calls", len(open))
		}
		return nil
	})
}

func dialogKey(callID, localTag string) string { return callID + "\x00" + localTag }

// findLeg returns the leg an in-dialog request belongs to: our tag is in
// its To header whichever side of the dialog we are.
func (e *Engine) findLeg(req *sip.Request) *leg {
	to, cid := req.To(), req.CallID()
	if to == nil || cid == nil {
		return nil
	}
	tag, _ := to.Params.Get("tag")
	if tag == "" {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dialogs[dialogKey(cid.Value(), tag)]
}

func (e *Engine) addDialog(l *leg) {
	e.mu.Lock()
	e.dialogs[l.key] = l
	e.mu.Unlock()
}

func (e *Engine) removeDialog(l *leg) {
	e.mu.Lock()
	if e.dialogs[l.key] == l {
		delete(e.dialogs, l.key)
	}
	e.mu.Unlock()
}

// go runs fn as a goroutine the engine waits for on Close.
func (e *Engine) goTracked(fn func()) { e.wg.Go(fn) }

// Stats counts what is live, for metrics and leak checks.
type Stats struct {
	Calls, Dialogs, MediaLegs int
}

// Stats reports live calls, dialogs and RTP legs.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	st := Stats{Calls: len(e.calls), Dialogs: len(e.dialogs)}
	e.mu.Unlock()
	// The media engines have their own locks; never nest them in e.mu.
	st.MediaLegs = e.cfg.Media.Active()
	if e.cfg.WebRTC != nil {
		st.MediaLegs += e.cfg.WebRTC.Active()
	}
	return st
}

// Close hangs up every call, waits (bounded by ctx) for the BYEs and
// CANCELs to go out, and flushes the call records.
func (e *Engine) Close(ctx context.Context) {
	e.mu.Lock()
	e.closed = true
	calls := make([]*Call, 0, len(e.calls))
	for _, c := range e.calls {
		calls = append(calls, c)
	}
	e.mu.Unlock()
	for _, c := range calls {
		c.hangup(endShutdown, "system", nil)
	}
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		e.log.Warn("b2bua: calls still ending at shutdown", "calls", e.Stats().Calls)
	}
	e.rec.close()
}

// HandleAck confirms the dialog of a 2xx we sent.
func (e *Engine) HandleAck(req *sip.Request, tx sip.ServerTransaction) {
	if l := e.findLeg(req); l != nil {
		l.readAck(req, tx)
	}
}

// HandleBye ends a call from either side.
func (e *Engine) HandleBye(req *sip.Request, tx sip.ServerTransaction) {
	l := e.findLeg(req)
	if l == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	if err := l.readBye(req, tx); err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
		return
	}
	l.call.hangup(endCompleted, l.role, l)
}

// HandleCancel answers CANCELs that match no INVITE (the transaction
// layer handles the ones that do).
func (e *Engine) HandleCancel(req *sip.Request, tx sip.ServerTransaction) {
	_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
}

// HandleInvite takes new calls and re-INVITEs.
func (e *Engine) HandleInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		l := e.findLeg(req)
		if l == nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
			return
		}
		l.call.reinvite(l, req, tx)
		return
	}
	e.inbound(req, tx)
}

// HandleUpdate answers in-dialog UPDATEs (RFC 3311). One without a body
// refreshes the session; one with an SDP offer (hold, a new address) is
// handled like a re-INVITE: relayed to the other party, and answered in
// the 200.
func (e *Engine) HandleUpdate(req *sip.Request, tx sip.ServerTransaction) {
	l := e.findLeg(req)
	if l == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	if len(req.Body()) > 0 {
		l.call.reinvite(l, req, tx)
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
}
