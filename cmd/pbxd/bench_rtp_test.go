//go:build bench

package main

// Concurrent bridged calls with RTP flowing through pbxd. The test
// process is both phones: a sipgo caller places N calls (digest on the
// 407) to a sipgo callee registered at pbxd, and a Go RTP generator plays
// every leg's party: 160-byte payloads every 20 ms in both directions,
// each stamped with the sending leg, a sequence number and the send time,
// so the receiving side measures the delay through pbxd and counts loss
// (pbxd's bridge forwards the payload unchanged when both legs use the
// same codec; it rewrites the RTP header). The generator's sockets are
// shared by many legs (pbxd latches onto each leg's source address), which
// keeps its own cost low on a 2-core machine; each leg has its own slot in
// the 20 ms cycle, so packets are spread as independent phones would
// spread them. A capture of a few calls' pbxd ports measures pbxd's own
// forwarding delay from kernel timestamps (packet in → packet out).
//
// Steps of rtpSteps calls, each set up, held for a measurement window,
// profiled, and hung up, then a leak check: goroutines, UDP sockets (two
// per RTP leg) and pbxd's own gauges of calls, SIP dialogs and RTP legs
// (/metrics pbxd_calls_active, pbxd_sip_dialogs, pbxd_rtp_legs; reported
// as not exposed by a pbxd without them) must return to the idle level.
// PBXD_BENCH_RTP ("100,250") overrides the steps.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

var rtpSteps = []int{100, 250, 500, 1000}

const (
	rtpWindow     = 5 * time.Second // measured while every call of the step is up
	rtpProfile    = 4               // seconds of CPU profile after the window
	rtpSetupRate  = 200             // calls per second placed
	rtpSetupConc  = 32              // calls being set up at once
	rtpShards     = 16              // generator sockets
	rtpSlots      = 20              // 1 ms slots of the 20 ms packet cycle
	rtpPayloadLen = 160
	rtpSampled    = 8  // calls whose pbxd ports are captured
	rtpWarmup     = 20 // calls of the warm-up step (not profiled)
	rtpMaxLegs    = 1 << 14
	rtpMagic      = 0x50425842 // "PBXB"
)

