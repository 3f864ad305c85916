//go:build bench

package main

// The RTP generator of the RTP call benchmark (bench_rtp_test.go): every
// leg's party, stamped packets in both directions, counted and timed on
// receipt.

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rtpGen plays every leg's party. Legs share rtpShards sockets; each
// socket has a sender goroutine (its legs in their 1 ms slots) and a
// receiver goroutine (stamps, counts, delays).
type rtpGen struct {
	base    time.Time
	socks   []*net.UDPConn
	rtcps   []*net.UDPConn
	legs    []atomic.Pointer[genLeg]
	nextID  atomic.Uint32
	shards  []*genShard
	winLo   atomic.Int64
	winHi   atomic.Int64
	rtcp    atomic.Uint64 // RTCP packets pbxd sent to the port above
	foreign atomic.Uint64 // datagrams without our stamp
	stop    chan struct{}
	wg      sync.WaitGroup
}

type genShard struct {
	mu     sync.RWMutex
	slots  [rtpSlots][]*genLeg
	dmu    sync.Mutex
	delays [2][]time.Duration
}

// genLeg is one party's RTP stream: it sends to dst (pbxd's leg).
type genLeg struct {
	id    uint32
	shard int
	slot  int
	dir   uint8 // 0: caller's side, 1: callee's side
	dst   netip.AddrPort
	seq   uint32
	on    atomic.Bool
	// outPort is the pbxd port this leg's packets come out of (the other
	// leg of the call), learnt by the receiver.
	outPort          atomic.Uint32
	sentWin, recvWin atomic.Uint64
}

func newRTPGen(t *testing.T) *rtpGen {
	g := &rtpGen{base: time.Now(), legs: make([]atomic.Pointer[genLeg], rtpMaxLegs), stop: make(chan struct{})}
	g.winLo.Store(-1)
	g.winHi.Store(-1)
	for len(g.socks) < rtpShards {
		// An even port with the odd one above it free too: pbxd sends its
		// RTCP reports there.
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 {
			c.Close()
			continue
		}
		r, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
		if err != nil {
			c.Close()
			continue
		}
		_ = c.SetReadBuffer(4 << 20)
		_ = c.SetWriteBuffer(4 << 20)
		g.socks = append(g.socks, c)
		g.rtcps = append(g.rtcps, r)
		g.shards = append(g.shards, &genShard{})
	}
	for i := range g.socks {
		g.wg.Add(3)
		go g.recvLoop(i)
		go g.sendLoop(i)
		go g.drainRTCP(i)
	}
	return g
}

func (g *rtpGen) now() int64 { return int64(time.Since(g.base)) }

func (g *rtpGen) close() {
	close(g.stop)
	for i := range g.socks {
		g.socks[i].Close()
		g.rtcps[i].Close()
	}
	g.wg.Wait()
}

// newLeg adds a leg; its SDP names sock's port. It sends once on is set.
func (g *rtpGen) newLeg(dir uint8) *genLeg {
	id := g.nextID.Add(1) - 1
	l := &genLeg{id: id, shard: int(id) % rtpShards, slot: int(id/rtpShards) % rtpSlots, dir: dir}
	g.legs[id%rtpMaxLegs].Store(l)
	return l
}

// start begins sending to dst.
func (g *rtpGen) start(l *genLeg, dst netip.AddrPort) {
	l.dst = dst
	sh := g.shards[l.shard]
	sh.mu.Lock()
	sh.slots[l.slot] = append(sh.slots[l.slot], l)
	sh.mu.Unlock()
	l.on.Store(true)
}

func (g *rtpGen) port(l *genLeg) int { return g.socks[l.shard].LocalAddr().(*net.UDPAddr).Port }

// dropLegs forgets every leg (between steps).
func (g *rtpGen) dropLegs() {
	for _, sh := range g.shards {
		sh.mu.Lock()
		for i := range sh.slots {
			sh.slots[i] = nil
		}
		sh.mu.Unlock()
		sh.dmu.Lock()
		sh.delays = [2][]time.Duration{}
		sh.dmu.Unlock()
	}
	for i := range g.legs {
		g.legs[i].Store(nil)
	}
	g.winLo.Store(-1)
	g.winHi.Store(-1)
}

func (g *rtpGen) setWindow(lo, hi int64) {
	for _, sh := range g.shards {
		sh.dmu.Lock()
		sh.delays = [2][]time.Duration{}
		sh.dmu.Unlock()
	}
	g.winHi.Store(hi)
	g.winLo.Store(lo)
}

