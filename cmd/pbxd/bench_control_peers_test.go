//go:build bench

package main

// The call-control benchmarks' peers (bench_control_test.go,
// bench_control_webrtc_test.go): timed API requests, a user's event
// stream, and SIP phones in the test process that register with digest,
// note when each INVITE arrives, answer, and send and receive stamped
// G.711.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"pbxd/media/tone"
)

// --- HTTP ---

// ctlHTTP keeps its connections: every sample after the first reuses one.
var ctlHTTP = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// ctlResp is an API answer with when its request was sent.
type ctlResp struct {
	sent time.Time
	rtt  time.Duration
	code int
	raw  []byte
	obj  map[string]any
}

// ctlDo sends one request (safe from any goroutine): the body is encoded
// first, and sent is taken just before the request is written.
func ctlDo(method, base, path, tok string, body any) (ctlResp, error) {
	var rd *bytes.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequest(method, base+path, rd)
	} else {
		req, err = http.NewRequest(method, base+path, nil)
	}
	if err != nil {
		return ctlResp{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	r := ctlResp{sent: time.Now()}
	res, err := ctlHTTP.Do(req)
	if err != nil {
		return r, err
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(res.Body)
	res.Body.Close()
	r.rtt, r.code, r.raw = time.Since(r.sent), res.StatusCode, buf.Bytes()
	_ = json.Unmarshal(r.raw, &r.obj)
	return r, err
}

func ctlWant(t *testing.T, method, base, path, tok string, body any, code int) ctlResp {
	t.Helper()
	r, err := ctlDo(method, base, path, tok, body)
	if err != nil || r.code != code {
		t.Fatalf("%s %s: %v: got %d, want %d: %s", method, path, err, r.code, code, r.raw)
	}
	return r
}

// --- events ---

// ctlEvents is a user's event stream (/api/v1/events), each event stamped
// as its frame was read.
type ctlEvents struct {
	conn    net.Conn
	ch      chan ctlEvent
	dropped atomic.Int64
}

type ctlEvent struct {
	at   time.Time
	typ  string
	data map[string]any
}

func dialCtlEvents(base, uid, tok string) (*ctlEvents, error) {
	d := ws.Dialer{Timeout: 5 * time.Second}
	conn, _, _, err := d.Dial(context.Background(), "ws"+strings.TrimPrefix(base, "http")+"/api/v1/events?userId="+uid+"&access_token="+tok)
	if err != nil {
		return nil, err
	}
	e := &ctlEvents{conn: conn, ch: make(chan ctlEvent, 1024)}
	go func() {
		defer close(e.ch)
		for {
			data, _, err := wsutil.ReadServerData(conn)
			if err != nil {
				return
			}
			at := time.Now()
			var m struct {
				Type string         `json:"type"`
				Data map[string]any `json:"data"`
			}
			if json.Unmarshal(data, &m) != nil {
				continue
			}
			select {
			case e.ch <- ctlEvent{at: at, typ: m.Type, data: m.Data}:
			default:
				e.dropped.Add(1)
			}
		}
	}()
	return e, nil
}

func (e *ctlEvents) close() { e.conn.Close() }

// next returns the next event of type typ that match accepts, skipping
// the others; match's error ends the wait.
func (e *ctlEvents) next(typ string, match func(map[string]any) (bool, error), limit time.Duration) (ctlEvent, error) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-e.ch:
			if !ok {
				return ev, fmt.Errorf("the event stream ended while waiting for %s", typ)
			}
			if ev.typ != typ {
				continue
			}
			if ok, err := match(ev.data); err != nil || ok {
				return ev, err
			}
		case <-timer.C:
			return ctlEvent{}, fmt.Errorf("no %s event within %v", typ, limit)
		}
	}
}

// stateIs matches a connection event; a disconnection while waiting for
// another state is an error.
func stateIs(want string) func(map[string]any) (bool, error) {
	return func(d map[string]any) (bool, error) {
		switch d["state"] {
		case want:
			return true, nil
		case "disconnected":
			return false, fmt.Errorf("the connection ended (%v) instead of reaching %s", d["reason"], want)
		}
		return false, nil
	}
}

func fieldIs(k, v string) func(map[string]any) (bool, error) {
	return func(d map[string]any) (bool, error) { return d[k] == v, nil }
}

// --- the SIP phone ---

// ctlInvite is an INVITE's arrival at a phone.
type ctlInvite struct {
	callID string
	at     time.Time
}

// stampConn is a phone's SIP socket: it notes when each new INVITE (by
// Call-ID, so retransmissions do not count) was read, before sipgo parses
// it.
type stampConn struct {
	net.PacketConn
	mu      sync.Mutex
	seen    map[string]bool
	invites chan ctlInvite
}

func (c *stampConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err == nil && bytes.HasPrefix(b[:n], []byte("INVITE ")) {
		at := time.Now()
		if m, ok := parseSIPFields(benchPkt{payload: b[:n]}); ok {
			c.mu.Lock()
			fresh := !c.seen[m.callID]
			c.seen[m.callID] = true
			c.mu.Unlock()
			if fresh {
				select {
				case c.invites <- ctlInvite{callID: m.callID, at: at}:
				default:
				}
			}
		}
	}
	return n, addr, err
}