func rtpStepsFromEnv() []int {
	env := os.Getenv("PBXD_BENCH_RTP")
	if env == "" {
		return rtpSteps
	}
	var out []int
	for _, f := range strings.Split(env, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// raiseNoFile lifts the soft descriptor limit to the hard one for this
// process and the pbxd it starts (1000 calls hold 4000 sockets in pbxd).
func raiseNoFile() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	return rl.Cur
}

func TestBenchCallsRTP(t *testing.T) {
	nofile := raiseNoFile()
	steps := rtpStepsFromEnv()
	p, debug := startBenchPbxd(t)
	pid := p.cmd.Process.Pid
	callers, _ := provisionBenchPbxd(t, p)
	gen := newRTPGen(t)
	defer gen.close()

	uasPort := freeUDPPort(t)
	registerBenchCallee(t, p.sip, uasPort, "bench-callee", benchCalleePW)
	uas := newBenchUAS(t, uasPort, gen)
	defer uas.close()
	uac := newBenchUAC(t, p.sip, gen)
	defer uac.close()

	time.Sleep(2 * time.Second)
	idle := sampleProc(p.base, debug, pid)
	fmt.Printf("BENCH calls-rtp-env nofile=%d machine_idle_pct=%.0f generator_sockets=%d payload=%d pps_per_leg=50 window_s=%.0f setup_rate=%d\n",
		nofile, benchIdle(time.Second), rtpShards, rtpPayloadLen, rtpWindow.Seconds(), rtpSetupRate)
	fmt.Printf("BENCH calls-rtp-idle pss_kb=%d goroutines=%d heap_live_kb=%d udp_sockets=%d %s\n", idle.pss, idle.goroutines, idle.heap/1024, idle.udp, idle.counts())

	// A few calls first: PSS right after start still holds pages the Go
	// runtime has not returned yet, so per-call figures are counted from
	// pbxd's footprint after this warm-up (and then after each step).
	warm := runRTPStep(t, p, debug, uac, uas, gen, callers, rtpWarmup, idle, idle)
	base := warm.after
	fmt.Printf("BENCH calls-rtp-warmup calls=%d pss_after_kb=%d heap_after_kb=%d (the baseline of the first step)\n", rtpWarmup, base.pss, base.heap/1024)
	maxUp, maxInBudget, maxNoLoss := 0, 0, 0
	for i, n := range steps {
		st := runRTPStep(t, p, debug, uac, uas, gen, callers, n, idle, base)
		base = st.after
		if st.failed == 0 {
			maxUp = n
		}
		if st.failed == 0 && st.lossPct() == 0 {
			maxNoLoss = n
		}
		if all := append(append([]time.Duration(nil), st.fwd[0]...), st.fwd[1]...); len(all) > 0 && benchPct(all, 99) < 500*time.Microsecond && st.failed == 0 {
			maxInBudget = n
		}
		last := i == len(steps)-1 || st.failed*20 > n || st.lossPct() > 5
		if st.profile != "" && last {
			benchPprofTop(t, fmt.Sprintf("rtp-%d", n), st.profile)
		}
		if last && i < len(steps)-1 {
			fmt.Printf("BENCH calls-rtp stop_after_calls=%d reason=\"more than 5%% of calls failed or of packets lost\"\n", n)
			break
		}
	}
	fmt.Printf("BENCH calls-rtp-summary max_calls_all_established=%d max_calls_no_loss=%d max_calls_pbxd_fwd_p99_under_500us=%d steps=%v\n", maxUp, maxNoLoss, maxInBudget, steps)
	// The final leak check waits out transaction timers (64×T1 = 32 s).
	back, after := waitIdle(p.base, debug, pid, idle, 40*time.Second)
	fmt.Printf("BENCH calls-rtp-leak-final goroutines=%d (idle %d) udp_sockets=%d (idle %d) heap_live_kb=%d (idle %d) %s (idle: %s) back_to_idle=%t waited_s=%.1f\n",
		after.goroutines, idle.goroutines, after.udp, idle.udp, after.heap/1024, idle.heap/1024, after.counts(), idle.counts(), back.ok, back.waited.Seconds())
	if !back.ok {
		dumpGoroutines(t, debug, "bench-calls-rtp-leftover-goroutines")
	}
	// The heap of ended calls is released once sipgo's transactions
	// (which keep their dialogs) time out: wait for it, bounded.
	t0 := time.Now()
	for after.heap > idle.heap*3/2+4<<20 && time.Since(t0) < 40*time.Second {
		time.Sleep(2 * time.Second)
		after = sampleProc(p.base, debug, pid)
	}
	fmt.Printf("BENCH calls-rtp-heap-final heap_live_kb=%d (idle %d) pss_kb=%d (idle %d) waited_s=%.0f back_to_idle=%t\n",
		after.heap/1024, idle.heap/1024, after.pss, idle.pss, time.Since(t0).Seconds(), after.heap <= idle.heap*3/2+4<<20)
	benchHeapTop(t, debug, "bench-calls-rtp-heap-after")
}

// procSample is pbxd's footprint at one moment; calls, dialogs and legs
// are -1 when pbxd's /metrics does not have them.
type procSample struct{ pss, goroutines, heap, udp, calls, dialogs, legs int }

// sampleProc collects garbage first and reads the live heap (HeapAlloc
// right after that GC, from the heap profile endpoint with gc=1 and
// debug=1), so heap is what is still referenced and PSS is not inflated
// by garbage; goroutines and the call counts come from /metrics.
func sampleProc(base, debug string, pid int) procSample {
	s := procSample{heap: -1}
	if res, err := benchHTTP.Get("http://" + debug + "/debug/pprof/heap?gc=1&debug=1"); err == nil {
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
				s.heap, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		res.Body.Close()
	}
	g := benchGauges(base)
	s.goroutines, s.calls, s.dialogs, s.legs = g["pbxd_goroutines"], g["pbxd_calls_active"], g["pbxd_sip_dialogs"], g["pbxd_rtp_legs"]
	s.pss, s.udp = benchPSS(pid), benchUDPSockets(pid)
	return s
}

// counts formats pbxd's call, dialog and RTP-leg gauges.
func (s procSample) counts() string {
	if s.calls < 0 && s.dialogs < 0 && s.legs < 0 {
		return `calls_dialogs_legs="not exposed by pbxd's /metrics"`
	}
	return fmt.Sprintf("calls_active=%d sip_dialogs=%d rtp_legs=%d", s.calls, s.dialogs, s.legs)
}

type idleWait struct {
	ok     bool
	waited time.Duration
}

// waitIdle polls until goroutines, UDP sockets and pbxd's call, dialog
// and RTP-leg counts are back to (near) the idle level, for at most limit.
func waitIdle(base, debug string, pid int, idle procSample, limit time.Duration) (idleWait, procSample) {
	t0 := time.Now()
	for {
		s := sampleProc(base, debug, pid)
		if s.goroutines >= 0 && s.goroutines <= idle.goroutines+5 && s.udp <= idle.udp && s.calls <= idle.calls && s.dialogs <= idle.dialogs && s.legs <= idle.legs {
			return idleWait{true, time.Since(t0)}, s
		}
		if time.Since(t0) > limit {
			return idleWait{false, time.Since(t0)}, s
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// dumpGoroutines saves pbxd's goroutine profile (debug=1: stacks grouped
// with counts) to artifacts/ and prints the five biggest groups.
func dumpGoroutines(t *testing.T, debug, name string) {
	res, err := benchHTTP.Get("http://" + debug + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	file := filepath.Join(benchArtifacts(t), name+".txt")
	_ = os.WriteFile(file, b, 0o644)
	groups := strings.Split(string(b), "\n\n")
	fmt.Printf("BENCH goroutine-dump file=%s first_line=%q\n", file, strings.SplitN(string(b), "\n", 2)[0])
	for i, g := range groups[:min(len(groups), 6)] {
		if i == 0 {
			g = strings.SplitN(g, "\n", 2)[len(strings.SplitN(g, "\n", 2))-1]
		}
		var frames []string
		for _, l := range strings.Split(g, "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "#" {
				frames = append(frames, f[2])
			}
			if len(frames) == 4 {
				break
			}
		}
		head, _, _ := strings.Cut(g, " @")
		fmt.Printf("BENCH goroutine-dump group=%d count=%s top=%s\n", i, strings.TrimSpace(head), strings.Join(frames, " < "))
	}
}

// benchHeapTop saves a heap profile (after a GC) to artifacts/ and
// prints the top 10 of the live heap.
func benchHeapTop(t *testing.T, debug, name string) {
	res, err := benchHTTP.Get("http://" + debug + "/debug/pprof/heap?gc=1")
	if err != nil {
		return
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	file := filepath.Join(benchArtifacts(t), name+".pprof")
	if os.WriteFile(file, b, 0o644) != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=10", "-sample_index=inuse_space", file).CombinedOutput()
	if err != nil {
		return
	}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Time:") {
			continue
		}
		fmt.Printf("BENCH heap=%s | %s\n", name, line)
	}
}

// rtpStep is one step's outcome.
type rtpStep struct {
	n, established, failed int
	setup                  time.Duration
	sent, recv             [2]uint64 // per direction: 0 caller→callee, 1 callee→caller
	e2e                    [2][]time.Duration
	fwd                    [2][]time.Duration
	fwdPairs, capDropped   int
	pbxdCPU, genCPU        time.Duration
	machineIdle            float64 // percent, during the window
	quietBefore            float64 // percent, before the calls were set up
	window                 time.Duration
	loaded, after          procSample
	back                   idleWait
	profile                string
	rtcpSeen, badSrc       uint64
}

func (s rtpStep) lossPct() float64 {
	var sent, lost uint64
	for d := 0; d < 2; d++ {
		sent += s.sent[d]
		if s.sent[d] > s.recv[d] {
			lost += s.sent[d] - s.recv[d]
		}
	}
	if sent == 0 {
		return 100
	}
	return 100 * float64(lost) / float64(sent)
}

// runRTPStep sets up n calls, measures them and hangs them up; idle is
// pbxd's footprint before any call, base after the previous step.
func runRTPStep(t *testing.T, p *proc, debug string, uac *benchUAC, uas *benchUAS, gen *rtpGen, callers []benchCaller, n int, idle, base procSample) rtpStep {
	pid := p.cmd.Process.Pid
	st := rtpStep{n: n, quietBefore: benchWaitQuiet(5 * time.Second)}
	unhandled0 := benchUnhandled.Load()
	calls := make([]*benchCall, n)
	t0 := time.Now()
	var failed atomic.Int64
	var firstErr atomic.Value
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < rtpSetupConc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, err := uac.call(ctx, callers[i%len(callers)])
				cancel()
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				calls[i] = c
			}
		}()
	}
	// Calls are placed at rtpSetupRate; on a machine too busy to keep up,
	// the ones not placed within twice the planned time (+15 s) count as
	// failed, which bounds the step.
	tick := time.NewTicker(time.Second / rtpSetupRate)
	limit := 2*time.Duration(n)*time.Second/rtpSetupRate + 15*time.Second
	placed := 0
	for ; placed < n && time.Since(t0) < limit; placed++ {
		<-tick.C
		select {
		case jobs <- placed:
		case <-time.After(time.Until(t0.Add(limit))):
			placed--
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	st.setup = time.Since(t0)
	st.failed = int(failed.Load()) + n - placed
	st.established = n - st.failed
	if placed < n {
		fmt.Printf("BENCH calls-rtp calls=%d not_placed=%d reason=\"setup slower than half the planned rate\"\n", n, n-placed)
	}
	if e, _ := firstErr.Load().(string); e != "" {
		fmt.Printf("BENCH calls-rtp calls=%d first_setup_error=%q\n", n, e)
	}

	// Settle, then capture a few calls' pbxd ports for pbxd's own delay.
	time.Sleep(time.Second)
	var sample []uint16
	for _, c := range calls {
		if c == nil {
			continue
		}
		if out := uint16(c.leg.outPort.Load()); out != 0 && len(sample) < 2*rtpSampled {
			sample = append(sample, c.leg.dst.Port(), out)
		}
	}
	var capt *benchCapture
	if len(sample) > 0 {
		var f []string
		for _, port := range sample {
			f = append(f, "port "+strconv.Itoa(int(port)))
		}
		capt = startBenchCapture(t, "udp and ("+strings.Join(f, " or ")+")")
	}

	// The window opens a moment from now, so the sender and the receiver
	// agree on which packets are in it.
	w0 := gen.now() + int64(100*time.Millisecond)
	gen.setWindow(w0, w0+int64(rtpWindow))
	time.Sleep(time.Duration(w0 - gen.now()))
	cpu0, self0, stat0 := cpuTime(pid), benchSelfCPU(), readCPUStat()
	time.Sleep(rtpWindow / 2)
	st.loaded = sampleProc(p.base, debug, pid)
	time.Sleep(rtpWindow / 2)
	st.pbxdCPU, st.genCPU, st.machineIdle = cpuTime(pid)-cpu0, benchSelfCPU()-self0, stat0.idleSince()
	st.window = time.Duration(gen.now() - w0)
	time.Sleep(200 * time.Millisecond) // packets in flight
	st.sent, st.recv, st.e2e = gen.windowStats()
	st.rtcpSeen, st.badSrc = gen.rtcp.Load(), gen.foreign.Load()
	if capt != nil {
		pkts, err := capt.Stop()
		st.capDropped = capt.Dropped
		if err == nil {
			st.fwd, st.fwdPairs = forwardDelays(pkts, sample)
		}
	}

	// Where the time goes with every call up.
	if n == rtpWarmup {
		// no profile of the warm-up
	} else if file, err := benchProfile(t, debug, rtpProfile, fmt.Sprintf("bench-calls-rtp-%d", n)); err == nil {
		st.profile = file
	} else {
		fmt.Printf("BENCH profile=rtp-%d error=%q\n", n, err.Error())
	}

	// Hang up: silence first, then BYE from the caller.
	for _, c := range calls {
		if c != nil {
			c.leg.on.Store(false)
		}
	}
	uas.silence()
	time.Sleep(100 * time.Millisecond)
	jobs = make(chan int)
	var byeFailed atomic.Int64
	for w := 0; w < rtpSetupConc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := calls[i].sess.Bye(ctx); err != nil {
					byeFailed.Add(1)
				}
				cancel()
			}
		}()
	}
	for i, c := range calls {
		if c != nil {
			jobs <- i
		}
	}
	close(jobs)
	wg.Wait()
	gen.dropLegs()
	st.back, st.after = waitIdle(p.base, debug, pid, idle, 10*time.Second)

	// Report.
	dirName := [2]string{"caller_to_callee", "callee_to_caller"}
	line := fmt.Sprintf("BENCH calls-rtp calls=%d machine_idle_pct_before=%.0f established=%d failed=%d bye_failed=%d setup_s=%.1f window_s=%.1f sip_responses_outside_transactions=%d",
		n, st.quietBefore, st.established, st.failed, byeFailed.Load(), st.setup.Seconds(), st.window.Seconds(), benchUnhandled.Load()-unhandled0)
	for d := 0; d < 2; d++ {
		lost := int64(st.sent[d]) - int64(st.recv[d])
		line += fmt.Sprintf(" %s_sent=%d %s_received=%d %s_lost=%d e2e_%s_p50_us=%s e2e_%s_p99_us=%s e2e_%s_max_us=%s",
			dirName[d], st.sent[d], dirName[d], st.recv[d], dirName[d], lost,
			dirName[d], benchUS(benchPct(st.e2e[d], 50)), dirName[d], benchUS(benchPct(st.e2e[d], 99)), dirName[d], benchUS(benchPct(st.e2e[d], 100)))
	}
	fmt.Println(line)
	all := append(append([]time.Duration(nil), st.fwd[0]...), st.fwd[1]...)
	fmt.Printf("BENCH calls-rtp-forwarding calls=%d sampled_calls=%d pairs=%d capture_dropped=%d pbxd_fwd_p50_us=%s pbxd_fwd_p99_us=%s pbxd_fwd_max_us=%s caller_to_callee_p99_us=%s callee_to_caller_p99_us=%s budget_p99_us=500 within_budget=%t\n",
		n, len(sample)/2, st.fwdPairs, st.capDropped, benchUS(benchPct(all, 50)), benchUS(benchPct(all, 99)), benchUS(benchPct(all, 100)),
		benchUS(benchPct(st.fwd[0], 99)), benchUS(benchPct(st.fwd[1], 99)), len(all) > 0 && benchPct(all, 99) < 500*time.Microsecond)
	pkts := float64(st.recv[0] + st.recv[1])
	perCall := max(st.established, 1)
	fmt.Printf("BENCH calls-rtp-cost calls=%d pbxd_cpu_pct=%.0f pbxd_cpu_us_per_call_s=%.0f pbxd_cpu_us_per_pkt=%.2f generator_cpu_pct=%.0f machine_idle_pct=%.0f pss_idle_kb=%d pss_before_kb=%d pss_loaded_kb=%d pss_per_call_kb=%.1f heap_idle_kb=%d heap_before_kb=%d heap_loaded_kb=%d heap_per_call_kb=%.1f goroutines_idle=%d goroutines_loaded=%d udp_sockets_idle=%d udp_sockets_loaded=%d rtcp_from_pbxd=%d\n",
		n, 100*st.pbxdCPU.Seconds()/st.window.Seconds(), float64(st.pbxdCPU.Microseconds())/st.window.Seconds()/float64(perCall),
		float64(st.pbxdCPU.Microseconds())/max(pkts, 1), 100*st.genCPU.Seconds()/st.window.Seconds(), st.machineIdle,
		idle.pss, base.pss, st.loaded.pss, float64(st.loaded.pss-base.pss)/float64(perCall), idle.heap/1024, base.heap/1024, st.loaded.heap/1024,
		float64(st.loaded.heap-base.heap)/1024/float64(perCall), idle.goroutines, st.loaded.goroutines, idle.udp, st.loaded.udp, st.rtcpSeen)
	fmt.Printf("BENCH calls-rtp-leak calls=%d goroutines_after=%d goroutines_idle=%d udp_sockets_after=%d udp_sockets_idle=%d heap_after_kb=%d after: %s loaded: %s back_to_idle=%t waited_s=%.1f\n",
		n, st.after.goroutines, idle.goroutines, st.after.udp, idle.udp, st.after.heap/1024, st.after.counts(), st.loaded.counts(), st.back.ok, st.back.waited.Seconds())
	return st
}

