//go:build bench

package main

// Helpers of the call benchmarks (bench_calls_test.go, bench_rtp_test.go):
// a tcpdump capture on loopback (the tcpdump of peers_capture_test.go), the
// SIP fields the latency analysis matches on and that analysis, process
// figures from /proc and pbxd's /metrics, CPU profiles and percentiles.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// --- capture ---

// benchCapture is one tcpdump on the loopback interface (the tcpdump of
// peers_capture_test.go, with its marker port) writing a pcap file.
type benchCapture struct {
	*tcpdump
	once sync.Once
	// Dropped is what tcpdump reported as dropped by the kernel.
	Dropped int
}

// startBenchCapture starts tcpdump with a BPF filter and returns once it
// is capturing, or nil (after saying why) when it cannot run.
func startBenchCapture(t *testing.T, filter string) *benchCapture {
	t.Helper()
	bin, err := exec.LookPath("tcpdump")
	if err != nil || os.Getuid() != 0 {
		fmt.Println("BENCH note=no-capture reason=\"tcpdump missing or not root: latency not measured\"")
		return nil
	}
	td, err := newTcpdump(filepath.Join(t.TempDir(), "capture.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	c := &benchCapture{tcpdump: td}
	// Nanosecond stamps, a 32 MiB kernel buffer (-B is in KiB), packets
	// written as they come (-U).
	if err := c.start(bin, fmt.Sprintf("(%s) or udp port %d", filter, td.markerPort()),
		"-s", "0", "-B", "32768", "--time-stamp-precision=nano", "-U"); err != nil {
		fmt.Printf("BENCH note=no-capture reason=%q\n", err.Error())
		return nil
	}
	t.Cleanup(func() { c.Stop() })
	if err := c.sync(10 * time.Second); err != nil {
		c.Stop()
		fmt.Printf("BENCH note=no-capture reason=%q\n", err.Error()+": "+c.stderr.String())
		return nil
	}
	return c
}

// Stop ends the capture once it has caught up (SIGINT, then SIGKILL
// after 10 s, to tcpdump's own PID) and returns the packets, the markers
// left out.
func (c *benchCapture) Stop() ([]benchPkt, error) {
	c.once.Do(func() {
		select {
		case <-c.exited:
		default:
			_ = c.sync(10 * time.Second)
		}
		c.Dropped = c.stop()
	})
	pkts, err := c.read()
	out := make([]benchPkt, 0, len(pkts))
	for _, p := range pkts {
		out = append(out, benchPkt{ns: p.At.UnixNano(), src: p.Src.Port(), dst: p.Dst.Port(), payload: p.Payload})
	}
	return out, err
}

// benchPkt is one UDP datagram of a capture, as the analyses want it.
type benchPkt struct {
	ns       int64 // capture time, ns since the epoch
	src, dst uint16
	payload  []byte
}

// --- SIP fields ---

// sipFields are what the latency analysis matches a SIP message on.
type sipFields struct {
	ns         int64
	src, dst   uint16
	method     string // "" for a response
	status     int
	callID     string
	cseq       int
	cseqMethod string
	fromUser   string
	auth       bool // carries Proxy-Authorization
}

// parseSIPFields reads the start line and a few headers of a datagram.
func parseSIPFields(p benchPkt) (sipFields, bool) {
	m := sipFields{ns: p.ns, src: p.src, dst: p.dst}
	head, _, _ := bytes.Cut(p.payload, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\r\n")
	if len(lines) == 0 {
		return m, false
	}
	f := strings.Fields(lines[0])
	if len(f) < 3 {
		return m, false
	}
	if strings.HasPrefix(f[0], "SIP/") {
		m.status, _ = strconv.Atoi(f[1])
	} else if strings.HasPrefix(f[2], "SIP/") {
		m.method = f[0]
	} else {
		return m, false
	}
	for _, l := range lines[1:] {
		name, val, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "call-id", "i":
			m.callID = val
		case "cseq":
			if n, meth, ok := strings.Cut(val, " "); ok {
				m.cseq, _ = strconv.Atoi(n)
				m.cseqMethod = strings.TrimSpace(meth)
			}
		case "from", "f":
			if _, rest, ok := strings.Cut(val, "sip:"); ok {
				m.fromUser, _, _ = strings.Cut(rest, "@")
			}
		case "proxy-authorization":
			m.auth = true
		}
	}
	return m, m.callID != ""
}

// --- setup latency from the capture ---

// setupLatency is what an element adds to call setup, per call.
type setupLatency struct {
	calls, matched, dropped int
	// inviteFwd: the INVITE that was let through (after the 407 round)
	// in → INVITE out; ringFwd and okFwd: 180 and 200 in → out; added is
	// inviteFwd+okFwd; challenge is INVITE in → 407 out; setup is the
	// caller's first INVITE → the 200 it receives.
	inviteFwd, ringFwd, okFwd, added, challenge, setup []time.Duration
}

// analyseSetup pairs the messages a capture of the element's port saw.
// caller and callee are the SIPp ports; with the element absent (SIPp
// alone) elem is the callee and only setup is measured. A proxy keeps the
// Call-ID; a B2BUA makes a new one, so its outgoing INVITE is paired with
// the latest INVITE it let through from the same caller (the From user,
// which pbxd copies), the callers taking turns.
func analyseSetup(pkts []benchPkt, elem, caller, callee uint16, b2bua bool) *setupLatency {
	type inCall struct {
		first          int64
		inv, chal      map[int]int64 // CSeq → first INVITE, first 407
		ring, ok       int64
		from           string
		fwd            int64
		matchedOutCall bool
	}
	type outCall struct {
		id            string
		inv, ring, ok int64
		from          string
	}
	ins := map[string]*inCall{}
	var inOrder []string
	outs := map[string]*outCall{}
	var outOrder []*outCall
	for _, p := range pkts {
		m, ok := parseSIPFields(p)
		if !ok {
			continue
		}
		switch {
		case m.src == caller && m.dst == elem && m.method == "INVITE":
			c := ins[m.callID]
			if c == nil {
				c = &inCall{first: m.ns, inv: map[int]int64{}, chal: map[int]int64{}, from: m.fromUser}
				ins[m.callID] = c
				inOrder = append(inOrder, m.callID)
			}
			if _, seen := c.inv[m.cseq]; !seen {
				c.inv[m.cseq] = m.ns
			}
		case m.src == elem && m.dst == caller && m.method == "" && m.cseqMethod == "INVITE":
			c := ins[m.callID]
			if c == nil {
				continue
			}
			switch {
			case m.status == 407:
				if _, seen := c.chal[m.cseq]; !seen {
					c.chal[m.cseq] = m.ns
				}
			case m.status == 180 && c.ring == 0:
				c.ring = m.ns
			case m.status == 200 && c.ok == 0:
				c.ok = m.ns
			}
		case elem != callee && m.src == elem && m.dst == callee && m.method == "INVITE":
			if outs[m.callID] == nil {
				o := &outCall{id: m.callID, inv: m.ns, from: m.fromUser}
				outs[m.callID] = o
				outOrder = append(outOrder, o)
			}
		case elem != callee && m.src == callee && m.dst == elem && m.method == "" && m.cseqMethod == "INVITE":
			o := outs[m.callID]
			if o == nil {
				continue
			}
			if m.status == 180 && o.ring == 0 {
				o.ring = m.ns
			}
			if m.status == 200 && o.ok == 0 {
				o.ok = m.ns
			}
		}
	}
	l := &setupLatency{calls: len(ins)}
	byFrom := map[string][]*inCall{}
	for _, id := range inOrder {
		c := ins[id]
		// The INVITE let through: the one that drew no 407.
		best := -1
		for cs := range c.inv {
			if _, challenged := c.chal[cs]; !challenged && cs > best {
				best = cs
			}
		}
		if best >= 0 {
			c.fwd = c.inv[best]
		}
		for cs, at := range c.chal {
			if sent, ok := c.inv[cs]; ok {
				l.challenge = append(l.challenge, time.Duration(at-sent))
			}
		}
		if c.ok > 0 {
			l.setup = append(l.setup, time.Duration(c.ok-c.first))
		}
		byFrom[c.from] = append(byFrom[c.from], c)
	}
	for _, o := range outOrder {
		var c *inCall
		if !b2bua {
			c = ins[o.id]
		} else {
			for _, cand := range byFrom[o.from] {
				if cand.fwd > 0 && cand.fwd <= o.inv && !cand.matchedOutCall && o.inv-cand.fwd < int64(time.Second) && (c == nil || cand.fwd > c.fwd) {
					c = cand
				}
			}
		}
		if c == nil || c.fwd == 0 || c.matchedOutCall {
			continue
		}
		c.matchedOutCall = true
		l.matched++
		inv := time.Duration(o.inv - c.fwd)
		l.inviteFwd = append(l.inviteFwd, inv)
		if o.ring > 0 && c.ring >= o.ring {
			l.ringFwd = append(l.ringFwd, time.Duration(c.ring-o.ring))
		}
		if o.ok > 0 && c.ok >= o.ok {
			ok := time.Duration(c.ok - o.ok)
			l.okFwd = append(l.okFwd, ok)
			l.added = append(l.added, inv+ok)
		}
	}
	return l
}

func (l *setupLatency) print(target string, rate int) {
	pp := func(name string, ds []time.Duration) string {
		return fmt.Sprintf("%s_p50_us=%s %s_p99_us=%s", name, benchUS(benchPct(ds, 50)), name, benchUS(benchPct(ds, 99)))
	}
	line := fmt.Sprintf("BENCH calls-setup target=%s rate=%d calls=%d paired=%d capture_dropped=%d %s %s",
		target, rate, l.calls, l.matched, l.dropped, pp("setup_seen_by_caller", l.setup), pp("challenge_407", l.challenge))
	if l.matched > 0 {
		p99 := benchPct(l.added, 99)
		line += fmt.Sprintf(" %s %s %s %s budget_added_p99_us=1000 within_budget=%t", pp("invite_in_out", l.inviteFwd), pp("ringing_in_out", l.ringFwd),
			pp("ok_in_out", l.okFwd), pp("added", l.added), p99 < time.Millisecond)
	}
	fmt.Println(line)
}

// --- process figures ---

// benchPSS is a process's proportional set size from smaps_rollup, in KiB.
func benchPSS(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return -1
}

// benchUDPSockets is the number of UDP sockets a process holds (each RTP
// leg holds two; pbxd's SIP socket is one more), from its descriptors
// and the kernel's UDP table.
func benchUDPSockets(pid int) int {
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if f := strings.Fields(line); len(f) > 9 {
				inodes[f[9]] = true
			}
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") && inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
			n++
		}
	}
	return n
}

