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
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
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
	jobs, wait := callWorkers(func(ctx context.Context, i int) {
		c, err := uac.call(ctx, callers[i%len(callers)])
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
			return
		}
		calls[i] = c
	})
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
	wait()
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
	var byeFailed atomic.Int64
	jobs, wait = callWorkers(func(ctx context.Context, i int) {
		if err := calls[i].sess.Bye(ctx); err != nil {
			byeFailed.Add(1)
		}
	})
	for i, c := range calls {
		if c != nil {
			jobs <- i
		}
	}
	close(jobs)
	wait()
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

// callWorkers starts rtpSetupConc workers that run f, with a context of
// 10 s, for every call index sent on jobs. Close jobs, then call wait.
func callWorkers(f func(ctx context.Context, i int)) (jobs chan<- int, wait func()) {
	ch := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < rtpSetupConc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				f(ctx, i)
				cancel()
			}
		}()
	}
	return ch, wg.Wait
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
