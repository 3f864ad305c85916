package main

// Packet captures on the loopback interface with tcpdump, filtered in the
// kernel, read back with readPcap (peers_rtp_test.go). A capture sees the
// wire, so it works the same for SIPp, baresip or anything else, and a
// capture per test filtered on that test's own free ports is unaffected
// by other tests running in parallel. A capture needs root. rtpCapture is
// what the end-to-end tests use; the call benchmarks' benchCapture
// (bench_pcap_test.go) runs on the same tcpdump.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// --- tcpdump ---

// tcpdump is a running tcpdump on the loopback interface writing a pcap
// file. Only the process started here is ever signalled.
//
// tcpdump reads the kernel's buffer at its own pace, and on a busy machine
// it can lag a second behind; stopping it then loses the last packets, and
// its "listening" line does not prove that packets are being written
// either. So the capture also listens on a port of its own: it sends
// itself a marker datagram there and waits for the marker in the file
// (sync), once before it counts as running and once before stopping.
// Packets are written in order, so every packet sent before the marker is
// in the file when the marker is.
type tcpdump struct {
	file    string
	cmd     *exec.Cmd
	stderr  *lockedBuffer
	exited  chan struct{}
	marker  *net.UDPConn
	markers int
}

// newTcpdump opens the marker port of a capture into file; start runs it.
func newTcpdump(file string) (*tcpdump, error) {
	mk, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	return &tcpdump{file: file, stderr: &lockedBuffer{}, exited: make(chan struct{}), marker: mk}, nil
}

// markerPort is the capture's own port, which its filter must take.
func (c *tcpdump) markerPort() int { return c.marker.LocalAddr().(*net.UDPAddr).Port }

// start runs bin as "tcpdump -i lo -n <opts> -Z root -w <file> <filter>"
// (-Z root keeps the right to write into the test's directory). It
// returns once the process runs, not once it captures: sync tells that.
// When tcpdump cannot start, the marker port is closed.
func (c *tcpdump) start(bin, filter string, opts ...string) error {
	args := append([]string{"-i", "lo", "-n"}, opts...)
	c.cmd = exec.Command(bin, append(args, "-Z", "root", "-w", c.file, filter)...)
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		c.marker.Close()
		return err
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.exited)
	}()
	return nil
}

// sync sends a marker to the capture's own port, again every 100 ms, until
// tcpdump has written one to the file.
func (c *tcpdump) sync(limit time.Duration) error {
	c.markers++
	mark := []byte(fmt.Sprintf("pbxd-capture-marker-%p-%d", c, c.markers))
	to := c.marker.LocalAddr().(*net.UDPAddr)
	for deadline, i := time.Now().Add(limit), 0; time.Now().Before(deadline); i++ {
		if i%10 == 0 {
			if _, err := c.marker.WriteToUDP(mark, to); err != nil {
				return err
			}
		}
		select {
		case <-c.exited:
			return errors.New("tcpdump exited")
		case <-time.After(10 * time.Millisecond):
		}
		if raw, err := os.ReadFile(c.file); err == nil && bytes.Contains(raw, mark) {
			return nil
		}
	}
	return fmt.Errorf("the marker did not reach the capture file in %v", limit)
}

func (c *tcpdump) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

var tcpdumpDropped = regexp.MustCompile(`(\d+) packets? dropped by kernel`)

// stop ends tcpdump (SIGINT, SIGKILL after 10 s) and closes the marker
// port. It returns the number of packets tcpdump says the kernel dropped.
func (c *tcpdump) stop() (dropped int) {
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		c.kill()
	}
	c.marker.Close()
	if m := tcpdumpDropped.FindStringSubmatch(c.stderr.String()); m != nil {
		dropped, _ = strconv.Atoi(m[1])
	}
	return dropped
}

// read reads the file, without the marker datagrams; on an error it
// returns the packets read before it.
func (c *tcpdump) read() ([]udpPacket, error) {
	all, err := readPcap(c.file)
	own := c.markerPort()
	var out []udpPacket
	for _, p := range all {
		if int(p.Src.Port()) != own && int(p.Dst.Port()) != own {
			out = append(out, p)
		}
	}
	return out, err
}

// lockedBuffer is a bytes.Buffer safe for a writer and readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// --- RTP capture ---

// rtpCapture is the capture of an end-to-end test: what reaches and
// leaves the peers' media ports.
type rtpCapture struct {
	*tcpdump
	t       *testing.T
	once    sync.Once
	packets []udpPacket
	dropped int
	err     error
}

// needTcpdump finds tcpdump, which needs root to capture; make test
// installs it (Debian tcpdump).
func needTcpdump(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("tcpdump")
	if err != nil || os.Getuid() != 0 {
		if os.Getenv("CI") != "" || (err != nil && os.Getuid() == 0) {
			t.Fatal("tcpdump is missing or cannot capture; `make test` installs it (Debian package tcpdump) and runs as root")
		}
		t.Skip("RTP capture needs tcpdump and root")
	}
	return p
}

