package b2bua

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"pbxd/store"
)

// fork is one INVITE pbxd sends towards the callee: one per registered
// contact of the callee's devices, or one to the trunk.
type fork struct {
	call   *Call
	desc   string
	req    *sip.Request
	ua     *sipgo.DialogUA
	user   string
	pass   string
	ctx    context.Context
	cancel context.CancelFunc
	// leg is the callee-side media this fork offers (shared by plain
	// forks, a browser's own).
	leg *leg

	mu  sync.Mutex
	dtx *sipgo.DialogClientSession
}

// write sends the fork's INVITE.
func (f *fork) write() (*sipgo.DialogClientSession, error) {
	dtx, err := f.ua.WriteInvite(f.ctx, f.req)
	if err == nil {
		f.mu.Lock()
		f.dtx = dtx
		f.mu.Unlock()
	}
	return dtx, err
}

// forkEvent is a response on a fork: provisional (final false), or the
// end of its INVITE transaction (err nil means answered).
type forkEvent struct {
	f     *fork
	res   *sip.Response
	final bool
	err   error
}

// newFork prepares an INVITE to target (the Request-URI) over transport,
// sent to dest (the contact's registered source, for phones behind NAT;
// empty to resolve the Request-URI).
func (c *Call) newFork(desc string, target sip.Uri, transport, dest string, from sip.FromHeader, to sip.ToHeader, body []byte) *fork {
	req := sip.NewRequest(sip.INVITE, target)
	req.SetTransport(strings.ToUpper(transport))
	if dest != "" {
		req.SetDestination(dest)
	}
	from.Params = sip.NewParams()
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	callID := sip.CallIDHeader(store.NewID() + store.NewID())
	req.AppendHeader(&callID)
	mf := sip.MaxForwardsHeader(70)
	if c.a != nil {
		if in := c.a.uas.InviteRequest.MaxForwards(); in != nil && in.Val() > 1 {
			mf = sip.MaxForwardsHeader(in.Val() - 1)
		}
	}
	req.AppendHeader(&mf)
	req.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	ctx, cancel := context.WithCancel(context.Background())
	return &fork{call: c, desc: desc, req: req, ua: c.e.dialogUA(transport), ctx: ctx, cancel: cancel}
}

// allowedMethods are the methods pbxd takes in a dialog.
const allowedMethods = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"

// key is the fork's dialog key: its Call-ID and our From tag.
func (f *fork) key() string {
	tag, _ := f.req.From().Params.Get("tag")
	return dialogKey(f.req.CallID().Value(), tag)
}

func (f *fork) session() *sipgo.DialogClientSession {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dtx
}

// send hands an event to the call's setup loop, or — once setup is over —
// takes down a dialog nobody wants any more.
func (f *fork) send(ev forkEvent) {
	c := f.call
	select {
	case c.events <- ev:
	case <-c.setupDone:
		if ev.final && ev.err == nil {
			f.discard()
		}
	}
}

// start sends the INVITE and reports its responses.
func (f *fork) start() {
	// Over UDP the INVITE goes out from the calling goroutine (a datagram
	// never waits), sparing the call setup a hand-over to a new goroutine;
	// over TCP, TLS or WebSocket writing may have to connect first, so it
	// happens on the fork's own goroutine, which then waits for answers.
	var dtx *sipgo.DialogClientSession
	var err error
	written := strings.EqualFold(f.req.Transport(), "UDP")
	if written {
		dtx, err = f.write()
	}
	f.call.e.goTracked(func() {
		if !written {
			dtx, err = f.write()
		}
		if err != nil {
			f.send(forkEvent{f: f, final: true, err: err})
			return
		}
		err = dtx.WaitAnswer(f.ctx, sipgo.AnswerOptions{
			OnResponse: func(r *sip.Response) error {
				if r.IsProvisional() && r.StatusCode != 100 {
					f.send(forkEvent{f: f, res: r})
				}
				return nil
			},
			Username: f.user, Password: f.pass,
		})
		if err != nil && f.ctx.Err() != nil {
			// Cancelled. A 2xx that crossed our CANCEL still made a
			// dialog: acknowledge and end it.
			if r := dtx.InviteResponse; r != nil && r.IsSuccess() {
				f.discard()
			}
			f.send(forkEvent{f: f, final: true, err: err})
			return
		}
		f.send(forkEvent{f: f, final: true, err: err})
	})
}

// discard ACKs and BYEs a dialog that was answered but not wanted.
func (f *fork) discard() {
	dtx := f.session()
	if dtx == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = dtx.Ack(ctx)
	_ = dtx.Bye(ctx)
}

// finalResponse extracts the SIP response a fork failed with.
func finalResponse(err error) *sip.Response {
	var de *sipgo.ErrDialogResponse
	if errors.As(err, &de) {
		return de.Res
	}
	var dv sipgo.ErrDialogResponse
	if errors.As(err, &dv) {
		return dv.Res
	}
	return nil
}

// better picks the response to relay when every fork failed (RFC 3261
// §16.7 in spirit): a global 6xx wins, then busy, then the lowest code.
func better(cur, r *sip.Response) *sip.Response {
	rank := func(r *sip.Response) int {
		switch {
		case r.StatusCode >= 600:
			return 0
		case r.StatusCode == 486:
			return 1
		case r.StatusCode == 401 || r.StatusCode == 407:
			return 900 // our own credentials failed: say so last
		default:
			return 100 + r.StatusCode
		}
	}
	if cur == nil || rank(r) < rank(cur) {
		return r
	}
	return cur
}

// endFor maps a final status to a recorded end reason.
func endFor(code int) string {
	switch {
	case code == 486 || code == 600:
		return endBusy
	case code == 404 || code == 484 || code == 604:
		return endNotFound
	case code == 408 || code == 480:
		return endNoAnswer
	case code == 487:
		return endCancelled
	case code >= 500 && code < 600:
		return endFailed
	default:
		return endRejected
	}
}