func (c *stampConn) drain() {
	for {
		select {
		case <-c.invites:
		default:
			return
		}
	}
}

func (c *stampConn) next(limit time.Duration) (ctlInvite, error) {
	select {
	case inv := <-c.invites:
		return inv, nil
	case <-time.After(limit):
		return ctlInvite{}, fmt.Errorf("no INVITE at the phone within %v", limit)
	}
}

// ctlPhone is a registered SIP phone that answers every INVITE (200 with
// its media port, then the ACK) and sends stamped audio on each answered
// call until its BYE.
type ctlPhone struct {
	ua    *sipgo.UserAgent
	srv   *sipgo.Server
	cli   *sipgo.Client
	conn  *stampConn
	port  int
	dc    *sipgo.DialogServerCache
	media *ctlMedia
	done  chan struct{}
	mu    sync.Mutex
	calls map[string]*ctlStream // answered, by Call-ID
	byes  map[string]bool
}

// newCtlPhone starts a phone on a free loopback port and registers it as
// device dev (password "pw-"+dev) at registrar.
func newCtlPhone(t *testing.T, base time.Time, registrar, dev string) *ctlPhone {
	t.Helper()
	ua, srv := newQuietUA(t, "ctl-phone")
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ph := &ctlPhone{ua: ua, srv: srv, conn: &stampConn{PacketConn: pc, seen: map[string]bool{}, invites: make(chan ctlInvite, 1024)},
		port: pc.LocalAddr().(*net.UDPAddr).Port, media: newCtlMedia(t, base), done: make(chan struct{}),
		calls: map[string]*ctlStream{}, byes: map[string]bool{}}
	ph.cli = newQuietClient(t, ua, pc)
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: dev, Host: "127.0.0.1", Port: ph.port}}
	ph.dc = sipgo.NewDialogServerCache(ph.cli, contact)
	srv.OnInvite(ph.onInvite)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = ph.dc.ReadAck(req, tx) })
	srv.OnBye(ph.onBye)
	go func() { _ = srv.ServeUDP(ph.conn); close(ph.done) }()
	t.Cleanup(ph.close)
	// The client sends from the served socket once the transport has it.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if c, err := ua.TransportLayer().GetConnection("udp", pc.LocalAddr().String()); err == nil && c != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the phone's socket %s is not served", pc.LocalAddr())
		}
	}

	host, p, _ := net.SplitHostPort(registrar)
	port, _ := strconv.Atoi(p)
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: host, Port: port})
	aor := sip.Uri{Scheme: "sip", User: dev, Host: host}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Expires", "3600"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := ph.cli.Do(ctx, req)
	if err == nil && (res.StatusCode == 401 || res.StatusCode == 407) {
		res, err = ph.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: dev, Password: "pw-" + dev})
	}
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("registering %s: %v %v", dev, err, res)
	}
	return ph
}

func (ph *ctlPhone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	dst, err := benchSDPAudio(req.Body())
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	dlg, err := ph.dc.ReadInvite(req, tx)
	if err != nil {
		return
	}
	if err := dlg.RespondSDP(benchSDP(ph.media.port)); err != nil { // returns on the ACK
		return
	}
	s := ph.media.start(dst)
	ph.mu.Lock()
	ph.calls[req.CallID().Value()] = s
	ph.mu.Unlock()
}

func (ph *ctlPhone) onBye(req *sip.Request, tx sip.ServerTransaction) {
	id := req.CallID().Value()
	ph.mu.Lock()
	if s := ph.calls[id]; s != nil {
		ph.media.stop(s)
		delete(ph.calls, id)
	}
	ph.byes[id] = true
	ph.mu.Unlock()
	if err := ph.dc.ReadBye(req, tx); err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
	}
}

// stream is an answered call's audio, waiting (at most 2 s) for its ACK.
func (ph *ctlPhone) stream(callID string) *ctlStream {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		ph.mu.Lock()
		s := ph.calls[callID]
		ph.mu.Unlock()
		if s != nil {
			return s
		}
	}
	return nil
}

// active is the number of answered calls without a BYE yet.
func (ph *ctlPhone) active() int {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return len(ph.calls)
}

func (ph *ctlPhone) waitBye(callID string, limit time.Duration) error {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		ph.mu.Lock()
		ok := ph.byes[callID]
		ph.mu.Unlock()
		if ok {
			return nil
		}
	}
	return fmt.Errorf("no BYE for call %s within %v", callID, limit)
}

func (ph *ctlPhone) close() {
	ph.srv.Close()
	ph.conn.Close()
	ph.ua.Close()
	select {
	case <-ph.done:
	case <-time.After(5 * time.Second):
	}
	ph.media.close()
}

// --- the phone's media ---

