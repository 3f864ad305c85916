//go:build bench

package main

// Call benchmarks of the SIP core, side by side with Kamailio in the same
// run (notes/bench-anchors.md has the reference figures and the pitfalls
// these follow):
//
//   - calls per second, SIPp UAC → element → SIPp UAS at stepped rates
//     (a few seconds per step, calls held 0–1 s), for SIPp alone (UAC →
//     UAS, the generator's ceiling), pbxd (B2BUA: 407 digest, registrar
//     lookup, two dialogs, two RTP legs and a call record per call),
//     Kamailio doing the same signalling work (tm, record-route, dialog,
//     proxy_authorize/proxy_challenge against a db_text subscriber table
//     and lookup of the registered callee) and Kamailio without INVITE
//     auth (the reference configuration of the notes);
//   - the call-setup latency each element adds (INVITE in → out, 180 and
//     200 in → out), from a loopback capture of the first (100 cps) step;
//   - CPU profiles of pbxd's steps; the top of its highest sustained one
//     is printed.
//
// Every load is bounded in calls and time, stays on loopback, uses free
// ports only, and stops exactly the processes it started. PBXD_BENCH_CPS
// ("100,200,400") overrides the rates, PBXD_BENCH_TARGETS ("pbxd,kamailio-auth")
// picks targets; PBXD_BENCH_ARGS adds pbxd flags.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cpsRates are the offered call rates, in calls per second. An element
// stops climbing after the first step that collapses: UDP overload has
// hysteresis (pitfall 7), so later steps would measure the collapse.
var cpsRates = []int{100, 200, 400, 600, 800, 1000, 1200, 1600, 2400, 3200, 4800, 6400}

const (
	cpsStepDur  = 4 * time.Second
	cpsFirstDur = 6 * time.Second // the first step, captured for latency
	cpsCooldown = time.Second
	// benchCalleeExt is the callee's extension (pbxd) and address of
	// record (Kamailio); benchCallers devices place the calls in turn.
	benchCalleeExt = "7000"
	benchCallers   = 50
	benchCalleePW  = "benchpass-callee"
)