// startRTPCapture captures the UDP datagrams to or from any of ports on
// 127.0.0.1 until Stop (or the end of the test). It returns once packets
// are being written.
func startRTPCapture(t *testing.T, ports ...int) *rtpCapture {
	t.Helper()
	bin := needTcpdump(t)
	if len(ports) == 0 {
		t.Fatal("startRTPCapture: no ports")
	}
	td, err := newTcpdump(filepath.Join(t.TempDir(), "rtp.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	filter := []string{"port " + strconv.Itoa(td.markerPort())}
	for _, p := range ports {
		filter = append(filter, "port "+strconv.Itoa(p))
	}
	c := &rtpCapture{tcpdump: td, t: t}
	// --immediate-mode hands each packet over at once instead of in
	// blocks, -U writes it out at once. In immediate mode the kernel's
	// ring has one slot of the snapshot length per packet: 2 KiB slots
	// (RTP needs a few hundred bytes) in 8 MiB (-B, KiB) hold 4000
	// packets.
	if err := c.start(bin, "udp and host 127.0.0.1 and ("+strings.Join(filter, " or ")+")",
		"--immediate-mode", "-U", "-s", "2048", "-B", "8192"); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	t.Cleanup(func() { c.Stop() })
	if err := c.sync(10 * time.Second); err != nil {
		c.kill()
		t.Fatalf("tcpdump: %v\n%s", err, c.stderr.String())
	}
	return c
}

// Stop ends the capture once everything sent so far is in the file, and
// reads the packets; later calls return the same packets. A capture that
// could not catch up, or packets the kernel dropped, fail the test, as
// the counts would be wrong.
func (c *rtpCapture) Stop() []udpPacket {
	c.once.Do(func() {
		if err := c.sync(15 * time.Second); err != nil {
			c.t.Errorf("tcpdump did not catch up: %v", err)
		}
		c.dropped = c.stop()
		c.packets, c.err = c.read()
		if c.err != nil {
			c.t.Errorf("reading the capture: %v", c.err)
		}
		if c.dropped > 0 {
			c.t.Errorf("tcpdump: %d packets dropped by the kernel", c.dropped)
		}
	})
	return c.packets
}

// Flows stops the capture and returns one flow per direction.
func (c *rtpCapture) Flows() []*rtpFlow { return rtpFlows(c.Stop()) }

// From stops the capture and merges the flows sent from port (a peer's
// media port: what the peer sent). Src is set if there was one flow.
func (c *rtpCapture) From(port int) rtpFlow {
	return mergeFlows(c.Flows(), func(f *rtpFlow) bool { return int(f.Src.Port()) == port })
}

// To stops the capture and merges the flows sent to port (what reached a
// peer's media port).
func (c *rtpCapture) To(port int) rtpFlow {
	return mergeFlows(c.Flows(), func(f *rtpFlow) bool { return int(f.Dst.Port()) == port })
}

// FromDuring is From for the packets captured between from and to (times
// of the test's clock), e.g. only while a call was on hold.
func (c *rtpCapture) FromDuring(port int, from, to time.Time) rtpFlow {
	return mergeFlows(rtpFlows(packetsBetween(c.Stop(), from, to)), func(f *rtpFlow) bool { return int(f.Src.Port()) == port })
}

// ToDuring is To for the packets captured between from and to.
func (c *rtpCapture) ToDuring(port int, from, to time.Time) rtpFlow {
	return mergeFlows(rtpFlows(packetsBetween(c.Stop(), from, to)), func(f *rtpFlow) bool { return int(f.Dst.Port()) == port })
}

// packetsBetween keeps the packets captured from from up to to.
func packetsBetween(pkts []udpPacket, from, to time.Time) []udpPacket {
	var out []udpPacket
	for _, p := range pkts {
		if !p.At.Before(from) && p.At.Before(to) {
			out = append(out, p)
		}
	}
	return out
}

// mergeFlows adds up the flows keep selects, in capture order.
func mergeFlows(flows []*rtpFlow, keep func(*rtpFlow) bool) rtpFlow {
	var sel []*rtpFlow
	for _, f := range flows {
		if keep(f) {
			sel = append(sel, f)
		}
	}
	var m rtpFlow
	m.PayloadTypes = map[uint8]int{}
	m.SSRCs = map[uint32]int{}
	sort.SliceStable(sel, func(i, j int) bool { return sel[i].First.Before(sel[j].First) })
	for i, f := range sel {
		if i == 0 {
			m.Src, m.Dst, m.First, m.Last = f.Src, f.Dst, f.First, f.Last
		} else {
			if f.Src != m.Src {
				m.Src = netip.AddrPort{}
			}
			if f.Dst != m.Dst {
				m.Dst = netip.AddrPort{}
			}
			if f.First.Before(m.First) {
				m.First = f.First
			}
			if f.Last.After(m.Last) {
				m.Last = f.Last
			}
		}
		m.Packets += f.Packets
		m.NotRTP += f.NotRTP
		m.Audio += f.Audio
		m.NonSilent += f.NonSilent
		for k, v := range f.PayloadTypes {
			m.PayloadTypes[k] += v
		}
		for k, v := range f.SSRCs {
			m.SSRCs[k] += v
		}
		m.Samples = append(m.Samples, f.Samples...)
	}
	return m
}