// forwardDelays pairs, in a capture of pbxd's RTP ports, each generator
// packet going into pbxd with the same packet (same leg and sequence in
// the payload stamp) coming out, and returns pbxd's delays per direction.
func forwardDelays(pkts []benchPkt, ports []uint16) ([2][]time.Duration, int) {
	isPbxd := map[uint16]bool{}
	for _, p := range ports {
		isPbxd[p] = true
	}
	type key struct{ leg, seq uint32 }
	in := map[key]int64{}
	var out [2][]time.Duration
	pairs := 0
	for _, p := range pkts {
		leg, seq, _, dir, ok := parseStamp(p.payload)
		if !ok {
			continue
		}
		k := key{leg, seq}
		switch {
		case isPbxd[p.dst]:
			if _, seen := in[k]; !seen {
				in[k] = p.ns
			}
		case isPbxd[p.src]:
			if at, ok := in[k]; ok {
				out[dir] = append(out[dir], time.Duration(p.ns-at))
				delete(in, k)
				pairs++
			}
		}
	}
	return out, pairs
}

// --- the generator ---

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
	next := time.Now()
	slot := 0
	for {
		select {
		case <-g.stop:
			return
		default:
		}
		sh.mu.RLock()
		legs := sh.slots[slot]
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
		slot = (slot + 1) % rtpSlots
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

// --- the phones (sipgo) ---

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

func newBenchUA(t *testing.T, name string, port int) *benchUA {
	t.Helper()
	// Responses no transaction wants are retransmissions (pbxd resending
	// while its peer was slow): counted, not logged.
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
	conn, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.UDPConn).SetReadBuffer(4 << 20)
	port = conn.LocalAddr().(*net.UDPAddr).Port
	cli, err := sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(conn.LocalAddr().String()), sipgo.WithClientHostname("127.0.0.1"),
		sipgo.WithClientPort(port), sipgo.WithClientLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
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
