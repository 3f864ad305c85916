package webrtcleg

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"pbxd/media"
)

// The benchmark's browsers run in a child process (this test binary again,
// TestBrowserProcess), so that the CPU measured in this process is pbxd's:
// the WebRTC legs, the bridges, the plain RTP legs and — as cheap plain
// UDP senders — the phones. The two talk JSON lines prefixed with
// browserTag over the child's stdin and stdout.
const (
	browserEnv = "WEBRTCLEG_BROWSER_PROCESS"
	browserTag = "WLB "
)

type browserJob struct {
	Offers  []string      `json:"offers"`
	Talk    time.Duration `json:"talk"`
	Answers []string      `json:"answers,omitempty"`
}

// TestBrowserProcess is BenchmarkBridgedCalls's browser side; it does
// nothing in a normal test run.
func TestBrowserProcess(t *testing.T) {
	if os.Getenv(browserEnv) == "" {
		t.Skip("helper process of BenchmarkBridgedCalls")
	}
	in := bufio.NewReader(os.Stdin)
	line, err := in.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var job browserJob
	if err := json.Unmarshal([]byte(line), &job); err != nil {
		t.Fatal(err)
	}
	browsers := make([]*browser, len(job.Offers))
	for i, o := range job.Offers {
		browsers[i] = newBrowser(t, nil)
		job.Answers = append(job.Answers, string(browsers[i].answer([]byte(o))))
	}
	out, _ := json.Marshal(browserJob{Answers: job.Answers})
	fmt.Printf("%s%s\n", browserTag, out)
	var wg sync.WaitGroup
	for _, b := range browsers {
		b.waitConnected()
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.sendTone(1000, 0, int(job.Talk/media.FrameDuration))
		}()
	}
	_, _ = io.Copy(io.Discard, in) // until the parent is done
	wg.Wait()
}

// startBrowsers runs the child process, hands it the offers and returns
// its answers; stop closes its stdin and waits for it.
func startBrowsers(b *testing.B, offers []string, talk time.Duration) (answers []string, stop func()) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBrowserProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), browserEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	job, _ := json.Marshal(browserJob{Offers: offers, Talk: talk})
	if _, err := fmt.Fprintf(stdin, "%s\n", job); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), browserTag); ok {
			var res browserJob
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				b.Fatal(err)
			}
			answers = res.Answers
			break
		}
	}
	if len(answers) != len(offers) {
		b.Fatalf("browser process answered %d of %d offers", len(answers), len(offers))
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return answers, func() {
		stdin.Close()
		_ = cmd.Wait()
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure samples this process's CPU time and the packets the box's legs
// received over d, and reports CPU per forwarded packet and per call.
func measure(b *testing.B, calls int, d time.Duration, received func() uint64) {
	b.Helper()
	time.Sleep(500 * time.Millisecond) // warm up: jitter in setup, first reports
	p0, c0 := received(), cpuTime()
	start := time.Now()
	time.Sleep(d)
	p1, c1, el := received(), cpuTime(), time.Since(start)
	pkts := p1 - p0
	want := uint64(float64(calls) * 100 * el.Seconds()) // 50 packets a second each way
	if pkts < want*9/10 {
		b.Errorf("%d packets forwarded in %v, want about %d", pkts, el, want)
	}
	cpu := c1 - c0
	b.ReportMetric(float64(cpu.Microseconds())/float64(pkts), "µs-cpu/pkt")
	b.ReportMetric(100*cpu.Seconds()/el.Seconds()/float64(calls), "%core/call")
	b.ReportMetric(float64(pkts)/el.Seconds(), "pkt/s")
}

// BenchmarkBridgedCalls measures the CPU pbxd spends per bridged call:
// calls browsers (in a child process) each bridged to a plain RTP phone,
// 50 packets a second each way for a few seconds, against the same calls
// between two plain RTP phones. Run it with -benchtime=1x.
func BenchmarkBridgedCalls(b *testing.B) {
	const talk = 3 * time.Second
	for _, calls := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("webrtc-rtp/calls=%d", calls), func(b *testing.B) {
			for b.Loop() {
				benchWebRTC(b, calls, talk)
			}
		})
		b.Run(fmt.Sprintf("rtp-rtp/calls=%d", calls), func(b *testing.B) {
			for b.Loop() {
				benchRTP(b, calls, talk)
			}
		})
	}
}

func benchWebRTC(b *testing.B, calls int, talk time.Duration) {
	we := newEngine(b, Config{})
	re := newRTPEngine(b)
	clock := media.NewMixClock()
	defer clock.Close()
	legs := make([]*Leg, calls)
	offers := make([]string, calls)
	for i := range legs {
		l, err := we.Open(fmt.Sprint("bench", i))
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		o, err := l.Offer(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		legs[i], offers[i] = l, string(o)
	}
	answers, stop := startBrowsers(b, offers, talk+2*time.Second)
	defer stop()
	var rtpLegs []media.Leg
	for i, l := range legs {
		if err := l.SetAnswer([]byte(answers[i])); err != nil {
			b.Fatal(err)
		}
		p := newPhone(b)
		rl := openRTPLeg(b, re, p)
		br := media.NewBridge(media.BridgeConfig{Clock: clock})
		defer br.Close()
		br.Add(rl)
		br.Add(l)
		stopTalk := make(chan struct{})
		wg := p.talk(rl.LocalAddr(), 400, stopTalk)
		defer func() { close(stopTalk); wg.Wait() }()
		rtpLegs = append(rtpLegs, rl)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, l := range legs {
		for l.State() != StateConnected {
			if time.Now().After(deadline) {
				b.Fatalf("leg %s: %s", l.ID(), l.State())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	measure(b, calls, talk, func() (n uint64) {
		for i, l := range legs {
			n += l.Stats().PacketsReceived + rtpLegs[i].Stats().PacketsReceived
		}
		return n
	})
}

func benchRTP(b *testing.B, calls int, talk time.Duration) {
	re := newRTPEngine(b)
	clock := media.NewMixClock()
	defer clock.Close()
	var legs []media.Leg
	for range calls {
		pa, pb := newPhone(b), newPhone(b)
		la, lb := openRTPLeg(b, re, pa), openRTPLeg(b, re, pb)
		br := media.NewBridge(media.BridgeConfig{Clock: clock})
		defer br.Close()
		br.Add(la)
		br.Add(lb)
		stopTalk := make(chan struct{})
		wa := pa.talk(la.LocalAddr(), 400, stopTalk)
		wb := pb.talk(lb.LocalAddr(), 1000, stopTalk)
		defer func() { close(stopTalk); wa.Wait(); wb.Wait() }()
		legs = append(legs, la, lb)
	}
	measure(b, calls, talk, func() (n uint64) {
		for _, l := range legs {
			n += l.Stats().PacketsReceived
		}
		return n
	})
}