// benchHTTP bounds every request the benchmarks make to pbxd.
var benchHTTP = &http.Client{Timeout: 15 * time.Second}

// benchGauges reads pbxd's gauges from /metrics (pbxd_goroutines,
// pbxd_heap_inuse_bytes, and where pbxd has them pbxd_calls_active,
// pbxd_sip_dialogs, pbxd_rtp_legs); a gauge missing is -1. A /metrics
// that does not answer within benchHTTP's timeout is reported.
func benchGauges(base string) map[string]int {
	g := map[string]int{"pbxd_goroutines": -1, "pbxd_heap_inuse_bytes": -1, "pbxd_calls_active": -1, "pbxd_sip_dialogs": -1, "pbxd_rtp_legs": -1}
	t0 := time.Now()
	res, err := benchHTTP.Get(base + "/metrics")
	if err == nil {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if _, ok := g[f0(f)]; ok && len(f) == 2 {
				v, _ := strconv.ParseFloat(f[1], 64)
				g[f[0]] = int(v)
			}
		}
		err = sc.Err()
		res.Body.Close()
	}
	if err != nil {
		fmt.Printf("BENCH metrics-stall url=%s/metrics after_s=%.1f error=%q\n", base, time.Since(t0).Seconds(), err.Error())
	}
	return g
}