func benchRates() []int {
	env := os.Getenv("PBXD_BENCH_CPS")
	if env == "" {
		return cpsRates
	}
	var out []int
	for _, f := range strings.Split(env, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// callTarget is what SIPp's caller sends its INVITEs to.
type callTarget struct {
	name    string
	addr    string // where the caller sends
	port    int    // the element's SIP port (the capture filter)
	uasPort int    // the callee's SIP port
	inject  string // the caller's injection file
	cpu     func() time.Duration
	// b2bua: the element starts a new dialog (new Call-ID) towards the
	// callee, so the latency analysis pairs the legs by caller and time.
	b2bua bool
	// debug is pbxd's --debug-listen: each step is CPU-profiled.
	debug string
}

// cpsStep is one step's outcome.
type cpsStep struct {
	rate, offered, ok, failed int
	completedCPS              float64
	rtdP50, rtdP99            float64 // ms, SIPp's first INVITE → 200
	elemCPUus, sippCPUus      float64 // per successful call
	elemCPUpct                float64
	// While calls are offered (the first d of the step): the element's
	// CPU and the machine's idle share.
	activeCPUpct, activeIdlePct float64
	wall                        time.Duration
	lat                         *setupLatency
	profile                     string // CPU profile while calls were offered
}

// sustained: no more than 0.1 % failed, at least 95 % of the offered rate
// completed and p99 setup under 200 ms (the sipgo proxy's pass rule,
// relaxed by 0.1 % for one UDP loss).
func (s cpsStep) sustained() bool {
	return s.failed*1000 <= s.offered && s.completedCPS >= 0.95*float64(s.rate) && s.rtdP99 < 200
}

// collapsed: more than 1 % failed or under 80 % of the offered rate.
func (s cpsStep) collapsed() bool {
	return s.failed*100 > s.offered || s.completedCPS < 0.8*float64(s.rate)
}

// TestBenchCalls runs the call-rate ladder and the setup-latency capture
// for SIPp alone, pbxd, Kamailio with INVITE auth and Kamailio without,
// one after the other on fresh processes, then prints the ratios.
func TestBenchCalls(t *testing.T) {
	needSIPp(t)
	rates := benchRates()
	fmt.Printf("BENCH calls-env cpus=%d machine_idle_pct=%.0f gomaxprocs=%d gogc=%q step_s=%.0f first_step_s=%.0f hold=\"uniform 0-1000 ms\" rates=%v\n",
		runtime.NumCPU(), benchIdle(time.Second), runtime.GOMAXPROCS(0), os.Getenv("GOGC"), cpsStepDur.Seconds(), cpsFirstDur.Seconds(), rates)
	results := map[string][]cpsStep{}
	var order []string

	creds := [][2]string{{benchCalleeExt, benchCalleePW}}
	var plainInject strings.Builder
	plainInject.WriteString("SEQUENTIAL\n")
	for i := 0; i < benchCallers; i++ {
		dev, pw := fmt.Sprintf("bench-c%02d", i), fmt.Sprintf("benchpass%02d", i)
		creds = append(creds, [2]string{dev, pw})
		fmt.Fprintf(&plainInject, "%s;%s;[authentication username=%s password=%s]\n", dev, benchCalleeExt, dev, pw)
	}

	want := func(name string) bool {
		env := os.Getenv("PBXD_BENCH_TARGETS")
		return env == "" || strings.Contains(","+env+",", ","+name+",")
	}

	// SIPp alone: the generator's ceiling on this machine.
	if want("sipp-direct") {
		port := freeUDPPort(t)
		tg := &callTarget{name: "sipp-direct", addr: fmt.Sprintf("127.0.0.1:%d", port), port: port, uasPort: port, inject: plainInject.String()}
		// The first rate (the latency baseline) and the highest.
		results[tg.name] = cpsLadder(t, tg, []int{rates[0], rates[len(rates)-1]})
		order = append(order, tg.name)
	}

	// pbxd.
	if want("pbxd") {
		p, debug := startBenchPbxd(t)
		_, inject := provisionBenchPbxd(t, p)
		uasPort := freeUDPPort(t)
		registerBenchCallee(t, p.sip, uasPort, "bench-callee", benchCalleePW)
		_, sipPort, _ := strings.Cut(p.sip, ":")
		port, _ := strconv.Atoi(sipPort)
		pid := p.cmd.Process.Pid
		tg := &callTarget{name: "pbxd", addr: p.sip, port: port, uasPort: uasPort, inject: inject, b2bua: true, debug: debug,
			cpu: func() time.Duration { return cpuTime(pid) }}
		time.Sleep(time.Second)
		idle := sampleProc(p.base, debug, pid)
		fmt.Printf("BENCH calls-pbxd-idle pss_kb=%d goroutines=%d heap_live_kb=%d udp_sockets=%d %s\n", idle.pss, idle.goroutines, idle.heap/1024, idle.udp, idle.counts())
		results[tg.name] = cpsLadder(t, tg, rates)
		order = append(order, tg.name)

		// Leak check: an INVITE that failed during an overloaded step can
		// wait out Timer B and then Timer H (64×T1 each), so wait up to
		// 70 s for goroutines and sockets to come back.
		back, after := waitIdle(p.base, debug, pid, idle, 70*time.Second)
		fmt.Printf("BENCH calls-pbxd-after-cps goroutines=%d (idle %d) udp_sockets=%d (idle %d) pss_kb=%d (idle %d) heap_live_kb=%d (idle %d) %s (idle: %s) back_to_idle=%t waited_s=%.1f\n",
			after.goroutines, idle.goroutines, after.udp, idle.udp, after.pss, idle.pss, after.heap/1024, idle.heap/1024, after.counts(), idle.counts(), back.ok, back.waited.Seconds())
		if !back.ok {
			dumpGoroutines(t, debug, "bench-calls-cps-leftover-goroutines")
		}
		benchHeapTop(t, debug, "bench-calls-cps-heap")
		p.Stop()

		// Where the time goes: the profile of the highest sustained step
		// (every pbxd step was profiled while calls were offered).
		best := cpsStep{}
		for _, st := range results[tg.name] {
			if st.profile != "" && (best.profile == "" || st.sustained() && st.rate > best.rate) {
				best = st
			}
		}
		if best.profile != "" {
			benchPprofTop(t, fmt.Sprintf("cps-%d", best.rate), best.profile)
		}
	}

	// Kamailio with INVITE auth and callee lookup, then the reference
	// configuration of the notes (no INVITE auth, fixed callee).
	if _, err := exec.LookPath("kamailio"); err != nil {
		fmt.Println("BENCH kamailio not installed (Debian package kamailio): no reference run")
	} else {
		for _, auth := range []bool{true, false} {
			if !want(map[bool]string{true: "kamailio-auth", false: "kamailio-ref"}[auth]) {
				continue
			}
			uasPort := freeUDPPort(t)
			addr, pgid, stop := startKamailioCalls(t, auth, uasPort, creds)
			name := "kamailio-ref"
			if auth {
				name = "kamailio-auth"
				registerBenchCallee(t, addr, uasPort, benchCalleeExt, benchCalleePW)
			}
			_, kport, _ := strings.Cut(addr, ":")
			port, _ := strconv.Atoi(kport)
			tg := &callTarget{name: name, addr: addr, port: port, uasPort: uasPort, inject: plainInject.String(),
				cpu: func() time.Duration { return groupCPU(pgid) }}
			results[name] = cpsLadder(t, tg, rates)
			order = append(order, name)
			stop()
		}
	}
	printCPSSummary(results, order, rates)
}

// cpsLadder runs the steps against one target until one collapses.
func cpsLadder(t *testing.T, tg *callTarget, rates []int) []cpsStep {
	var out []cpsStep
	for i, rate := range rates {
		d := cpsStepDur
		if i == 0 {
			d = cpsFirstDur
		}
		quiet := benchWaitQuiet(5 * time.Second)
		st := runCPSStep(t, tg, rate, d, i == 0)
		out = append(out, st)
		fmt.Printf("BENCH calls-cps target=%s rate=%d machine_idle_pct_before=%.0f offered=%d ok=%d failed=%d completed_cps=%.0f rtd_p50_ms=%.0f rtd_p99_ms=%.0f cpu_us_per_call=%.0f cpu_pct=%.0f cpu_pct_while_offered=%.0f machine_idle_pct_while_offered=%.0f sipp_cpu_us_per_call=%.0f wall_s=%.1f sustained=%t\n",
			tg.name, rate, quiet, st.offered, st.ok, st.failed, st.completedCPS, st.rtdP50, st.rtdP99, st.elemCPUus, st.elemCPUpct, st.activeCPUpct, st.activeIdlePct, st.sippCPUus, st.wall.Seconds(), st.sustained())
		if st.lat != nil {
			st.lat.print(tg.name, rate)
		}
		if st.collapsed() {
			fmt.Printf("BENCH calls-cps target=%s stop_after_rate=%d reason=collapsed\n", tg.name, rate)
			break
		}
		time.Sleep(cpsCooldown)
	}
	return out
}

// runCPSStep runs one step: a fresh SIPp callee on tg.uasPort, an
// optional capture of the element's SIP port, and a SIPp caller placing
// rate×d calls at rate.
func runCPSStep(t *testing.T, tg *callTarget, rate int, d time.Duration, capture bool) cpsStep {
	t.Helper()
	count := int(float64(rate) * d.Seconds())
	st := cpsStep{rate: rate, offered: count}
	dir := t.TempDir()
	inf := filepath.Join(dir, "calls.csv")
	if err := os.WriteFile(inf, []byte(tg.inject), 0o600); err != nil {
		t.Fatal(err)
	}
	limit := d + 60*time.Second
	uas := startBenchSIPp(t, dir, "uas", limit, "-sf", benchScenario(t, "bench_uas.xml"), "-i", "127.0.0.1", "-p", strconv.Itoa(tg.uasPort),
		"-mp", strconv.Itoa(benchFreeUDPBlock(t, 4)), "-cp", strconv.Itoa(sippControlPort(t)), "-m", strconv.Itoa(count),
		"-nostdin", "-buff_size", "4194304", "-trace_err", "-error_file", filepath.Join(dir, "uas-errors.log"))
	for deadline := time.Now().Add(10 * time.Second); !udpBound(tg.uasPort); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) || uas.exited() {
			out, _ := uas.wait()
			t.Fatalf("SIPp callee did not bind %d:\n%s", tg.uasPort, tail(out, 2000))
		}
	}
	var capt *benchCapture
	if capture {
		capt = startBenchCapture(t, fmt.Sprintf("udp port %d", tg.port))
	}
	uacPort := freeUDPPort(t)
	var cpu0 time.Duration
	if tg.cpu != nil {
		cpu0 = tg.cpu()
	}
	prof := make(chan string, 1)
	if tg.debug != "" {
		go func() {
			file, err := benchProfile(t, tg.debug, int(d.Seconds()), fmt.Sprintf("bench-calls-cps-%d", rate))
			if err != nil {
				fmt.Printf("BENCH profile=cps-%d error=%q\n", rate, err.Error())
			}
			prof <- file
		}()
	} else {
		prof <- ""
	}
	t0, stat0 := time.Now(), readCPUStat()
	active := make(chan [2]float64, 1)
	go func() {
		time.Sleep(d)
		var cpu float64
		if tg.cpu != nil {
			cpu = 100 * (tg.cpu() - cpu0).Seconds() / time.Since(t0).Seconds()
		}
		active <- [2]float64{cpu, stat0.idleSince()}
	}()
	uac := startBenchSIPp(t, dir, "uac", limit, tg.addr, "-sf", benchScenario(t, "bench_uac.xml"), "-inf", inf,
		"-i", "127.0.0.1", "-p", strconv.Itoa(uacPort), "-mp", strconv.Itoa(benchFreeUDPBlock(t, 4)), "-cp", strconv.Itoa(sippControlPort(t)),
		"-r", strconv.Itoa(rate), "-m", strconv.Itoa(count), "-l", strconv.Itoa(max(2*rate, 100)), "-recv_timeout", "8000",
		"-nostdin", "-buff_size", "4194304", "-trace_rtt", "-rtt_freq", "1", "-trace_err", "-error_file", filepath.Join(dir, "uac-errors.log"))
	out, uacCPU := uac.wait()
	st.wall = time.Since(t0)
	a := <-active
	st.activeCPUpct, st.activeIdlePct = a[0], a[1]
	// The callee has seen its last message by now, or never will.
	for deadline := time.Now().Add(3 * time.Second); !uas.exited() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	uasCPU := uas.stop()
	var elemCPU time.Duration
	if tg.cpu != nil {
		elemCPU = tg.cpu() - cpu0
		st.elemCPUpct = 100 * elemCPU.Seconds() / time.Since(t0).Seconds()
	}
	st.ok, st.failed = sippCounts(out)
	st.profile = <-prof
	st.elemCPUus = float64(elemCPU.Microseconds()) / float64(max(st.ok, 1))
	st.sippCPUus = float64((uacCPU + uasCPU).Microseconds()) / float64(max(st.ok, 1))
	rtds, last := readRTT(dir)
	if len(rtds) > 0 {
		sort.Float64s(rtds)
		st.rtdP50, st.rtdP99 = rtds[(len(rtds)-1)*50/100], rtds[(len(rtds)-1)*99/100]
		st.completedCPS = float64(st.ok) / max(last.Seconds(), 1/float64(rate))
	}
	if st.failed > 0 {
		for _, f := range []string{"uac-errors.log", "uas-errors.log"} {
			if b, _ := os.ReadFile(filepath.Join(dir, f)); len(b) > 0 {
				fmt.Printf("BENCH calls-cps target=%s rate=%d first %s:\n%s\n", tg.name, rate, f, benchIndent(string(b[:min(len(b), 1200)])))
			}
		}
	}
	if capt != nil {
		pkts, err := capt.Stop()
		if err != nil {
			fmt.Printf("BENCH calls-setup target=%s error=%q\n", tg.name, err.Error())
		} else {
			st.lat = analyseSetup(pkts, uint16(tg.port), uint16(uacPort), uint16(tg.uasPort), tg.b2bua)
			st.lat.dropped = capt.Dropped
		}
	}
	return st
}