// windowStats sums what was sent and received in the window per direction.
func (g *rtpGen) windowStats() (sent, recv [2]uint64, delays [2][]time.Duration) {
	for i := range g.legs {
		if l := g.legs[i].Load(); l != nil {
			sent[l.dir] += l.sentWin.Load()
			recv[l.dir] += l.recvWin.Load()
		}
	}
	for _, sh := range g.shards {
		sh.dmu.Lock()
		for d := 0; d < 2; d++ {
			delays[d] = append(delays[d], sh.delays[d]...)
		}
		sh.dmu.Unlock()
	}
	return
}

func (g *rtpGen) sendLoop(s int) {
	defer g.wg.Done()
	conn, sh := g.socks[s], g.shards[s]
	var pkt [12 + rtpPayloadLen]byte
	for i := 12 + 21; i < len(pkt); i++ {
		pkt[i] = 0xff // µ-law silence
	}
	everyMillisecond(g.stop, func(tick int) {
		sh.mu.RLock()
		legs := sh.slots[tick%rtpSlots]
		for _, l := range legs {
			if !l.on.Load() {
				continue
			}
			l.seq++
			pkt[0], pkt[1] = 0x80, 0 // V=2, PCMU
			binary.BigEndian.PutUint16(pkt[2:], uint16(l.seq))
			binary.BigEndian.PutUint32(pkt[4:], l.seq*160)
			binary.BigEndian.PutUint32(pkt[8:], l.id+1)
			now := g.now()
			putStamp(pkt[12:], l.id, l.seq, now, l.dir)
			if _, err := conn.WriteToUDPAddrPort(pkt[:], l.dst); err == nil {
				if lo, hi := g.winLo.Load(), g.winHi.Load(); lo >= 0 && now >= lo && now < hi {
					l.sentWin.Add(1)
				}
			}
		}
		sh.mu.RUnlock()
	})
}

// everyMillisecond calls f once a millisecond with the count of earlier
// calls, until stopped is closed. It keeps to the schedule: a late call
// is followed by the next one at once.
func everyMillisecond(stopped <-chan struct{}, f func(tick int)) {
	next := time.Now()
	for tick := 0; ; tick++ {
		select {
		case <-stopped:
			return
		default:
		}
		f(tick)
		next = next.Add(time.Millisecond)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
	}
}

func (g *rtpGen) recvLoop(s int) {
	defer g.wg.Done()
	conn, sh := g.socks[s], g.shards[s]
	buf := make([]byte, 2048)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		now := g.now()
		if n < 12 || buf[0]>>6 != 2 {
			g.foreign.Add(1)
			continue
		}
		id, _, sent, dir, ok := parseStamp(buf[:n])
		if !ok {
			g.foreign.Add(1)
			continue
		}
		l := g.legs[id%rtpMaxLegs].Load()
		if l == nil || l.id != id {
			continue
		}
		if l.outPort.Load() == 0 {
			l.outPort.Store(uint32(from.Port()))
		}
		if lo, hi := g.winLo.Load(), g.winHi.Load(); lo >= 0 && sent >= lo && sent < hi {
			l.recvWin.Add(1)
			sh.dmu.Lock()
			sh.delays[dir] = append(sh.delays[dir], time.Duration(now-sent))
			sh.dmu.Unlock()
		}
	}
}

func (g *rtpGen) drainRTCP(s int) {
	defer g.wg.Done()
	buf := make([]byte, 2048)
	for {
		if _, _, err := g.rtcps[s].ReadFromUDPAddrPort(buf); err != nil {
			return
		}
		g.rtcp.Add(1)
	}
}

// The stamp at the start of the payload: magic, leg, sequence, send time
// (ns since the generator started), direction.
func putStamp(b []byte, leg, seq uint32, sent int64, dir uint8) {
	binary.BigEndian.PutUint32(b[0:], rtpMagic)
	binary.BigEndian.PutUint32(b[4:], leg)
	binary.BigEndian.PutUint32(b[8:], seq)
	binary.BigEndian.PutUint64(b[12:], uint64(sent))
	b[20] = dir
}

// parseStamp reads the stamp from an RTP packet.
func parseStamp(pkt []byte) (leg, seq uint32, sent int64, dir uint8, ok bool) {
	if len(pkt) < 12 {
		return
	}
	off := 12 + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 && len(pkt) >= off+4 { // header extension
		off += 4 + 4*int(binary.BigEndian.Uint16(pkt[off+2:]))
	}
	b := pkt[min(off, len(pkt)):]
	if len(b) < 21 || binary.BigEndian.Uint32(b) != rtpMagic || b[20] > 1 {
		return
	}
	return binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:]), int64(binary.BigEndian.Uint64(b[12:])), b[20], true
}