func f0(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// benchSelfCPU is the CPU this test process has used.
func benchSelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuStat is the machine's idle and total CPU time so far (/proc/stat
// ticks); idleSince gives the idle share since an earlier sample.
type cpuStat struct{ idle, total uint64 }

func readCPUStat() cpuStat {
	var c cpuStat
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, v := range f[min(1, len(f)):] {
		n, _ := strconv.ParseUint(v, 10, 64)
		c.total += n
		if i == 3 || i == 4 { // idle, iowait
			c.idle += n
		}
	}
	return c
}

// idleSince is the idle share of all CPUs since c, in percent (other
// tenants of the machine show up here).
func (c cpuStat) idleSince() float64 {
	now := readCPUStat()
	if now.total == c.total {
		return 0
	}
	return 100 * float64(now.idle-c.idle) / float64(now.total-c.total)
}

// benchWaitQuiet waits (at most limit) until the machine is at least 60 %
// idle over half a second: the 2 vCPUs are shared with other work (builds
// and tests of other sessions), which shows up in every figure here. It
// returns the last idle share measured.
func benchWaitQuiet(limit time.Duration) float64 {
	var idle float64
	for deadline := time.Now().Add(limit); ; {
		if idle = benchIdle(500 * time.Millisecond); idle >= 60 || time.Now().After(deadline) {
			return idle
		}
	}
}

// benchIdle samples the machine's idle share over d.
func benchIdle(d time.Duration) float64 {
	c := readCPUStat()
	time.Sleep(d)
	return c.idleSince()
}

// benchFreeUDPBlock returns the first of n consecutive loopback UDP ports that
// were free a moment ago (SIPp's -mp binds the media port and the ones
// above it).
func benchFreeUDPBlock(t *testing.T, n int) int {
	t.Helper()
	return retryPort(t, "no block of free UDP ports", func() (int, bool) {
		first := freeUDPPort(t)
		return first, first+n <= 65535 && portsFree("udp4", first, n)
	})
}

// --- profiles ---

// benchArtifacts is the repository's artifacts/ directory (gitignored).
func benchArtifacts(t *testing.T) string {
	dir, err := filepath.Abs(filepath.Join("..", "..", "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// benchProfile fetches a CPU profile of seconds from pbxd's --debug-listen
// and returns it once written to artifacts/<name>.pprof. It blocks for
// the profile's duration.
func benchProfile(t *testing.T, debugAddr string, seconds int, name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+30)*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debugAddr, seconds), nil)
	res, err := http.DefaultClient.Do(req) // bounded by ctx
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return "", fmt.Errorf("profile: HTTP %d", res.StatusCode)
	}
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	file := filepath.Join(benchArtifacts(t), name+".pprof")
	return file, os.WriteFile(file, data, 0o644)
}