func benchIndent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// readRTT reads SIPp's -trace_rtt file: the response times (ms) and when
// the last one was taken (since SIPp started).
func readRTT(dir string) ([]float64, time.Duration) {
	files, _ := filepath.Glob(filepath.Join(dir, "bench_uac_*_rtt.csv"))
	var out []float64
	var last float64
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			p := strings.Split(sc.Text(), ";")
			if len(p) < 2 {
				continue
			}
			at, err1 := strconv.ParseFloat(p[0], 64)
			rt, err2 := strconv.ParseFloat(p[1], 64)
			if err1 != nil || err2 != nil {
				continue
			}
			out = append(out, rt)
			last = max(last, at)
		}
		fh.Close()
	}
	return out, time.Duration(last * float64(time.Millisecond))
}

func benchScenario(t *testing.T, name string) string {
	p, err := filepath.Abs(filepath.Join("testdata", "sipp", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// benchSIPp is one SIPp process, run directly under a context deadline:
// on expiry (or stop) exactly its PID is killed, which is what
// `timeout --foreground` would do, and -timeout cannot (it does not stop
// SIPp while calls are open). It runs in dir, where -trace_rtt writes.
type benchSIPp struct {
	cmd    *exec.Cmd
	file   string
	cancel func()
	done   chan struct{}
}

func startBenchSIPp(t *testing.T, dir, name string, limit time.Duration, args ...string) *benchSIPp {
	t.Helper()
	bin := needSIPp(t)
	s := &benchSIPp{file: filepath.Join(dir, name+".out"), done: make(chan struct{})}
	f, err := os.Create(s.file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	s.cancel = cancel
	s.cmd = exec.CommandContext(ctx, bin, args...)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = f, f
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		cancel()
		f.Close()
		t.Fatalf("sipp: %v", err)
	}
	go func() {
		_ = s.cmd.Wait()
		f.Close()
		close(s.done)
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *benchSIPp) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// wait waits for SIPp to exit and returns its output and CPU time.
func (s *benchSIPp) wait() (string, time.Duration) {
	<-s.done
	s.cancel()
	b, _ := os.ReadFile(s.file)
	return string(b), s.cpu()
}

// stop kills SIPp's PID if it still runs and returns its CPU time.
func (s *benchSIPp) stop() time.Duration {
	s.cancel()
	<-s.done
	return s.cpu()
}

func (s *benchSIPp) cpu() time.Duration {
	if ps := s.cmd.ProcessState; ps != nil {
		return ps.UserTime() + ps.SystemTime()
	}
	return 0
}

// registerBenchCallee registers user's contact from port (where the SIPp
// callee will then listen) at registrar: registrars send calls to the
// source address of the REGISTER.
func registerBenchCallee(t *testing.T, registrar string, port int, user, pw string) {
	t.Helper()
	dir := t.TempDir()
	inf := filepath.Join(dir, "reg.csv")
	if err := os.WriteFile(inf, []byte(fmt.Sprintf("SEQUENTIAL\n%s;[authentication username=%s password=%s]\n", user, user, pw)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startBenchSIPp(t, dir, "register", 30*time.Second, registrar, "-sf", benchScenario(t, "bench_register.xml"), "-inf", inf,
		"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-mp", strconv.Itoa(benchFreeUDPBlock(t, 4)), "-cp", strconv.Itoa(sippControlPort(t)),
		"-m", "1", "-recv_timeout", "5000", "-nostdin")
	out, _ := s.wait()
	if ok, _ := sippCounts(out); ok != 1 {
		t.Fatalf("registering %s at %s from port %d failed:\n%s", user, registrar, port, tail(out, 2000))
	}
}

// startBenchPbxd starts pbxd for the call benchmarks: profiling on, OPTIONS
// keep-alives off (SIPp's callee would not answer them), the RTP range
// below the kernel's ephemeral ports. The log stays at info (the harness
// waits for the ready line), so pbxd logs every call as in production.
func startBenchPbxd(t *testing.T) (*proc, string) {
	t.Helper()
	debug := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	args := []string{"--rtp-ports", "20000-30999", "--sip-keepalive", "0", "--debug-listen", debug}
	args = append(args, strings.Fields(os.Getenv("PBXD_BENCH_ARGS"))...)
	fmt.Printf("BENCH calls-pbxd-args %q\n", strings.Join(args, " "))
	p := start(t, startOpts{env: []string{"PBXD_ADMIN_PASSWORD=" + e2eAdminPassword}, args: args})
	return p, debug
}

// benchCaller is one calling device: its user's extension, its username
// and password.
type benchCaller struct{ ext, dev, pw string }

// provisionBenchPbxd creates the callee (extension 7000, device
// bench-callee) and benchCallers callers (extensions 7100…, devices
// bench-cNN) and returns the callers and SIPp's injection file for them.
// The From user is the caller's extension, which pbxd puts in the From of
// its INVITE to the callee, so the latency analysis can pair the legs.
func provisionBenchPbxd(t *testing.T, p *proc) ([]benchCaller, string) {
	t.Helper()
	admin := p.login("admin", e2eAdminPassword)
	uid := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "bench-callee", "extension": benchCalleeExt}).want(t, 201).str("id")
	p.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "sipp", "username": "bench-callee", "password": benchCalleePW}).want(t, 201)
	var callers []benchCaller
	var b strings.Builder
	b.WriteString("SEQUENTIAL\n")
	for i := 0; i < benchCallers; i++ {
		c := benchCaller{ext: strconv.Itoa(7100 + i), dev: fmt.Sprintf("bench-c%02d", i), pw: fmt.Sprintf("benchpass%02d", i)}
		uid := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": fmt.Sprintf("bench-caller-%02d", i), "extension": c.ext}).want(t, 201).str("id")
		p.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "sipp", "username": c.dev, "password": c.pw}).want(t, 201)
		fmt.Fprintf(&b, "%s;%s;[authentication username=%s password=%s]\n", c.ext, benchCalleeExt, c.dev, c.pw)
		callers = append(callers, c)
	}
	return callers, b.String()
}

