//go:build bench

package main

// pbxd's footprint during the call benchmarks (bench_rtp_test.go,
// bench_calls_test.go, bench_control_webrtc_test.go): samples of its
// memory, goroutines, sockets and gauges, the wait for the idle level
// after a step, and goroutine and heap dumps when it is not reached.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

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
