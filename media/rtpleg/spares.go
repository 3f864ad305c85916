package rtpleg

import (
	"net"
	"syscall"
	"time"
)

// Binding a port pair costs four system calls per socket, about 60 µs
// a leg on a small box, and a call needs two legs before its INVITE can go
// out. The engine therefore keeps a few pairs bound ahead of time and
// hands them out on Open, refilling in the background.

// defaultSpares is how many pairs are kept bound ahead.
const defaultSpares = 8

// spare is a port pair bound ahead of use.
type spare struct {
	rtp, rtcp *net.UDPConn
	port      int
}

// bindPair binds a pair and sizes its receive buffer.
func (e *Engine) bindPair() (spare, error) {
	rtp, rtcp, port, err := e.pool.bind(e.cfg.BindIP)
	if err != nil {
		return spare{}, err
	}
	_ = rtp.SetReadBuffer(256 << 10)
	return spare{rtp: rtp, rtcp: rtcp, port: port}, nil
}

// takePair returns a spare pair when one is ready (asking for a refill),
// a freshly bound one otherwise.
func (e *Engine) takePair() (spare, error) {
	select {
	case s := <-e.spares:
		return e.handOut(s), nil
	default:
	}
	e.askRefill()
	s, err := e.bindPair()
	if err == nil {
		return s, nil
	}
	// With the range nearly full, the refiller may have bound the last
	// free pair a moment ago and be about to queue it as a spare.
	select {
	case s := <-e.spares:
		return e.handOut(s), nil
	case <-time.After(10 * time.Millisecond):
		return spare{}, err
	}
}

// handOut readies a spare for a new leg.
func (e *Engine) handOut(s spare) spare {
	e.askRefill()
	// Anything that arrived while the pair waited is not from the new
	// call's party, and must not be the packet the leg latches on.
	discardQueued(s.rtp)
	discardQueued(s.rtcp)
	return s
}

func (e *Engine) askRefill() {
	select {
	case e.refill <- struct{}{}:
	default:
	}
}

// refiller keeps the spares topped up until the engine closes.
func (e *Engine) refiller() {
	defer close(e.refillDone)
	for {
		select {
		case <-e.stop:
			return
		case <-e.refill:
		}
		for len(e.spares) < cap(e.spares) {
			s, err := e.bindPair()
			if err != nil {
				break // range full: legs bind directly until ports free up
			}
			select {
			case e.spares <- s:
			case <-e.stop:
				e.closePair(s)
				return
			}
		}
	}
}

func (e *Engine) closePair(s spare) {
	s.rtp.Close()
	s.rtcp.Close()
	e.pool.release(s.port)
}

// closeSpares releases the pairs still waiting; the refiller has stopped.
func (e *Engine) closeSpares() {
	for {
		select {
		case s := <-e.spares:
			e.closePair(s)
		default:
			return
		}
	}
}

// discardQueued reads and drops every datagram waiting on c without
// blocking.
func discardQueued(c *net.UDPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	var buf [1500]byte
	_ = rc.Read(func(fd uintptr) bool {
		for {
			if _, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_DONTWAIT); err != nil {
				return true // EAGAIN: nothing left
			}
		}
	})
}