// ctlMedia is a phone's RTP port (RTCP, on the port above, is drained). One
// goroutine sends every stream in its 1 ms slot of the 20 ms cycle (or
// every 1 ms when fast): RTP with a payload stamped with the stream, its
// sequence number and the send time, then a tone. Another receives:
// packets per source port, and while recording, the stamps of one stream.
type ctlMedia struct {
	base      time.Time
	rtp, rtcp *net.UDPConn
	port      int
	payload   [samplesPerPacket]byte
	mu        sync.Mutex
	streams   []*ctlStream
	sources   map[uint16]uint64
	watch     uint32
	sent, got map[uint32]int64 // of the watched stream, by sequence number
	recv      atomic.Uint64    // every RTP packet received
	sentPkts  atomic.Uint64
	stopped   chan struct{}
	wg        sync.WaitGroup
}

// ctlStream is one call's audio towards pbxd.
type ctlStream struct {
	id, seq uint32
	slot    int
	dst     netip.AddrPort
	fast    atomic.Bool
}

func newCtlMedia(t *testing.T, base time.Time) *ctlMedia {
	t.Helper()
	m := &ctlMedia{base: base, sources: map[uint16]uint64{}, stopped: make(chan struct{})}
	for m.rtp == nil {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		r, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
		if port%2 != 0 || err != nil {
			c.Close()
			if r != nil {
				r.Close()
			}
			continue
		}
		m.rtp, m.rtcp, m.port = c, r, port
	}
	for i, s := range tone.Sine(1000, toneAmplitude, audioRate, samplesPerPacket) {
		m.payload[i] = ulawEncode(s)
	}
	m.wg.Add(3)
	go m.send()
	go m.receive()
	go func() {
		defer m.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := m.rtcp.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	return m
}

func (m *ctlMedia) start(dst netip.AddrPort) *ctlStream {
	s := &ctlStream{id: rand.Uint32(), dst: dst}
	m.mu.Lock()
	s.slot = len(m.streams) % 20
	m.streams = append(m.streams, s)
	m.mu.Unlock()
	return s
}

func (m *ctlMedia) stop(s *ctlStream) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, x := range m.streams {
		if x == s {
			m.streams = append(m.streams[:i:i], m.streams[i+1:]...)
			return
		}
	}
}

// record starts keeping the stamps of stream id, sent and received.
func (m *ctlMedia) record(id uint32) {
	m.mu.Lock()
	m.watch, m.sent, m.got = id, map[uint32]int64{}, map[uint32]int64{}
	m.mu.Unlock()
}

// recorded returns what record kept and stops keeping it.
func (m *ctlMedia) recorded() (sent, got map[uint32]int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sent, got = m.sent, m.got
	m.watch, m.sent, m.got = 0, nil, nil
	return sent, got
}

func (m *ctlMedia) send() {
	defer m.wg.Done()
	var pkt [12 + samplesPerPacket]byte
	copy(pkt[12:], m.payload[:])
	everyMillisecond(m.stopped, func(tick int) {
		m.mu.Lock()
		for _, s := range m.streams {
			if s.slot != tick%20 && !s.fast.Load() {
				continue
			}
			s.seq++
			pkt[0], pkt[1] = 0x80, 0 // V=2, PCMU
			binary.BigEndian.PutUint16(pkt[2:], uint16(s.seq))
			binary.BigEndian.PutUint32(pkt[4:], s.seq*samplesPerPacket)
			binary.BigEndian.PutUint32(pkt[8:], s.id)
			now := int64(time.Since(m.base))
			binary.BigEndian.PutUint32(pkt[12:], ctlMagic)
			binary.BigEndian.PutUint32(pkt[16:], s.id)
			binary.BigEndian.PutUint32(pkt[20:], s.seq)
			binary.BigEndian.PutUint64(pkt[24:], uint64(now))
			if _, err := m.rtp.WriteToUDPAddrPort(pkt[:], s.dst); err == nil {
				m.sentPkts.Add(1)
				if s.id == m.watch && m.sent != nil {
					m.sent[s.seq] = now
				}
			}
		}
		m.mu.Unlock()
	})
}

func (m *ctlMedia) receive() {
	defer m.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := m.rtp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		at := int64(time.Since(m.base))
		r, ok := parseRTP(buf[:n])
		if !ok {
			continue
		}
		m.recv.Add(1)
		p := r.Payload
		m.mu.Lock()
		m.sources[from.Port()]++
		if len(p) >= 28 && binary.BigEndian.Uint32(p) == ctlMagic && m.got != nil && binary.BigEndian.Uint32(p[4:]) == m.watch {
			if seq := binary.BigEndian.Uint32(p[8:]); m.got[seq] == 0 {
				m.got[seq] = at
			}
		}
		m.mu.Unlock()
	}
}

// sourcesSeen counts the pbxd ports that sent at least min packets since
// the counts were last reset, and resets them.
func (m *ctlMedia) sourcesSeen(min uint64) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range m.sources {
		if c >= min {
			n++
		}
	}
	m.sources = map[uint16]uint64{}
	return n
}

func (m *ctlMedia) close() {
	close(m.stopped)
	m.rtp.Close()
	m.rtcp.Close()
	m.wg.Wait()
}
