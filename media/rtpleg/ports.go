package rtpleg

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
)

// PortRange is the UDP ports RTP legs may use, both ends included. RTP
// takes the even port of a pair and RTCP the odd one above it.
type PortRange struct {
	Lo, Hi int
}

// ParsePortRange reads "10000-20000".
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return PortRange{}, fmt.Errorf("rtp ports %q: want LOW-HIGH", s)
	}
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	r := PortRange{Lo: l, Hi: h}
	if err1 != nil || err2 != nil || r.Validate() != nil {
		return PortRange{}, fmt.Errorf("rtp ports %q: want LOW-HIGH with 1024 <= LOW < HIGH <= 65535", s)
	}
	return r, nil
}

// Validate checks the range holds at least one even/odd pair.
func (r PortRange) Validate() error {
	if r.Lo < 1024 || r.Hi > 65535 || r.Hi-r.Lo < 1 {
		return errors.New("rtp ports: want 1024 <= LOW < HIGH <= 65535")
	}
	return nil
}

// Pairs is how many RTP/RTCP pairs fit in the range.
func (r PortRange) Pairs() int {
	first := r.Lo + r.Lo%2
	if first+1 > r.Hi {
		return 0
	}
	return (r.Hi-first-1)/2 + 1
}

// String formats the range as LOW-HIGH.
func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Lo, r.Hi) }

// ErrNoPorts means every pair of the range is taken.
var ErrNoPorts = errors.New("rtpleg: no free RTP port pair")

// portPool hands out even/odd port pairs round-robin, so a port that was
// just released is not reused at once (late packets of the old call would
// land in the new one).
type portPool struct {
	mu    sync.Mutex
	r     PortRange
	first int
	next  int // index of the next pair to try
	used  []bool
}

func newPortPool(r PortRange) *portPool {
	n := r.Pairs()
	// Start at a random pair: several pbxd (or other RTP users) on one host
	// then rarely try the same ports.
	return &portPool{r: r, first: r.Lo + r.Lo%2, used: make([]bool, n), next: rand.IntN(n)}
}

// bind finds a free pair and binds both sockets on ip.
func (p *portPool) bind(ip netip.Addr) (rtp, rtcp *net.UDPConn, port int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.used)
	for tried := 0; tried < n; tried++ {
		i := p.next
		p.next = (p.next + 1) % n
		if p.used[i] {
			continue
		}
		port = p.first + 2*i
		// udp4/udp6 by family: a wildcard "udp" socket is dual-stack and
		// would report IPv4 peers as ::ffff:a.b.c.d, breaking latching.
		network := "udp4"
		if ip.Is6() {
			network = "udp6"
		}
		rtp, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
		if err != nil {
			continue // taken by someone else on the box
		}
		rtcp, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port+1))))
		if err != nil {
			rtp.Close()
			continue
		}
		p.used[i] = true
		return rtp, rtcp, port, nil
	}
	return nil, nil, 0, ErrNoPorts
}

func (p *portPool) release(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := (port - p.first) / 2; i >= 0 && i < len(p.used) {
		p.used[i] = false
	}
}