// benchPprofTop prints the top 15 functions of a profile by flat time
// (go tool pprof -top) and by cumulative time (-top -cum), and saves both
// beside it.
func benchPprofTop(t *testing.T, label, file string) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		fmt.Printf("BENCH profile=%s file=%s note=\"go tool not found\"\n", label, file)
		return
	}
	var saved []byte
	for _, mode := range []string{"flat", "cum"} {
		args := []string{"tool", "pprof", "-top", "-nodecount=15"}
		if mode == "cum" {
			args = append(args, "-cum")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, goBin, append(args, pbxdBin, file)...).CombinedOutput()
		cancel()
		if err != nil {
			fmt.Printf("BENCH profile=%s file=%s error=%q\n%s\n", label, file, err.Error(), out)
			return
		}
		saved = append(saved, out...)
		fmt.Printf("BENCH profile=%s order=%s file=%s (go tool pprof %s)\n", label, mode, file, strings.Join(args[2:], " "))
		for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
			if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Time:") {
				continue
			}
			fmt.Printf("BENCH profile=%s order=%s | %s\n", label, mode, line)
		}
	}
	_ = os.WriteFile(strings.TrimSuffix(file, ".pprof")+".top.txt", saved, 0o644)
}

// --- percentiles ---

// benchPct is the p-th percentile (nearest rank below) of ds, or 0.
func benchPct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p/100)]
}

// us formats a duration in microseconds with one decimal.
func benchUS(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 1, 64) }