// --- summary ---

func printCPSSummary(results map[string][]cpsStep, order []string, rates []int) {
	maxOf := func(name string) (best int, peak float64, capped bool) {
		steps := results[name]
		for _, st := range steps {
			if st.sustained() && st.rate > best {
				best = st.rate
				capped = st.rate == rates[len(rates)-1]
			}
			peak = max(peak, st.completedCPS)
		}
		return
	}
	for _, name := range order {
		best, peak, capped := maxOf(name)
		fmt.Printf("BENCH calls-cps-max target=%s max_sustained_cps=%d peak_completed_cps=%.0f ladder_capped=%t\n", name, best, peak, capped)
	}
	ours := results["pbxd"]
	for _, ref := range []string{"kamailio-auth", "kamailio-ref"} {
		theirs, ok := results[ref]
		if !ok || ours == nil {
			continue
		}
		ob, op, _ := maxOf("pbxd")
		tb, tp, tcap := maxOf(ref)
		ratio := float64(ob) / float64(max(tb, 1))
		fmt.Printf("BENCH calls-cps-ratio pbxd_vs=%s max_sustained_ratio=%.2f peak_completed_ratio=%.2f aim=0.60 meets_aim=%t reference_capped_by_ladder=%t\n",
			ref, ratio, op/max(tp, 1), ratio >= 0.6, tcap)
		for i, st := range ours {
			if i >= len(theirs) {
				break
			}
			k := theirs[i]
			fmt.Printf("BENCH calls-cps-ratio pbxd_vs=%s rate=%d completed_ratio=%.2f cpu_per_call_ratio=%.1f pbxd_cpu_us=%.0f %s_cpu_us=%.0f rtd_p99_ms=%.0f/%.0f\n",
				ref, st.rate, st.completedCPS/max(k.completedCPS, 1), st.elemCPUus/max(k.elemCPUus, 1), st.elemCPUus, ref, k.elemCPUus, st.rtdP99, k.rtdP99)
		}
	}
}
