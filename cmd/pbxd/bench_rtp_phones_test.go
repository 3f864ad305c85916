//go:build bench

package main

// The phones of the RTP call benchmark (bench_rtp_test.go): a sipgo
// caller and a sipgo callee registered at pbxd, with the SDP they offer
// and answer. The call-control benchmarks' phones
// (bench_control_peers_test.go) use the same SDP and quiet sipgo logs.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

func benchSDP(port int) []byte {
	return []byte(fmt.Sprintf("v=0\r\no=bench 1 1 IN IP4 127.0.0.1\r\ns=bench\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n", port))
}

// benchSDPAudio reads the audio address of an SDP body.
func benchSDPAudio(body []byte) (netip.AddrPort, error) {
	var ip netip.Addr
	var port int
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "c=IN IP4 "); ok {
			if a, err := netip.ParseAddr(strings.Fields(rest)[0]); err == nil && (port == 0 || !ip.IsValid()) {
				ip = a
			}
		}
		if rest, ok := strings.CutPrefix(line, "m=audio "); ok && port == 0 {
			port, _ = strconv.Atoi(strings.Fields(rest)[0])
		}
	}
	if !ip.IsValid() || port == 0 {
		return netip.AddrPort{}, fmt.Errorf("no audio address in SDP %q", body)
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// benchUnhandled counts SIP responses the test's phones received outside
// any transaction.
var benchUnhandled atomic.Int64

// benchUA is a sipgo user agent serving one loopback UDP socket; its
// client sends from that socket.
type benchUA struct {
	ua   *sipgo.UserAgent
	srv  *sipgo.Server
	cli  *sipgo.Client
	conn net.PacketConn
	port int
	done chan struct{}
}

// newQuietUA makes a sipgo user agent called name on 127.0.0.1 and its
// server, neither of them logging. Responses no transaction wants are
// retransmissions (pbxd resending while its peer was slow): counted in
// benchUnhandled, not logged.
func newQuietUA(t *testing.T, name string) (*sipgo.UserAgent, *sipgo.Server) {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname("127.0.0.1"),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quietLog),
			sip.WithTransactionLayerUnhandledResponseHandler(func(*sip.Response) { benchUnhandled.Add(1) })),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quietLog)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	return ua, srv
}

// newQuietClient makes ua's client, not logging, that sends from conn (a
// loopback UDP socket its server serves).
func newQuietClient(t *testing.T, ua *sipgo.UserAgent, conn net.PacketConn) *sipgo.Client {
	t.Helper()
	cli, err := sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(conn.LocalAddr().String()), sipgo.WithClientHostname("127.0.0.1"),
		sipgo.WithClientPort(conn.LocalAddr().(*net.UDPAddr).Port), sipgo.WithClientLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

func newBenchUA(t *testing.T, name string, port int) *benchUA {
	t.Helper()
	ua, srv := newQuietUA(t, name)
	conn, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.UDPConn).SetReadBuffer(4 << 20)
	port = conn.LocalAddr().(*net.UDPAddr).Port
	cli := newQuietClient(t, ua, conn)
	u := &benchUA{ua: ua, srv: srv, cli: cli, conn: conn, port: port, done: make(chan struct{})}
	go func() { _ = srv.ServeUDP(conn); close(u.done) }()
	return u
}

func (u *benchUA) close() {
	u.srv.Close()
	u.conn.Close()
	u.ua.Close()
	select {
	case <-u.done:
	case <-time.After(5 * time.Second):
	}
}

func (u *benchUA) contact(user string) sip.ContactHeader {
	return sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1", Port: u.port}}
}

// benchUAS answers every INVITE: 180, 200 with its leg's SDP, and starts
// the leg once the ACK came.
type benchUAS struct {
	*benchUA
	gen  *rtpGen
	dc   *sipgo.DialogServerCache
	mu   sync.Mutex
	legs map[string]*genLeg // by pbxd's Call-ID
}

func newBenchUAS(t *testing.T, port int, gen *rtpGen) *benchUAS {
	u := &benchUAS{benchUA: newBenchUA(t, "bench-uas", port), gen: gen, legs: map[string]*genLeg{}}
	u.dc = sipgo.NewDialogServerCache(u.cli, u.contact("bench-callee"))
	u.srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		dst, err := benchSDPAudio(req.Body())
		if err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
			return
		}
		dlg, err := u.dc.ReadInvite(req, tx)
		if err != nil {
			return
		}
		leg := gen.newLeg(1)
		_ = dlg.Respond(180, "Ringing", nil)
		if err := dlg.RespondSDP(benchSDP(gen.port(leg))); err != nil { // returns on the ACK
			return
		}
		gen.start(leg, dst)
		u.mu.Lock()
		u.legs[req.CallID().Value()] = leg
		u.mu.Unlock()
	})
	u.srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = u.dc.ReadAck(req, tx) })
	u.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		u.mu.Lock()
		if l := u.legs[req.CallID().Value()]; l != nil {
			l.on.Store(false)
			delete(u.legs, req.CallID().Value())
		}
		u.mu.Unlock()
		if err := u.dc.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		}
	})
	return u
}

// silence stops every callee leg.
func (u *benchUAS) silence() {
	u.mu.Lock()
	for _, l := range u.legs {
		l.on.Store(false)
	}
	u.mu.Unlock()
}

// benchUAC places calls to the callee's extension at pbxd.
type benchUAC struct {
	*benchUA
	gen    *rtpGen
	dc     *sipgo.DialogClientCache
	target sip.Uri
}

type benchCall struct {
	sess *sipgo.DialogClientSession
	leg  *genLeg
}

func newBenchUAC(t *testing.T, pbxdSIP string, gen *rtpGen) *benchUAC {
	host, port, _ := strings.Cut(pbxdSIP, ":")
	pn, _ := strconv.Atoi(port)
	u := &benchUAC{benchUA: newBenchUA(t, "bench-uac", 0), gen: gen, target: sip.Uri{Scheme: "sip", User: benchCalleeExt, Host: host, Port: pn}}
	u.dc = sipgo.NewDialogClientCache(u.cli, u.contact("bench-uac"))
	u.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := u.dc.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		}
	})
	return u
}

// call places one call as c (answering the 407) and starts its caller
// leg once the 200 is ACKed.
func (u *benchUAC) call(ctx context.Context, c benchCaller) (*benchCall, error) {
	leg := u.gen.newLeg(0)
	req := sip.NewRequest(sip.INVITE, u.target)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: c.ext, Host: "127.0.0.1"}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(benchSDP(u.gen.port(leg)))
	sess, err := u.dc.WriteInvite(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{Username: c.dev, Password: c.pw}); err != nil {
		return nil, err
	}
	dst, err := benchSDPAudio(sess.InviteResponse.Body())
	if err != nil {
		return nil, err
	}
	if err := sess.Ack(ctx); err != nil {
		return nil, err
	}
	u.gen.start(leg, dst)
	return &benchCall{sess: sess, leg: leg}, nil
}
